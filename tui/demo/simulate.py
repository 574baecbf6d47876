"""The simulated world of ``anyreach-tui simulate``: livekit-server, the API emulator
and calls that keep coming and going, until told to stop.

The first two lines said are always::

    api_url: http://127.0.0.1:PORT
    api_key: ak_...

so a script (or a person) can point the dashboard at the emulator before the
calls are up.  The key is random per run and only valid for this emulator.
The command line around it is ``tui.commands.simulate``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import timedelta

from tui.demo.calls import CallOptions
from tui.demo.stack import DemoStack, StackCall

STATUS_EVENTS = {
    "ringing",
    "in_progress",
    "completed",
    "failed",
    "cancelled",
    "transferred",
    "unanswered",
}


def _print(line: str) -> None:
    print(line, flush=True)


async def simulate(
    stop: asyncio.Event,
    *,
    calls: int,
    scenarios: Sequence[str] | None = None,
    tone: bool = False,
    token_ttl: timedelta = timedelta(minutes=10),
    say: Callable[[str], None] = _print,
) -> None:
    """Run the stack, saying what happens line by line, until ``stop`` is set."""

    def report(event: str, call: StackCall) -> None:
        if event == "created":
            say(
                f"call {call.conversation_id}: {call.channel} from {call.caller}, "
                f"scenario {call.scenario}"
            )
        elif event in STATUS_EVENTS:
            say(f"call {call.conversation_id}: {event}")

    stack = DemoStack(
        calls=calls,
        scenarios=scenarios,
        call_options=CallOptions(mode="tone" if tone else "speech"),
        token_ttl=token_ttl,
        on_call_event=report,
    )
    try:
        await stack.start_api()
        # These two lines come first, before any other URL or key, by contract.
        say(f"api_url: {stack.api_url}")
        say(f"api_key: {stack.api_key}")
        starting = asyncio.create_task(stack.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start is reported, not swallowed
            say(f"livekit_url: {stack.livekit_url}")
            say(f"organization_id: {stack.emulator.organization_id}")
            say("Simulating calls; press Ctrl-C to stop.")
            await stopped
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    finally:
        say("Stopping…")
        await stack.stop()

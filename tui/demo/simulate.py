"""``anyreach-tui simulate``: livekit-server, the API emulator and simulated calls, until Ctrl-C.

The first two lines on stdout are always, flushed at once::

    api_url: http://127.0.0.1:PORT
    api_key: ak_...

so a script (or a person) can point the dashboard at the emulator before the
calls are up.  The key is random per run and only valid for this emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta

from tui.demo.calls import CallOptions
from tui.demo.scenarios import scenario_names
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui simulate",
        description="Run a local livekit-server, the Anyreach API emulator and simulated "
        "calls that keep coming and going until interrupted (Ctrl-C).",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=4,
        metavar="N",
        help="calls running at the same time (default: 4)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        dest="scenarios",
        metavar="NAME",
        choices=scenario_names(include_on_demand=True),
        help="scenario to play (repeatable; default: every regular scenario)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="lifetime of listener tokens minted by the emulator (default: 600)",
    )
    parser.add_argument(
        "--tone",
        action="store_true",
        help="agents play a pure tone instead of speech (audio checks)",
    )
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def _report(event: str, call: StackCall) -> None:
    if event == "created":
        _print(
            f"call {call.conversation_id}: {call.channel} from {call.caller}, "
            f"scenario {call.scenario}"
        )
    elif event in STATUS_EVENTS:
        _print(f"call {call.conversation_id}: {event}")


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    stack = DemoStack(
        calls=args.calls,
        scenarios=args.scenarios,
        call_options=CallOptions(mode="tone" if args.tone else "speech"),
        token_ttl=timedelta(seconds=args.token_ttl),
        on_call_event=_report,
    )
    try:
        await stack.start_api()
        # These two lines come first, before any other URL or key, by contract.
        _print(f"api_url: {stack.api_url}")
        _print(f"api_key: {stack.api_key}")
        starting = asyncio.create_task(stack.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start is reported, not swallowed
            _print(f"livekit_url: {stack.livekit_url}")
            _print(f"organization_id: {stack.emulator.organization_id}")
            _print("Simulating calls; press Ctrl-C to stop.")
            await stopped
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    finally:
        _print("Stopping…")
        await stack.stop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.calls < 0:
        print("--calls must be 0 or more", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

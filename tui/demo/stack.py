"""The local demo stack: livekit-server, the API emulator and a stream of simulated calls.

Every simulated call is also a conversation in the emulator, and the call's
own events drive the conversation's status exactly as Anyreach would report it:

- telephone: ``triggered`` (dialling, no room yet) -> ``ringing`` (the agent is
  in the room) -> ``in_progress`` (the caller joined) -> a terminal status when
  the script ends or the agent leaves for good;
- webrtc: ``token_created`` -> ``in_progress`` -> a terminal status.

A server drop is not a leave: the bots rejoin when the server is back and the
conversation stays ``in_progress`` meanwhile.

::

    async with DemoStack(calls=4) as stack:
        print(stack.api_url, stack.api_key)
        await stack.wait_in_progress(4)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from tui.demo.calls import CallOptions, SimulatedCall
from tui.demo.emulator import TERMINAL, ApiEmulator
from tui.demo.livekit_server import LiveKitServer
from tui.demo.scenarios import load_scenario, scenario_names

log = logging.getLogger(__name__)

# The terminal status a scenario's natural end stands for (default "completed").
END_STATUS = {"escalation": "transferred"}
AGENTS = (("agent_ava", "Ava (Support)"), ("agent_max", "Max (Billing)"))
AGENT_NUMBER = "+18005550100"
# How long the caller may keep talking alone after the agent has gone.
CALLER_LINGER = 2.0
# How long to wait for the next change of the call count in wait_* helpers.
WAIT_TIMEOUT = 60.0


@dataclass
class StackCall:
    """One simulated call and the conversation it drives."""

    conversation_id: str
    channel: str
    scenario: str
    caller: str
    room_name: str | None = None
    call: SimulatedCall | None = None
    status: str = "triggered"
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


CallListener = Callable[[str, StackCall], object]


class DemoStack:
    """livekit-server + API emulator + ``calls`` concurrent simulated calls.

    With ``keep_going`` (the default) an ended call is replaced by a new one
    after ``pause_between_calls`` seconds, so calls keep coming and going.
    ``web_every`` makes every n-th call a web (webrtc) call instead of a phone call.
    """

    def __init__(
        self,
        calls: int = 4,
        *,
        scenarios: Sequence[str] | None = None,
        call_options: CallOptions | None = None,
        token_ttl: timedelta = timedelta(minutes=10),
        keep_going: bool = True,
        pause_between_calls: float = 2.0,
        dial_delay: float = 1.0,
        web_every: int = 4,
        server: LiveKitServer | None = None,
        on_call_event: CallListener | None = None,
    ) -> None:
        self.target_calls = calls
        self.scenarios = list(scenarios or scenario_names())
        for name in self.scenarios:
            load_scenario(name)  # fail now, not in a background task
        self.call_options = call_options or CallOptions()
        self.keep_going = keep_going
        self.pause_between_calls = pause_between_calls
        self.dial_delay = dial_delay
        self.web_every = web_every
        self.server = server or LiveKitServer()
        self._own_server = server is None
        self.emulator = ApiEmulator(
            self.server.url, self.server.api_key, self.server.api_secret, token_ttl=token_ttl
        )
        self.on_call_event = on_call_event
        self.calls: list[StackCall] = []  # every call started, oldest first
        self._numbers = itertools.count(1)
        self._scenario_cycle = itertools.cycle(self.scenarios)
        self._supervisor: asyncio.Task[None] | None = None
        self._api_started = False
        self._change_waiters: set[asyncio.Event] = set()
        self._stopping = False

    def __repr__(self) -> str:
        return f"DemoStack(api_url={self.api_url!r}, livekit_url={self.server.url!r})"

    # -- what a client needs -------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.emulator.url

    @property
    def api_key(self) -> str:
        """An organization key (``ak_``) with every scope; random per run, local only."""
        return self.emulator.admin_key

    @property
    def livekit_url(self) -> str:
        return self.server.url

    @property
    def active_calls(self) -> list[StackCall]:
        return [c for c in self.calls if not c.finished]

    # -- lifecycle ----------------------------------------------------------------------

    async def start_api(self) -> DemoStack:
        """Start only the emulator (fast): its URL and key are usable at once."""
        if not self._api_started:
            await self.emulator.start()
            self._api_started = True
        return self

    async def start(self) -> DemoStack:
        """Emulator, livekit-server, then the first calls (returns once they are dialling)."""
        await self.start_api()
        if self._own_server and not self.server.running():
            await _finish_even_if_cancelled(asyncio.to_thread(self.server.start))
        if self._supervisor is None and self.target_calls > 0:
            self._supervisor = asyncio.create_task(self._keep_calls_coming(), name="demo calls")
        return self

    async def stop(self) -> None:
        """Stop the calls, the emulator and the server this stack started."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        # Cancel each call's task first: one still joining then never starts its audio
        # (stopping a call under a start that later completes would leave a tone task
        # feeding a closed source).  Each task stops its own call on the way out.
        tasks = [c.task for c in self.calls if c.task is not None and not c.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(
            *(c.call.stop() for c in self.calls if c.call is not None), return_exceptions=True
        )
        if self._api_started:
            await self.emulator.stop()
            self._api_started = False
        if self._own_server:
            await asyncio.to_thread(self.server.stop)

    async def __aenter__(self) -> DemoStack:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- calls --------------------------------------------------------------------------

    async def _keep_calls_coming(self) -> None:
        for _ in range(self.target_calls):
            self.start_call()
        while self.keep_going:
            await self._next_change()
            while len(self.active_calls) < self.target_calls and not self._stopping:
                await asyncio.sleep(self.pause_between_calls)
                self.start_call()

    def start_call(
        self,
        scenario: str | None = None,
        *,
        channel: str | None = None,
        options: CallOptions | None = None,
    ) -> StackCall:
        """Start one more call now; its conversation exists when this returns."""
        number = next(self._numbers)
        scenario = scenario or next(self._scenario_cycle)
        if channel is None:
            channel = "webrtc" if self.web_every and number % self.web_every == 0 else "telephone"
        if channel == "webrtc":
            caller = f"guest_{secrets.token_hex(4)}"
        else:
            caller = f"+1555{random.randrange(10**7):07d}"
        agent_id, agent_name = AGENTS[number % len(AGENTS)]
        conversation = self.emulator.create_conversation(
            channel=channel,
            direction="inbound",
            user_id=caller,
            agent_id=agent_id,
            agent_name=agent_name,
            agent_number=AGENT_NUMBER if channel == "telephone" else None,
            custom_metadata={"scenario": scenario, "simulated": True},
        )
        entry = StackCall(conversation.id, channel, scenario, caller, status=conversation.status)
        self.calls.append(entry)
        options = replace(options or self.call_options, scenario=scenario)
        entry.task = asyncio.create_task(self._run_call(entry, options), name=f"call {number}")
        self._notify("created", entry)
        return entry

    async def _run_call(self, entry: StackCall, options: CallOptions) -> None:
        try:
            if entry.channel == "telephone":
                await asyncio.sleep(self.dial_delay)  # dialling: no room yet
            entry.room_name = f"call-{entry.conversation_id[:8]}"
            entry.call = SimulatedCall(
                self.server.url,
                self.server.api_key,
                self.server.api_secret,
                entry.room_name,
                options,
                caller_identity=entry.caller,
                on_event=lambda name, _call: self._on_call_event(entry, name),
            )
            try:
                await entry.call.start()
            except Exception as exc:
                log.warning("call %s could not start: %r", entry.conversation_id, exc)
                self._set_status(entry, "failed")
                return
            await entry.call.wait_ended()
            self._set_status(entry, END_STATUS.get(entry.scenario, "completed"))
            await asyncio.sleep(CALLER_LINGER)  # the caller may still be saying goodbye
        finally:
            if entry.call is not None:
                with contextlib.suppress(Exception):
                    await entry.call.stop()
            self._signal_change()

    def _on_call_event(self, entry: StackCall, name: str) -> None:
        """Bot events drive the conversation's status (a rejoin after a drop changes nothing)."""
        if self._stopping:
            return  # the demo is shutting down: the bots leaving is not the call's end
        if name == "agent_joined":
            target = "ringing" if entry.channel == "telephone" else "in_progress"
            if entry.status in ("triggered", "token_created"):
                self._set_status(entry, target)
        elif name == "caller_joined":
            if entry.status in ("triggered", "ringing", "token_created"):
                if entry.status == "triggered":
                    self._set_status(entry, "ringing")
                self._set_status(entry, "in_progress")
        elif name in ("ended", "agent_left"):
            if entry.status == "triggered":
                self._set_status(entry, "failed")
            elif entry.status == "ringing" or entry.status == "token_created":
                self._set_status(entry, "cancelled")
            else:
                self._set_status(entry, END_STATUS.get(entry.scenario, "completed"))
        self._notify(name, entry)

    def _set_status(self, entry: StackCall, status: str) -> None:
        if entry.finished or entry.status == status:
            return
        self.emulator.set_status(entry.conversation_id, status, room_name=entry.room_name)
        entry.status = status
        log.info("conversation %s -> %s", entry.conversation_id, status)
        self._notify(status, entry)
        self._signal_change()

    def _notify(self, event: str, entry: StackCall) -> None:
        if self.on_call_event is None:
            return
        try:
            self.on_call_event(event, entry)
        except Exception:
            log.exception("on_call_event handler failed for %s", event)

    def _signal_change(self) -> None:
        for waiter in self._change_waiters:
            waiter.set()

    async def _next_change(self) -> None:
        """Until a call changes status or ends (one waiter per caller: none misses it)."""
        waiter = asyncio.Event()
        self._change_waiters.add(waiter)
        try:
            await waiter.wait()
        finally:
            self._change_waiters.discard(waiter)

    # -- waiting helpers (tests, demo start-up) ------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], within: float = WAIT_TIMEOUT) -> None:
        """Until ``predicate()`` holds, checked whenever a call changes status."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._next_change()

    async def wait_in_progress(self, count: int, within: float = WAIT_TIMEOUT) -> list[StackCall]:
        """Until at least ``count`` calls are in progress; returns those calls."""
        await self.wait_for(
            lambda: sum(c.status == "in_progress" for c in self.calls) >= count, within
        )
        return [c for c in self.calls if c.status == "in_progress"]


async def _finish_even_if_cancelled(awaitable: Awaitable[object]) -> None:
    """Await a thread's work to its end even if we are cancelled meanwhile, so a
    server being started in a thread is never left running unseen."""
    future = asyncio.ensure_future(awaitable)
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise

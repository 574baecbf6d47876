"""Closing a pane and adding the same call again: the new pane keeps its audio output.

Pure sequencing logic of the Monitor, so fakes stand in for the API, the session and
the router (the real ones are exercised by the stack and live tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from tests.fixtures.listen import listener_token
from tui.monitor.model import Dashboard
from tui.monitor.monitor import Monitor


class RecordingRouter:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def output_for(self, session_id: str) -> object:
        self.log.append(("output", session_id))
        return object()

    def remove(self, session_id: str) -> None:
        self.log.append(("remove", session_id))

    def set_heard(self, session_ids: Iterable[str]) -> None: ...


class SlowEndingSession:
    level = None
    speaking = False

    def set_heard(self, heard: bool) -> None: ...

    def on(self, event: str, fn: Any) -> SlowEndingSession:
        return self

    async def connect(self) -> None: ...
    async def start_audio(self) -> None: ...

    async def end(self) -> None:
        await asyncio.sleep(0.3)  # a real end() takes a while to leave the room

    def get_state(self) -> str:
        return "connected"


class Tokens:
    async def listener_token(self, conversation_id: str) -> Any:
        # A token the follower's guard accepts: hidden, subscribe-only (never used to join).
        return SimpleNamespace(url="ws://x", token=listener_token(("key", "s" * 32), "room"))


async def test_reopened_call_keeps_its_output_while_the_old_one_stops() -> None:
    dashboard = Dashboard()
    router = RecordingRouter()
    monitor = Monitor(
        dashboard,
        Tokens(),
        router,
        discovery=False,
        listen=lambda grant, output: SlowEndingSession(),
    )
    monitor.start()
    dashboard.add_call("c1")
    await asyncio.sleep(0.05)
    dashboard.remove_call("c1")  # x: the old session starts ending (0.3 s)
    dashboard.add_call("c1")  # a: the same call again, at once
    await asyncio.sleep(0.6)
    last_output = max(i for i, entry in enumerate(router.log) if entry == ("output", "c1"))
    assert ("remove", "c1") in router.log
    assert ("remove", "c1") not in router.log[last_output:], router.log
    await monitor.aclose()

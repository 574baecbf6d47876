"""The dashboard and ``tail`` follow calls through the same follower; nothing else joins.

The follower's behaviour is tested once, against the real stack
(tests/integration/test_follower.py); these check that both front ends use it.
"""

from __future__ import annotations

import ast
import asyncio
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fixtures.listen import listener_token
from tui.commands import tail
from tui.listen import SessionError
from tui.monitor.follow import WHILE_LISTED_POLICY, CallFollower
from tui.monitor.model import Dashboard
from tui.monitor.monitor import DASHBOARD_POLICY, Monitor

ROOT = Path(__file__).resolve().parents[2]


class NoTokens:
    async def listener_token(self, conversation_id: str) -> Any:
        await asyncio.Event().wait()  # never answers: the test looks at the wiring only

    async def active_conversations(self) -> list[Any]:
        return []


async def test_every_dashboard_pane_is_run_by_a_follower_that_keeps_trying_while_active() -> None:
    dashboard = Dashboard()
    monitor = Monitor(dashboard, NoTokens(), discovery=False)
    monitor.start()
    dashboard.add_call("c1")
    follower = monitor.followers["c1"]
    await monitor.aclose(0.5)
    assert isinstance(follower, CallFollower)
    assert follower.conversation_id == "c1"
    assert follower.policy is DASHBOARD_POLICY and follower.policy.patience_s is None
    assert DASHBOARD_POLICY is WHILE_LISTED_POLICY and not DASHBOARD_POLICY.fail_fast


def test_tail_follows_with_the_same_follower_failing_fast_and_patient_for_60_s() -> None:
    out = tail.JsonLines(SimpleNamespace(write=lambda _s: None, flush=lambda: None))  # type: ignore[arg-type]  # a stream
    follower = tail.follow(NoTokens(), "c1", out, None)  # type: ignore[arg-type]  # fake client
    assert isinstance(follower, CallFollower)
    assert follower.policy is tail.TAIL_POLICY
    assert follower.policy.fail_fast and follower.policy.patience_s == 60.0


def test_only_the_follower_opens_listen_sessions() -> None:
    """``tui.listen.listen`` is called from one place outside the listen layer."""
    callers = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        if path.is_relative_to(ROOT / "tui" / "listen"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "tui.listen":
                if any(alias.name == "listen" for alias in node.names):
                    callers.append(path.relative_to(ROOT).as_posix())
    assert callers == ["tui/monitor/follow.py"]


class RecordingListen:
    """Stands in for ``tui.listen.listen``: records its arguments, fails every join."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, token: str, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return FailingSession()


class FailingSession:
    level = None
    speaking = False

    def on(self, event: str, fn: Any) -> FailingSession:
        return self

    def set_heard(self, heard: bool) -> None: ...

    async def connect(self) -> None:
        raise SessionError("nothing answers")

    async def start_audio(self) -> None: ...
    async def end(self) -> None: ...

    def get_state(self) -> str:
        return "disconnected"


class SafeTokens(NoTokens):
    async def listener_token(self, conversation_id: str) -> Any:
        return SimpleNamespace(url="ws://127.0.0.1:9", token=listener_token(("k", "s" * 32), "r"))


async def test_dashboard_and_tail_join_with_the_contracts_15_s_connect_and_3_s_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tui.listen

    recording = RecordingListen()
    monkeypatch.setattr(tui.listen, "listen", recording)
    expected = {"connect_timeout": 15.0, "end_timeout": 3.0}

    # tail: its follower fails fast on the first failed join.
    out = tail.JsonLines(io.StringIO())
    follower = tail.follow(SafeTokens(), "c1", out, None)  # type: ignore[arg-type]  # fake client
    ended = await asyncio.wait_for(follower.run(), 5)
    assert ended.reason == "no_room"
    assert recording.calls == [{"output": None, **expected}]

    # the dashboard: a pane's follower joins the same way (and keeps retrying).
    recording.calls.clear()
    dashboard = Dashboard()
    monitor = Monitor(dashboard, SafeTokens(), discovery=False)
    monitor.start()
    dashboard.add_call("c2")
    for _ in range(100):
        if recording.calls:
            break
        await asyncio.sleep(0.01)
    await monitor.aclose(0.5)
    assert recording.calls[0] == {"output": None, **expected}

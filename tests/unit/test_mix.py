"""Mix mode in the model: who is heard, on which side, how loud; the audit trail of it;
what the monitor tells the followers and the router.  Pure logic, fakes for the rest
(the real sound is checked in tests/integration/test_mix_audio.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fixtures.app import FrozenClock
from tests.fixtures.listen import listener_token
from tui.monitor.audit import AuditTrail, Hearer, read_audit
from tui.monitor.model import (
    MIX_PAN,
    VOLUME_DEFAULT,
    VOLUME_MAX,
    Change,
    Dashboard,
    Placement,
)
from tui.monitor.monitor import Monitor

HEARER = Hearer("alice", "desk-1", 4242, None)


def calls(*ids: str, clock: FrozenClock | None = None) -> Dashboard:
    dashboard = Dashboard(clock=clock or FrozenClock())
    for cid in ids:
        dashboard.add_call(cid).set_state("connected")
    return dashboard


def test_the_focused_call_is_centre_and_the_mix_alternates_left_right_by_order() -> None:
    dashboard = calls("a", "b", "c", "d")
    dashboard.set_listening(True)
    assert dashboard.placements == {"a": Placement(1.0, 0.0)}  # no mix: focus mode, as before
    dashboard.toggle_mix()  # a joins (focused: still the centre)
    dashboard.focus("b")
    dashboard.toggle_mix()
    dashboard.focus("c")
    dashboard.toggle_mix()
    assert dashboard.mix == ("a", "b", "c")
    dashboard.focus("d")  # not in the mix, but focused: heard at the centre
    assert dashboard.placements == {
        "d": (1.0, 0.0),
        "a": (1.0, -MIX_PAN),  # first in the mix: left
        "b": (1.0, MIX_PAN),
        "c": (1.0, -MIX_PAN),
    }
    assert list(dashboard.placements) == ["d", "a", "b", "c"]  # the focused call first
    dashboard.focus("b")  # a call keeps its side while focus moves; the focused one is centre
    assert dashboard.placements == {"b": (1.0, 0.0), "a": (1.0, -MIX_PAN), "c": (1.0, -MIX_PAN)}
    assert dashboard.heard == {"a", "b", "c"}
    assert dashboard.heard_id == "b"  # the centre of what is heard
    assert [dashboard.pan(cid) for cid in "abcd"] == [-MIX_PAN, 0.0, -MIX_PAN, None]


def test_m_again_takes_the_call_out_and_a_call_out_of_the_mix_is_heard_only_focused() -> None:
    dashboard = calls("a", "b")
    dashboard.set_listening(True)
    dashboard.toggle_mix()  # a in
    dashboard.focus("b")
    assert dashboard.heard == {"a", "b"}
    dashboard.focus("a")
    dashboard.toggle_mix()  # a out, but focused: still heard
    assert dashboard.mix == () and dashboard.heard == {"a"}
    dashboard.focus("b")
    assert dashboard.heard == {"b"}  # a left with the focus


def test_the_mix_is_heard_only_while_listening_and_never_on_the_wallboard() -> None:
    dashboard = calls("a", "b")
    dashboard.toggle_mix()  # joining while listening is off plays nothing...
    dashboard.focus("b")
    assert dashboard.mix == ("a",) and dashboard.placements == {}
    dashboard.set_listening(True)  # ...until space
    assert dashboard.heard == {"a", "b"}
    dashboard.set_listening(False)  # m: everything stops at once
    assert dashboard.placements == {}
    dashboard.set_listening(True)
    dashboard.set_wallboard(True)
    assert dashboard.placements == {} and dashboard.mix == ("a",)  # kept for later
    dashboard.set_wallboard(False)
    dashboard.set_listening(True)
    assert dashboard.heard == {"a", "b"}


def test_volume_steps_of_ten_percent_within_zero_and_the_maximum() -> None:
    dashboard = calls("a", "b")
    dashboard.set_listening(True)
    seen: list[Change] = []
    dashboard.subscribe(seen.append)
    assert dashboard.volume("a") == VOLUME_DEFAULT == 100
    dashboard.change_volume(+1)
    dashboard.change_volume(+1)
    assert dashboard.volume("a") == 120
    assert dashboard.placements == {"a": (pytest.approx(1.2), 0.0)}
    assert seen == [Change("mix", "a"), Change("mix", "a")]
    for _ in range(10):
        dashboard.change_volume(+1)
    assert dashboard.volume("a") == VOLUME_MAX == 150
    assert len(seen) == 5  # at the top nothing changes, nothing is announced
    dashboard.change_volume(-1, "b")  # any call, by id
    assert dashboard.volume("b") == 90 and dashboard.volume("a") == 150
    for _ in range(20):
        dashboard.change_volume(-1)
    assert dashboard.volume("a") == 0
    assert dashboard.placements == {}  # at 0 % a call is not heard (decodes nothing)
    dashboard.change_volume(+1)
    assert dashboard.placements == {"a": (pytest.approx(0.1), 0.0)}


def test_a_call_that_ends_or_closes_leaves_the_mix_and_ended_calls_cannot_join() -> None:
    dashboard = calls("a", "b", "c")
    dashboard.set_listening(True)
    for cid in ("a", "b", "c"):
        dashboard.focus(cid)
        dashboard.toggle_mix()
    dashboard.change_volume(-2, "b")
    seen: list[Change] = []
    dashboard.subscribe(seen.append)
    a = dashboard.get("a")
    assert a is not None
    a.mark_ended()
    assert dashboard.mix == ("b", "c")
    assert seen == [Change("call", "a"), Change("mix", "a")]
    dashboard.remove_call("b")
    assert dashboard.mix == ("c",)
    dashboard.add_call("b")
    assert dashboard.volume("b") == VOLUME_DEFAULT  # a new pane starts afresh
    dashboard.focus("a")
    dashboard.toggle_mix()  # over: nothing of it would play
    assert dashboard.mix == ("c",)
    assert dashboard.placements == {"c": (1.0, -MIX_PAN)}  # the focused call is over


def audit_lines(path: Path) -> list[tuple[str, str]]:
    return [
        (r["event"], r["conversation_id"])
        for r in (json.loads(raw) for raw in path.read_text().splitlines())
    ]


def test_the_audit_trail_has_one_interval_per_heard_call(tmp_path: Path) -> None:
    clock = FrozenClock()
    dashboard = calls("a", "b", "c", clock=clock)
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)  # a
    dashboard.toggle_mix()
    clock.advance(10)
    dashboard.focus("b")  # a stays (mix), b joins
    clock.advance(10)
    dashboard.focus("c")  # b leaves with the focus, c joins
    assert trail.open_conversations == ["a", "c"]
    clock.advance(5)
    dashboard.change_volume(-10)  # c at 0 %: not heard
    clock.advance(5)
    dashboard.set_listening(False)  # a
    trail.close()
    assert audit_lines(path) == [
        ("start", "a"),
        ("start", "b"),
        ("end", "b"),
        ("start", "c"),
        ("end", "c"),
        ("end", "a"),
    ]
    got = [(i.conversation_id, i.duration, i.reason) for i in read_audit(path)]
    seconds = [(cid, d.total_seconds() if d else None, why) for cid, d, why in got]
    assert seconds == [
        ("a", 30.0, "listening off"),
        ("b", 10.0, "focus moved"),
        ("c", 5.0, "volume 0"),
    ]


def test_the_audit_closes_every_open_interval_at_quit_and_a_mix_member_ending(
    tmp_path: Path,
) -> None:
    dashboard = calls("a", "b", "c")
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)
    dashboard.toggle_mix()
    dashboard.focus("b")
    dashboard.toggle_mix()
    dashboard.focus("c")
    b = dashboard.get("b")
    assert b is not None
    b.mark_ended()
    trail.close("quit")
    got = [(i.conversation_id, i.reason) for i in read_audit(path)]
    assert got == [("a", "quit"), ("b", "call ended"), ("c", "quit")]


class Router:
    def __init__(self) -> None:
        self.told: list[dict[str, tuple[float, float]]] = []

    def output_for(self, session_id: str) -> object:
        return object()

    def remove(self, session_id: str) -> None: ...

    def set_heard(self, heard: Any) -> None:
        self.told.append(dict(heard))


class Session:
    level = None
    speaking = False

    def __init__(self) -> None:
        self.heard: bool | None = None

    def set_heard(self, heard: bool) -> None:
        self.heard = heard

    def on(self, event: str, fn: Any) -> Session:
        return self

    async def connect(self) -> None: ...
    async def start_audio(self) -> None: ...
    async def end(self) -> None: ...

    def get_state(self) -> str:
        return "connected"


class Tokens:
    async def listener_token(self, conversation_id: str) -> Any:
        return SimpleNamespace(url="ws://x", token=listener_token(("key", "s" * 32), "room"))


async def test_the_monitor_tells_the_router_the_placements_and_only_heard_calls_decode() -> None:
    dashboard = calls("a", "b", "c")
    router = Router()
    sessions: dict[str, Session] = {}

    def listen(grant: Any, output: Any) -> Session:
        session = Session()
        sessions[f"s{len(sessions)}"] = session
        return session

    monitor = Monitor(dashboard, Tokens(), router, discovery=False, listen=listen)
    monitor.start()
    await asyncio.sleep(0.05)  # every follower has its session
    heard = {cid: f._heard for cid, f in monitor.followers.items()}
    assert heard == {"a": False, "b": False, "c": False} and router.told[-1] == {}
    dashboard.set_listening(True)
    dashboard.toggle_mix()
    dashboard.focus("b")
    dashboard.change_volume(-5)
    assert router.told[-1] == {"b": (0.5, 0.0), "a": (1.0, -MIX_PAN)}
    heard = {cid: f._heard for cid, f in monitor.followers.items()}
    assert heard == {"a": True, "b": True, "c": False}  # the mix decodes, the rest does not
    a = dashboard.get("a")
    assert a is not None
    a.mark_ended()
    assert router.told[-1] == {"b": (0.5, 0.0)}
    b = dashboard.get("b")
    assert b is not None
    before = len(router.told)
    b.set_info(b.info)  # a "call" change that changes nothing heard tells nobody
    b.set_error("x")
    assert len(router.told) == before
    b.mark_ended()  # the focused call ended: nothing plays
    assert router.told[-1] == {}
    await monitor.aclose()


def test_a_call_taken_out_of_the_mix_ends_its_interval_as_left_the_mix(tmp_path: Path) -> None:
    dashboard = calls("a", "b")
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)
    dashboard.toggle_mix()  # a in the mix
    dashboard.focus("b")  # both heard
    dashboard.toggle_mix("a")  # a out, b focused: only b heard
    assert trail.open_conversations == ["b"]
    trail.close("quit")
    got = [(i.conversation_id, i.reason) for i in read_audit(path)]
    assert got == [("a", "left the mix"), ("b", "quit")]

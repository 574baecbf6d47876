"""Health flags through the CallUpdater: on the model, in the call's JSONL, in attention order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui.listen import Transcript
from tui.monitor.apply import CallUpdater
from tui.monitor.export import render_jsonl, render_markdown
from tui.monitor.follow import Ended, StateChanged, TranscriptReceived
from tui.monitor.model import Change, Dashboard
from tui.monitor.store import TranscriptStore, read_events, read_transcript

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def segment(sid: str, role: str, text: str, final: bool = True) -> TranscriptReceived:
    return TranscriptReceived(Transcript(id=sid, role=role, text=text, final=final))


def live_updater(dashboard: Dashboard, cid: str, store: TranscriptStore | None = None):
    call = dashboard.add_call(cid)
    flags = []
    updater = CallUpdater(
        call, store=store, health_tick_s=None, on_health=lambda _c, f: flags.append(f)
    )
    updater.apply(StateChanged("connected"))
    return call, updater, flags


def test_a_slow_agent_is_flagged_on_the_model_and_in_the_file(tmp_path: Path) -> None:
    clock = FakeClock()
    dashboard = Dashboard(clock=clock)
    store = TranscriptStore(tmp_path)
    call, updater, flags = live_updater(dashboard, "c_slow", store)
    updater.apply(segment("u1", "user", "Where is my parcel?"))
    clock.advance(4.2)
    updater.apply(segment("a1", "agent", "Let me check.", final=False))
    assert [(f.kind, f.value) for f in flags] == [("slow", 4.2)]
    assert call.health.slow and call.health.last_response_s == 4.2
    assert call.attention > 0 and dashboard.needing_attention() == 1
    clock.advance(1)
    updater.apply(segment("a1", "agent", "Let me check."))
    path = store.path_for("c_slow")
    store.close_all()
    events = read_events(path)
    assert events == [
        {
            "event": "health",
            "conversation_id": "c_slow",
            "flag": "slow",
            "value": 4.2,
            "ts": "2026-01-01T12:00:04.200Z",
        }
    ]
    assert [s.id for s in read_transcript(path)] == ["u1", "a1"]  # the event line is skipped
    # a restarted store reads the file without taking the event for a segment
    again = TranscriptStore(tmp_path)
    assert again.append("c_slow", Transcript(id="a2", role="agent", text="Found it.", final=True))
    again.close_all()
    segments = read_transcript(path)
    assert "SLOW 4.2s" in render_markdown("c_slow", segments, events)
    lines = render_jsonl(segments, events).splitlines()
    assert [json.loads(line).get("event") for line in lines] == [None, "health", None, None]


def test_dead_air_by_tick_and_a_quiet_call_none() -> None:
    clock = FakeClock()
    dashboard = Dashboard(clock=clock)
    bad, bad_updater, bad_flags = live_updater(dashboard, "c_quiet")
    good, good_updater, good_flags = live_updater(dashboard, "c_good")
    changes: list[Change] = []
    dashboard.subscribe(changes.append)
    for n in range(12):
        clock.advance(1)
        if n % 2 == 0:
            good_updater.apply(
                segment(
                    f"g{n}",
                    "agent" if n % 4 else "user",
                    [
                        "Hello there, how are you?",
                        "I need help with my bill.",
                        "Sure, I can look at that.",
                        "It was charged twice in May.",
                        "I see the double charge now.",
                        "Thank you so much for that.",
                    ][n // 2],
                )
            )
        bad_updater.tick()
        good_updater.tick()
    assert [f.kind for f in bad_flags] == ["dead_air"]
    assert bad.health.dead_air_now and bad.health.dead_air_s is not None
    assert good_flags == [] and not good.health.flagged
    assert Change("attention", "c_quiet") in changes
    bad_updater.apply(Ended("call_over"))
    assert bad.attention == 0  # an ended call needs nobody


def test_attention_order_puts_the_misbehaving_call_first_and_focus_follows_the_call() -> None:
    clock = FakeClock()
    dashboard = Dashboard(clock=clock)
    updaters = {cid: live_updater(dashboard, cid)[1] for cid in ("c1", "c2", "c3", "c4")}
    dashboard.focus("c2")
    assert [c.conversation_id for c in dashboard.visible_calls()] == ["c1", "c2", "c3", "c4"]
    for n in range(3):
        updaters["c4"].apply(segment(f"a{n}", "agent", "Could you repeat your account number?"))
    assert dashboard.get("c4").health.loops == 1
    assert [c.conversation_id for c in dashboard.visible_calls()] == ["c1", "c2", "c3", "c4"]
    dashboard.toggle_sort_by_attention()
    assert dashboard.sort_by_attention
    assert [c.conversation_id for c in dashboard.visible_calls()] == ["c4", "c1", "c2", "c3"]
    assert dashboard.focused_id == "c2"
    dashboard.toggle_sort_by_attention()
    assert dashboard.visible_calls()[0].conversation_id == "c1"


def test_the_wallboard_orders_by_attention_by_default() -> None:
    dashboard = Dashboard(wallboard=True)
    assert dashboard.sort_by_attention
    dashboard.set_wallboard(False)
    assert not dashboard.sort_by_attention
    dashboard.set_sort_by_attention(True)
    dashboard.set_wallboard(True)
    dashboard.set_sort_by_attention(False)
    assert not dashboard.sort_by_attention  # chosen with s: the wallboard's default is off

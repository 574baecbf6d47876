"""Health flags in the pane (in words), the attention count, and `s` ordering the grid."""

from __future__ import annotations

import pytest

from tests.fixtures.app import FrozenClock, make_app, screen_text
from tui.listen import Transcript
from tui.monitor.apply import CallUpdater
from tui.monitor.follow import StateChanged, TranscriptReceived
from tui.monitor.model import ConversationInfo, Dashboard

pytestmark = pytest.mark.timeout(60)


def said(updater: CallUpdater, sid: str, role: str, text: str, final: bool = True) -> None:
    updater.apply(TranscriptReceived(Transcript(id=sid, role=role, text=text, final=final)))


def misbehaving(kind: str | None, count: int = 4) -> tuple[Dashboard, FrozenClock, str]:
    """``count`` live calls; the last one misbehaves as ``kind`` says (None: all behave)."""
    clock = FrozenClock()
    dashboard = Dashboard(clock=clock)
    updaters = []
    for i in range(count):
        call = dashboard.add_call(
            f"conv_{i + 1}", ConversationInfo(f"conv_{i + 1}", f"+1555000{i}")
        )
        updater = CallUpdater(call, health_tick_s=None)
        updater.apply(StateChanged("connected"))
        said(updater, f"c{i}-a0", "agent", "Thanks for calling, how can I help?")
        said(updater, f"c{i}-u0", "user", "My order has not arrived yet.")
        updaters.append(updater)
    bad = updaters[-1]
    clock.advance(1.0)
    for updater in updaters[:-1]:
        said(updater, f"{updater.call.conversation_id}-a1", "agent", "Let me look that up.")
    if kind == "slow":
        clock.advance(3.2)
        said(bad, "b-a1", "agent", "Let me look that up.")
    elif kind == "dead_air":
        said(bad, "b-a1", "agent", "One moment.")
        clock.advance(11.0)
        bad.tick()
    elif kind == "talk_over":
        said(bad, "b-a1", "agent", "Let me", final=False)
        said(bad, "b-u1", "user", "No listen", final=False)
        clock.advance(2.0)
        said(bad, "b-u1", "user", "No listen to me.")
        said(bad, "b-a1", "agent", "Let me explain.")
    elif kind == "loop":
        for n in range(3):
            said(bad, f"b-l{n}", "agent", "Could you repeat your order number?")
    else:
        said(bad, "b-a1", "agent", "Let me look that up.")
    return dashboard, clock, bad.call.conversation_id


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("slow", "SLOW 4.2s"),
        ("dead_air", "DEAD AIR 11s"),
        ("talk_over", "TALK-OVER ×1"),
        ("loop", "LOOP"),
    ],
)
async def test_each_flag_shows_in_words_on_the_right_pane(kind: str, words: str) -> None:
    dashboard, _clock, bad = misbehaving(kind)
    app = make_app(dashboard)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        panes = app.dashboard_screen.panes
        assert words in panes[bad]._caller.render().plain  # type: ignore[union-attr]
        for cid, pane in panes.items():
            if cid != bad:
                assert not pane.call.health.flagged
        assert "1 needs attention" in screen_text(app)


async def test_a_well_behaved_dashboard_raises_none() -> None:
    dashboard, _clock, _bad = misbehaving(None)
    app = make_app(dashboard)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        for words in ("SLOW", "DEAD AIR", "TALK-OVER", "LOOP", "attention"):
            assert words not in text
        assert "reply 1.0s (median 1.0s)" in text


async def test_s_puts_the_misbehaving_call_first_and_focus_stays_on_its_call() -> None:
    dashboard, _clock, bad = misbehaving("loop")
    app = make_app(dashboard)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        assert dashboard.focused_id == "conv_2"
        grid = app.dashboard_screen._grid
        assert [p.call.conversation_id for p in grid.children] == [  # type: ignore[attr-defined]
            "conv_1",
            "conv_2",
            "conv_3",
            "conv_4",
        ]
        await pilot.press("s")
        await pilot.pause()
        order = [p.call.conversation_id for p in grid.children]  # type: ignore[attr-defined]
        assert order == [bad, "conv_1", "conv_2", "conv_3"]
        assert dashboard.focused_id == "conv_2"  # the call, not the slot
        assert app.dashboard_screen.panes["conv_2"].index == 3
        assert "by attention (s)" in screen_text(app)
        await pilot.press("1")  # pane numbers follow the order on screen
        assert dashboard.focused_id == bad
        await pilot.press("s")
        await pilot.pause()
        order = [p.call.conversation_id for p in grid.children]  # type: ignore[attr-defined]
        assert order == ["conv_1", "conv_2", "conv_3", "conv_4"]
        assert dashboard.focused_id == bad


async def test_flags_without_colour_keep_their_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    dashboard, _clock, _bad = misbehaving("dead_air")
    app = make_app(dashboard)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert "DEAD AIR 11s" in screen_text(app)

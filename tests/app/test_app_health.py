"""Health flags in the pane (in words), the attention count, and `s` ordering the grid."""

from __future__ import annotations

import pytest

from tests.fixtures.app import make_app, pane_texts, screen_text
from tests.fixtures.health import misbehaving

pytestmark = pytest.mark.timeout(60)


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
        panes = pane_texts(app)
        assert words in panes[bad].splitlines()[1], panes[bad]  # its header
        for cid, pane in app.dashboard_screen.panes.items():
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

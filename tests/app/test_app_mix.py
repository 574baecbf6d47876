"""Mix mode keys (Pilot): M puts the focused call in the mix or takes it out, + and -
change its volume; the model says so and the panes show it in words."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.app import make_app, pane_texts, screen_text, scripted_dashboard
from tui.app.app import DashboardApp
from tui.monitor.model import MIX_PAN

pytestmark = pytest.mark.timeout(60)


def audio_label(app: DashboardApp, conversation_id: str) -> str:
    """The pane's audio words as the screen shows them: its second header line ends
    with them, after the duration and route and before the level meter."""
    meta_line = pane_texts(app)[conversation_id].splitlines()[2]
    inside = meta_line[1:-1].rstrip()  # the border
    without_meter = re.sub(r"[ ▁▂▃▄▅▆▇█░]+$", "", inside)
    return re.split(r"\s{2,}", without_meter)[-1]


async def test_m_mixes_calls_and_plus_minus_change_the_focused_volume() -> None:
    app = make_app(scripted_dashboard(4))  # a 2x2 grid
    dashboard = app.dashboard
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("space", "M")
        assert dashboard.mix == ("conv_01",)
        assert audio_label(app, "conv_01") == "♪ heard · mix C · 100%"  # focused: the centre
        await pilot.press("right")
        assert dashboard.placements == {"conv_02": (1.0, 0.0), "conv_01": (1.0, -MIX_PAN)}
        assert audio_label(app, "conv_01") == "♪ heard · mix L · 100%"
        assert audio_label(app, "conv_02") == "♪ heard"
        assert app.dashboard_screen.panes["conv_01"].has_class("-heard")
        assert "listening on: 2 calls" in str(app.dashboard_screen._status.render())
        await pilot.press("M", "minus", "minus", "minus")
        assert dashboard.mix == ("conv_01", "conv_02") and dashboard.volume("conv_02") == 70
        await pilot.press("3")  # conv_03 centre; conv_02, second in the mix, on the right
        assert dashboard.placements == {
            "conv_03": (1.0, 0.0),
            "conv_01": (1.0, -MIX_PAN),
            "conv_02": (pytest.approx(0.7), MIX_PAN),
        }
        assert audio_label(app, "conv_02") == "♪ heard · mix R · 70%"
        await pilot.press("plus", "plus")
        assert dashboard.volume("conv_03") == 120
        assert audio_label(app, "conv_03") == "♪ heard · 120%"
        await pilot.press("m")  # mute: nothing heard, the mix is kept for the next space
        assert dashboard.placements == {} and dashboard.mix == ("conv_01", "conv_02")
        assert audio_label(app, "conv_01") == "muted · mix L · 100%"
        await pilot.press("2", "M")  # conv_02 leaves the mix
        assert dashboard.mix == ("conv_01",)
        assert audio_label(app, "conv_02") == "muted · 70%"


async def test_the_wallboard_takes_no_mix_or_volume_keys() -> None:
    app = make_app(scripted_dashboard(2, wallboard=True))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("M", "plus")
        assert app.dashboard.mix == () and app.dashboard.volume("conv_01") == 100


async def test_the_help_screen_lists_the_mix_keys() -> None:
    app = make_app(scripted_dashboard(2))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        for row in (
            "Mix the focused call in or out",
            "Focused call louder",
            "Focused call quieter",
        ):
            assert row in text

"""The command palette lists calls by caller and agent, as data: never as markup."""

from __future__ import annotations

import pytest

from tests.fixtures.app import make_app, screen_text
from tui.monitor.model import ConversationInfo, Dashboard

HOSTILE_CALLER = "a[/]b [bold]x"


@pytest.mark.timeout(60)
async def test_palette_shows_hostile_callers_literally_and_focuses_them() -> None:
    dashboard = Dashboard()
    dashboard.add_call("conv_1", ConversationInfo("conv_1", user_id="+15550001", agent_name="Ava"))
    dashboard.add_call(
        "conv_2", ConversationInfo("conv_2", user_id=HOSTILE_CALLER, agent_name="[red]Max")
    )
    dashboard.get("conv_2").set_state("connected")  # type: ignore[union-attr]
    app = make_app(dashboard)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        text = screen_text(app)
        assert HOSTILE_CALLER in text and "[red]Max" in text
        await pilot.press(*"Focus call: a")
        await pilot.pause(0.5)
        assert app.is_running
        assert "LIVE" not in screen_text(app).split("Focus call")[-1][:200]
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert dashboard.focused_id == "conv_2"
        await pilot.press("q")

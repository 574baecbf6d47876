"""With NO_COLOR the dashboard still tells focus, roles and hearing apart, without colour."""

from __future__ import annotations

import pytest

from tests.fixtures.app import make_app, screen_text, scripted_dashboard


@pytest.mark.timeout(60)
async def test_no_color_keeps_focus_roles_and_hearing_readable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(scripted_dashboard(4))
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert app.no_color, "Textual honours NO_COLOR"
        text = screen_text(app)
        # Focus by the border's shape: one heavy corner, the focused pane's.
        assert text.count("┏") == 1
        # Roles by label, not only by colour.
        assert "AGENT" in text and "CALLER" in text
        assert "muted" in text and "heard" not in text
        await pilot.press("space")
        await pilot.pause()
        text = screen_text(app)
        assert "♪ heard" in text and text.count("┏") == 1
        before = text.index("┏")
        await pilot.press("right")
        await pilot.pause()
        after = screen_text(app)
        assert after.count("┏") == 1 and after.index("┏") != before, "focus moved, visibly"
        await pilot.press("q")

"""Keyword alerts in the running dashboard: the line is highlighted, the pane flagged,
the bell rings once, and focus moves to the pane when configured."""

from __future__ import annotations

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.app import screen_text
from tests.fixtures.live import LiveFactory, until
from tui.app.app import DashboardApp
from tui.app.widgets.call_pane import CallPane
from tui.demo.calls import CallOptions
from tui.demo.scenarios import load_scenario
from tui.monitor.alerts import AlertMatcher
from tui.monitor.model import Dashboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

KEYWORD = "third time"  # said once, early, in the escalation scenario


@pytest.mark.timeout(120)
async def test_keyword_highlights_line_flags_pane_rings_once_and_takes_focus(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    matcher = AlertMatcher([KEYWORD])
    escalation = load_scenario("escalation").lines
    assert sum(matcher.matches(line.text) for line in escalation) == 1
    assert not any(matcher.matches(line.text) for line in load_scenario("support").lines)

    stack = await demo_stack(calls=0)
    options = CallOptions(mode="tone", loop=True, time_scale=0.3)
    quiet = stack.start_call("support", channel="webrtc", options=options)
    loud = stack.start_call("escalation", channel="webrtc", options=options)
    await stack.wait_in_progress(2)
    dashboard = Dashboard()
    monitor = live_monitor(
        stack,
        dashboard=dashboard,
        discovery=False,
        alerts=matcher,
        focus_on_alert=True,
        start=False,
        pinned=[quiet.conversation_id, loud.conversation_id],
    )
    app = DashboardApp(dashboard, monitor)
    rings: list[int] = []
    ring = app.bell
    app.bell = lambda: (rings.append(1), ring())[1]  # type: ignore[method-assign]

    async with app.run_test(size=(200, 50)) as pilot:
        assert dashboard.focused_id == quiet.conversation_id
        call = dashboard.get(loud.conversation_id)
        assert call is not None
        await until(lambda: call.alerted, 60, "the alert fires", dashboard)
        await pilot.pause(0.2)
        assert dashboard.focused_id == loud.conversation_id  # focus_on_alert
        pane = app.dashboard_screen.panes[loud.conversation_id]
        assert isinstance(pane, CallPane)
        assert pane.has_class("-alert")
        assert "⚑ ALERT" in screen_text(app)
        flagged = [s for s in call.transcript.segments if s.alert]
        assert len(flagged) == 1 and KEYWORD in flagged[0].text.lower()
        # The line itself is drawn in the alert style (reverse video), others are not:
        # read the rows the view draws now (it is following, so the new line is on screen).
        view = pane.transcript
        strips = [view.render_line(y) for y in range(view.size.height)]
        alert_style = pane.transcript.get_component_rich_style("transcript--alert")
        styled = [
            strip.text for strip in strips if any(seg.style and seg.style.reverse for seg in strip)
        ]
        assert alert_style.reverse and any(KEYWORD in text.lower() for text in styled)
        lines_then = len(call.transcript)
        await until(lambda: len(call.transcript) >= lines_then + 2, 60, "more lines", dashboard)
        quiet_call = dashboard.get(quiet.conversation_id)
        assert quiet_call is not None and not quiet_call.alerted
        assert rings == [1]  # once, however the line grew and whatever followed
        await pilot.press("q")
        await until(lambda: not app.is_running, 10, "the app exits after q")

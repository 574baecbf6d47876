"""Snapshots of the states a pane or the dashboard is in when something is not fine.

Reconnecting…, Waiting for room…, an error text, a keyword alert, the dashboard
banner and the audio notice of the status line, each at 80x24 and at a wider
size, with the model built on a frozen clock and fixed ids (as
tests/app/test_app_snapshots.py does for the happy states).  Each test also
asserts the words on screen, so a state that is not shown fails with a readable
message and not only as a pixel diff.

Refresh after an intended visual change with ``pytest
tests/app/test_app_state_snapshots.py --snapshot-update`` and review the SVGs in
tests/app/__snapshots__/test_app_state_snapshots/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest
from textual.pilot import Pilot

from tests.fixtures.app import (
    AGENTS,
    CALLERS,
    FROZEN_NOW,
    LINES,
    FrozenClock,
    pane_texts,
    screen_text,
)
from tests.fixtures.health import calls_that, misbehaving
from tui.anyreach.errors import Forbidden
from tui.app.app import DashboardApp
from tui.monitor.discovery import failing_banner
from tui.monitor.model import ConversationInfo, Dashboard, MonitoredCall

SIZES = {"80x24": (80, 24), "160x40": (160, 40)}

# The product's own words, so the snapshots follow them.
SCOPE_ERROR = Forbidden.short  # "Key lacks scope conversations:read_sensitive or :manage (403)"
BANNER = failing_banner(type("ServiceUnavailable", (Exception,), {"status": 503})())
NO_AUDIO = "No audio device (PortAudioError): playing nothing"  # tui/audio/device.py
READABLE_SCOPE_ERROR = "Key lacks scope conversations:read_sensitive or :manage"
DEVICE_LOST = "Audio device lost (pulse): retrying"  # tui/audio/device.py
ALERT_LINE = "I want to speak to a supervisor, or I cancel everything."

pytestmark = pytest.mark.timeout(60)


def add_call(dashboard: Dashboard, i: int, *, lines: int = 3) -> MonitoredCall:
    """Call ``conv_0{i+1}``, connected, with ``lines`` settled lines of transcript."""
    conversation_id = f"conv_{i + 1:02}"
    caller = CALLERS[i % len(CALLERS)]
    info = ConversationInfo(
        conversation_id,
        user_id=caller,
        agent_name=AGENTS[i % len(AGENTS)],
        channel="webrtc" if caller.startswith("guest_") else "telephone",
        direction="inbound",
        started_at=FROZEN_NOW - timedelta(seconds=65 + 37 * i),
    )
    call = dashboard.add_call(conversation_id, info)
    call.set_state("connecting")
    call.set_state("connected")
    for n, (role, text) in enumerate(LINES[:lines]):
        call.add_transcript(f"{conversation_id}-s{n}", role, text, final=True)
    return call


def reconnecting(call: MonitoredCall) -> None:
    """Was LIVE, the session dropped, and the follower is joining again."""
    call.set_state("disconnected")
    call.set_state("connecting")


def waiting(call: MonitoredCall) -> None:
    """The API says the call is active but its room is not there yet (404 while active)."""
    call.set_state("disconnected")
    call.set_waiting(True)


def failed(call: MonitoredCall) -> None:
    call.set_state("disconnected")
    call.set_error(SCOPE_ERROR)


def alerted(call: MonitoredCall) -> None:
    segment_id = f"{call.conversation_id}-alert"
    call.add_transcript(segment_id, "user", ALERT_LINE, final=True)
    assert call.flag_alert(segment_id)


def dashboard_of(*states: Callable[[MonitoredCall], None] | None) -> Dashboard:
    """One call per entry, each left in the state its function puts it in (None: LIVE)."""
    dashboard = Dashboard(clock=FrozenClock())
    for i, state in enumerate(states):
        call = add_call(dashboard, i)
        if state is not None:
            state(call)
    return dashboard


def app_for(dashboard: Dashboard, notice: str | None = None) -> DashboardApp:
    return DashboardApp(dashboard, None, display_tz=UTC, notice=notice)


@dataclass
class Shown:
    """What the app showed when the snapshot was taken."""

    matched: bool  # the snapshot matched the stored SVG
    text: str  # the whole screen as plain text
    panes: dict[str, str]  # each pane's part of the screen, by conversation id
    reversed_text: str  # the text drawn in reverse video (highlights, banner, flags)

    @property
    def status(self) -> str:
        return self.text.splitlines()[0]

    def header(self, conversation_id: str) -> str:
        """The pane's first line inside its border: index, caller, agent and badge."""
        assert conversation_id in self.panes, f"no pane {conversation_id}: {sorted(self.panes)}"
        return self.panes[conversation_id].splitlines()[1]


def grab(app: DashboardApp) -> tuple[str, dict[str, str], str]:
    strips = app.screen._compositor.render_strips()
    lines = [strip.text for strip in strips]
    panes = pane_texts(app)
    reversed_text = " ".join(
        segment.text
        for strip in strips
        for segment in strip
        if segment.style is not None and segment.style.reverse
    )
    assert "\n".join(lines) == screen_text(app)
    return "\n".join(lines), panes, reversed_text


def snapshot(
    snap_compare,
    app: DashboardApp,
    size: str,
    then: Callable[[DashboardApp], None] | None = None,
    press: tuple[str, ...] = (),
) -> Shown:
    """Take the snapshot and return what was on screen at that moment.

    ``then`` runs on the running app before the snapshot (a change after the start),
    then the keys of ``press`` are pressed.
    The caller asserts the words first, then ``matched``.
    """
    seen: list[tuple[str, dict[str, str], str]] = []

    async def before(pilot: Pilot) -> None:
        await pilot.pause()
        if then is not None:
            then(app)
            await pilot.pause()
        if press:
            await pilot.press(*press)
            await pilot.pause()
        seen.append(grab(app))

    matched = snap_compare(app, terminal_size=SIZES[size], run_before=before)
    assert seen, "the app never got to the snapshot"
    return Shown(matched, *seen[0])


@pytest.mark.parametrize("size", list(SIZES))
def test_pane_reconnecting(snap_compare, size: str) -> None:
    shown = snapshot(snap_compare, app_for(dashboard_of(reconnecting)), size)
    header = shown.header("conv_01")
    assert "Reconnecting…" in header and "LIVE" not in header, shown.text
    assert LINES[2][1] in shown.panes["conv_01"], f"the transcript is gone:\n{shown.text}"
    assert "1 connecting" in shown.status, shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_pane_waiting_for_room(snap_compare, size: str) -> None:
    shown = snapshot(snap_compare, app_for(dashboard_of(waiting)), size)
    header = shown.header("conv_01")
    assert "Waiting for room…" in header and "LIVE" not in header, shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_pane_error_text(snap_compare, size: str) -> None:
    """The 403 scope error (whole at 160 columns: test_the_scope_error_is_shown_whole...)."""
    shown = snapshot(snap_compare, app_for(dashboard_of(failed)), size)
    assert READABLE_SCOPE_ERROR in shown.header("conv_01"), shown.text
    assert "LIVE" not in shown.header("conv_01"), shown.text
    assert "1 failed" in shown.status, shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_pane_keyword_alert(snap_compare, size: str) -> None:
    """The alert is on the second pane (not focused: its own double border shows)."""
    app = app_for(dashboard_of(None, alerted, None, None))
    shown = snapshot(snap_compare, app, size)
    assert "⚑ ALERT" in shown.header("conv_02"), shown.text
    for other in ("conv_01", "conv_03", "conv_04"):
        assert "⚑ ALERT" not in shown.header(other), shown.text
    assert "supervisor" in shown.panes["conv_02"], f"no alert line in its pane:\n{shown.text}"
    # The alerted line is highlighted (reverse video); the lines before it are not.
    assert "supervisor" in shown.reversed_text, f"alert line not highlighted:\n{shown.text}"
    assert LINES[1][1] not in shown.reversed_text, shown.reversed_text
    # At 80 columns the status line is cut after "1 needs" (its tail falls off the line).
    assert ("1 needs attention" if size != "80x24" else "1 needs") in shown.status, shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_dashboard_banner(snap_compare, size: str) -> None:
    """Discovery fails: the banner says so and the last known calls stay on screen."""
    dashboard = dashboard_of(None, None, reconnecting, None)
    dashboard.set_banner(BANNER)
    shown = snapshot(snap_compare, app_for(dashboard), size)
    assert BANNER in shown.status, f"the banner is not on the status line:\n{shown.text}"
    assert BANNER in shown.reversed_text, shown.reversed_text
    for call in dashboard.calls:
        assert call.info.caller in shown.header(call.conversation_id), shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_audio_notice_at_start(snap_compare, size: str) -> None:
    """``notice=`` at construction.  At 80 columns the status line keeps only the
    notice's first words: see test_known_defect_notice_cut_at_80_columns."""
    app = app_for(dashboard_of(None), notice=NO_AUDIO)
    shown = snapshot(snap_compare, app, size)
    expected = NO_AUDIO if size != "80x24" else "No audio"
    assert expected in shown.status, f"the audio notice is not shown:\n{shown.text}"
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_audio_notice_set_later(snap_compare, size: str) -> None:
    """``set_notice`` on the running app replaces the notice it started with."""
    app = app_for(dashboard_of(None), notice=NO_AUDIO)
    shown = snapshot(snap_compare, app, size, then=lambda running: running.set_notice(DEVICE_LOST))
    expected = DEVICE_LOST if size != "80x24" else "Audio device"
    assert expected in shown.status, f"the new notice is not shown:\n{shown.text}"
    assert "No audio" not in shown.status, shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_grid_of_troubled_panes(snap_compare, size: str) -> None:
    """LIVE, Reconnecting…, Waiting for room… and an error side by side, with the banner.

    At 80x24 the error badge fills the pane's header: only its first words show and
    the caller is squeezed to "…" (reported; the snapshot records it as it is).
    """
    dashboard = dashboard_of(None, reconnecting, waiting, failed)
    dashboard.set_banner(BANNER)
    shown = snapshot(snap_compare, app_for(dashboard), size)
    expected = ["LIVE", "Reconnecting…", "Waiting for room…", "Key lacks scope"]
    for i, badge in enumerate(expected):
        header = shown.header(f"conv_{i + 1:02}")
        assert badge in header, f"conv_{i + 1:02} should show {badge!r}:\n{shown.text}"
    if size != "80x24":
        assert READABLE_SCOPE_ERROR in shown.header("conv_04"), shown.text
    assert BANNER in shown.status, shown.text
    assert shown.matched


# -- what should show and does not yet (product defects; strict: a fix makes them pass) --


async def shown_live(app: DashboardApp, size: tuple[int, int]) -> Shown:
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        return Shown(True, *grab(app))


async def test_the_scope_error_is_shown_whole_when_there_is_room() -> None:
    shown = await shown_live(app_for(dashboard_of(failed)), SIZES["160x40"])
    assert SCOPE_ERROR in shown.header("conv_01"), shown.header("conv_01")


async def test_the_notice_is_shown_whole_at_80_columns() -> None:
    shown = await shown_live(app_for(dashboard_of(None), notice=NO_AUDIO), SIZES["80x24"])
    assert NO_AUDIO in shown.status, shown.status


# -- agent health: each flag in its pane, and the grid in attention order ----------------

FLAG_WORDS = {
    "slow": "SLOW 4.2s",
    "dead_air": "DEAD AIR 11s",
    "talk_over": "TALK-OVER ×1",
    "loop": "LOOP",
}


def health_header(shown: Shown, conversation_id: str) -> str:
    return shown.panes[conversation_id].splitlines()[1]


@pytest.mark.parametrize("kind", list(FLAG_WORDS))
def test_pane_with_a_health_flag(snap_compare, kind: str) -> None:
    """Four live calls; the fourth misbehaves in one way and says so in its header."""
    dashboard, _clock, bad = misbehaving(kind)
    shown = snapshot(snap_compare, app_for(dashboard), "160x40")
    assert FLAG_WORDS[kind] in health_header(shown, bad), shown.text
    for other in ("conv_1", "conv_2", "conv_3"):
        header = health_header(shown, other)
        assert not any(words in header for words in FLAG_WORDS.values()), shown.text
    assert "1 needs attention" in shown.status, shown.text
    assert shown.matched


@pytest.mark.parametrize("size", list(SIZES))
def test_grid_in_attention_order(snap_compare, size: str) -> None:
    """Six calls, four misbehaving, after ``s``: most urgent first (a silence going on,
    then a loop, a slow answer, a talk-over), the well-behaved ones after them in their
    own order; focus stays on the call it was on (conv_2), now in the fourth slot."""
    dashboard, _clock = calls_that("talk_over", None, "slow", "loop", None, "dead_air")
    app = app_for(dashboard)
    shown = snapshot(snap_compare, app, size, press=("2", "s"))
    by_position = sorted(shown.panes, key=lambda cid: app.dashboard_screen.panes[cid].index)
    assert by_position == ["conv_6", "conv_4", "conv_3", "conv_1", "conv_2", "conv_5"], shown.text
    flagged = {"conv_6": "dead_air", "conv_4": "loop", "conv_3": "slow", "conv_1": "talk_over"}
    for cid, kind in flagged.items():
        assert FLAG_WORDS[kind] in health_header(shown, cid), shown.text
    assert dashboard.focused_id == "conv_2"
    assert "4 need attention" in shown.status, shown.text
    assert "by attention (s)" in shown.status or size == "80x24", shown.text
    assert shown.matched

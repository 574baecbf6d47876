"""Snapshots of the dashboard with deterministic content (events injected, clock frozen).

Refresh after an intended visual change with ``pytest tests/app/test_app_snapshots.py
--snapshot-update`` and review the SVGs in tests/app/__snapshots__/.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tests.fixtures.app import make_app, pane_texts, scripted_dashboard

SIZES = {"80x24": (80, 24), "200x50": (200, 50)}

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("count", [1, 4, 9])
def test_grid_of_panes(snap_compare, count: int, size: str) -> None:
    assert snap_compare(make_app(scripted_dashboard(count)), terminal_size=SIZES[size])


def test_thirty_two_panes_on_200x60(snap_compare) -> None:
    """The most a shift follows at once: a 6x6 grid with every pane's caller, badge, meter
    and last line on screen, and nothing scrolled out of sight."""
    app = make_app(scripted_dashboard(32))
    seen: dict[str, str] = {}

    async def look(pilot: Pilot) -> None:
        await pilot.pause()
        seen.update(pane_texts(app))

    assert snap_compare(app, terminal_size=(200, 60), run_before=look)
    assert len(seen) == 32
    for conversation_id, text in seen.items():
        rows = text.splitlines()
        assert len(rows) >= 6, (conversation_id, text)  # border, header, meta, three lines
        call = app.dashboard.get(conversation_id)
        assert call is not None
        assert call.info.caller in rows[1], (conversation_id, rows[1])
        assert any(badge in rows[1] for badge in ("LIVE", "Connecting…", "Ended")), rows[1]
        assert "muted" in rows[2] and "░" in rows[2], (conversation_id, rows[2])
        if call.transcript.segments:  # its latest words, at the pane's foot
            last_word = call.transcript.segments[-1].text.split()[-1]
            assert last_word in rows[-2], (conversation_id, last_word, text)


@pytest.mark.parametrize("size", list(SIZES))
def test_help_screen(snap_compare, size: str) -> None:
    assert snap_compare(make_app(scripted_dashboard(4)), press=["?"], terminal_size=SIZES[size])


@pytest.mark.parametrize("size", list(SIZES))
def test_wallboard_mode(snap_compare, size: str) -> None:
    app = make_app(scripted_dashboard(9, wallboard=True))
    assert snap_compare(app, terminal_size=SIZES[size])


def test_zoomed_pane_with_listening_on(snap_compare) -> None:
    assert snap_compare(
        make_app(scripted_dashboard(4)), press=["right", "space", "z"], terminal_size=(80, 24)
    )


def test_below_80x24_still_renders(snap_compare) -> None:
    assert snap_compare(make_app(scripted_dashboard(4)), terminal_size=(50, 14))

"""Snapshots of the dashboard with deterministic content (events injected, clock frozen).

Refresh after an intended visual change with ``pytest tests/app/test_app_snapshots.py
--snapshot-update`` and review the SVGs in tests/app/__snapshots__/.
"""

from __future__ import annotations

import pytest

from tests.fixtures.app import make_app, scripted_dashboard

SIZES = {"80x24": (80, 24), "200x50": (200, 50)}

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("count", [1, 4, 9])
def test_grid_of_panes(snap_compare, count: int, size: str) -> None:
    assert snap_compare(make_app(scripted_dashboard(count)), terminal_size=SIZES[size])


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

"""A sound device lost mid-run shows in the dashboard's status bar, and so does its return."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.fixtures.app import screen_text
from tests.fixtures.audio import PulseServer
from tui.config import load_settings


async def wait_for_text(app, pilot, needle: str, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while needle not in screen_text(app):
        assert time.monotonic() < deadline, f"{needle!r} never shown:\n{screen_text(app)}"
        await pilot.pause(0.2)


@pytest.mark.timeout(90)
async def test_device_lost_and_back_are_shown(pulse_server: PulseServer, tmp_path: Path) -> None:
    from tui.commands.dashboard import build_dashboard

    config = tmp_path / "config.toml"
    config.write_text("")
    settings = load_settings(
        config,
        {
            "api_url": "http://127.0.0.1:9",  # nothing listens: no calls, discovery banner only
            "api_key": "ak_test",
            "discovery": {"enabled": False},
            "transcripts": {"enabled": False},
        },
    )
    parts = build_dashboard(settings)
    app = parts.app
    try:
        async with app.run_test(size=(160, 30)) as pilot:
            await pilot.pause(1.0)
            assert "lost" not in screen_text(app)
            await asyncio.to_thread(pulse_server.stop)
            await wait_for_text(app, pilot, "lost", 30)
            await asyncio.to_thread(pulse_server.start)
            await wait_for_text(app, pilot, "back", 40)
            await pilot.press("q")
    finally:
        parts.close_audio()  # a live device thread would outlast the test

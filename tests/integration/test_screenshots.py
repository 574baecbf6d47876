"""The README's screenshot script runs here, into a temporary folder, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = {"zoomed-call": 1, "four-calls": 3, "wallboard-9": 8, "help": 0}


@pytest.mark.timeout(600)
def test_screenshot_script_makes_every_screenshot(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, live_panes in SHOTS.items():
        svg = (tmp_path / f"{name}.svg").read_text()
        assert svg.count("LIVE") >= live_panes, f"{name}: too few LIVE panes"
        assert "ak_" not in svg and "eyJ" not in svg, f"{name}: a key or token is visible"
    assert "anyreach-tui&#160;keys" in (tmp_path / "help.svg").read_text()
    four = (tmp_path / "four-calls.svg").read_text()
    assert "AGENT" in four or "CALLER" in four, "transcript lines are visible"

"""The README's screenshot script runs here, into a temporary folder, so it cannot rot."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = {"zoomed-call": 1, "four-calls": 3, "wallboard-9": 8}
# The help box's first rows: the dashboard's keys as bound by default, in binding order.
HELP_ROWS = [
    ("tab", "Next pane"),
    ("shift+tab", "Previous pane"),
    ("space", "Listen"),
    ("m", "Mute"),
    ("M", "Mix the focused call in or out"),
    ("+", "Focused call louder"),
    ("-", "Focused call quieter"),
    ("⏎ z", "Zoom"),
    ("esc", "Back"),
    ("a", "Add"),
    ("x", "Close"),
    ("o", "Open in web app"),
    ("y", "Copy id and link"),
    ("/", "Filter"),
    ("w", "Wallboard"),
    ("s", "Attention order"),
    ("?", "Help"),
    ("q", "Quit"),
    (":", "Commands"),
]
SVG_TEXT = re.compile(
    r'<text [^>]*?x="([\d.]+)" y="([\d.]+)" textLength="([\d.]+)"[^>]*>(.*?)</text>', re.S
)


def screen_lines(svg: str) -> list[str]:
    """The terminal's lines as Textual's SVG export drew them, each text run at its column."""
    rows: dict[float, dict[int, str]] = {}
    for x, y, length, raw in SVG_TEXT.findall(svg):
        text = html.unescape(re.sub(r"<[^>]+>", "", raw)).replace("\xa0", " ")
        if not text:
            continue
        column = round(float(x) / (float(length) / len(text)))
        row = rows.setdefault(float(y), {})
        for offset, char in enumerate(text):
            row[column + offset] = char
    return [
        "".join(row.get(c, " ") for c in range(max(row) + 1)).rstrip()
        for _, row in sorted(rows.items())
    ]


def help_rows(svg: str) -> list[tuple[str, str]]:
    """(keys, description) of each row inside the help box, top to bottom."""
    lines = screen_lines(svg)
    top = next((i for i, line in enumerate(lines) if "│ anyreach-tui keys" in line), None)
    assert top is not None, "no help box titled 'anyreach-tui keys'"
    left = lines[top].index("│ anyreach-tui keys")
    right = lines[top].index("│", left + 1)
    rows = []
    for line in lines[top + 1 :]:
        if line[left] == "╰":
            break
        inside = line[left + 1 : right].replace("▇", " ")
        keys, gap, description = inside.strip().partition("  ")
        assert gap and description.strip(), f"a help row without a description: {inside!r}"
        rows.append((keys, description.strip()))
    return rows


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
    help_svg = (tmp_path / "help.svg").read_text()
    assert "ak_" not in help_svg and "eyJ" not in help_svg, "help: a key or token is visible"
    # The help box over the dashboard: its title, then every key with what it does.
    rows = help_rows(help_svg)
    assert rows[: len(HELP_ROWS)] == HELP_ROWS
    four = (tmp_path / "four-calls.svg").read_text()
    assert "AGENT" in four or "CALLER" in four, "transcript lines are visible"

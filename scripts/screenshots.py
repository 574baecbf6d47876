#!/usr/bin/env python3
"""Make the README's SVG screenshots from the real demo stack.

Starts ``anyreach-tui simulate`` (real livekit-server, the API emulator, simulated
calls speaking with espeak-ng), opens the dashboard headless on its calls with
Textual's test driver, waits until the panes are LIVE with transcript text, and
saves:

  zoomed-call.svg    one call zoomed, listening on
  four-calls.svg     four calls in a 2x2 grid
  wallboard-9.svg    nine calls on a wallboard
  help.svg           the help screen

Usage: .venv/bin/python scripts/screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from tui.commands.dashboard import build_dashboard
from tui.commands.demo import StackProcess
from tui.config import load_settings
from tui.monitor.model import Dashboard

CALLS = 9
READY_TIMEOUT = 90.0


async def wait_until_ready(dashboard: Dashboard, panes: int, pilot: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not (len(dashboard.calls) >= panes and ready(dashboard)):
        if time.monotonic() > deadline:
            states = ", ".join(
                f"{c.conversation_id}: {c.badge.text} ({len(c.transcript)} lines)"
                for c in dashboard.calls
            )
            raise TimeoutError(f"the demo calls did not show LIVE with transcripts: {states}")
        await pilot.pause(0.25)


def ready(dashboard: Dashboard) -> bool:
    """Every pane has settled lines, and all but at most one are LIVE (calls do end)."""
    calls = dashboard.calls
    live = sum(1 for call in calls if call.is_live)
    settled = all(any(s.final for s in call.transcript.segments) for call in calls)
    return settled and live >= max(1, len(calls) - 1)


async def shoot(
    stack: StackProcess,
    config: Path,
    out: Path,
    name: str,
    size: tuple[int, int],
    *,
    panes: int,
    wallboard: bool = False,
    keys: tuple[str, ...] = (),
) -> Path:
    settings = load_settings(
        config,
        {
            "api_url": stack.api_url,
            "api_key": stack.api_key,
            "audio": {"no_audio": True},
            "ui": {"wallboard": wallboard},
            "discovery": {"max_panes": panes, "interval_s": 1.0},
            "transcripts": {"enabled": False},
        },
    )
    parts = build_dashboard(settings)
    app = parts.app
    try:
        async with app.run_test(size=size) as pilot:
            await wait_until_ready(app.dashboard, panes, pilot)
            for key in keys:
                await pilot.press(key)
            await pilot.pause(0.5)
            path = Path(app.save_screenshot(f"{name}.svg", str(out)))
            await pilot.press("q")
            await pilot.pause(0.5)
    finally:
        parts.close_audio()
    return path


async def make_all(out: Path, stack: StackProcess, config: Path) -> list[Path]:
    return [
        await shoot(stack, config, out, "zoomed-call", (120, 36), panes=4, keys=("space", "z")),
        await shoot(stack, config, out, "four-calls", (160, 45), panes=4),
        await shoot(stack, config, out, "wallboard-9", (240, 60), panes=9, wallboard=True),
        await shoot(stack, config, out, "help", (120, 36), panes=4, keys=("question_mark",)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / ".stack.log", "ab") as log:
        stack = StackProcess(CALLS, tone=False, log=log)
        try:
            stack.read_endpoint()
            config = args.out / ".empty-config.toml"
            config.write_text("# screenshots: settings come from the local stack\n")
            paths = asyncio.run(make_all(args.out, stack, config))
            config.unlink()
        finally:
            stack.stop()
    (args.out / ".stack.log").unlink(missing_ok=True)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

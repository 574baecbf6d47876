#!/usr/bin/env python3
"""Benchmark: how long Python's garbage collector stops the dashboard, by history length.

A full (generation 2) collection walks every object the collector tracks and holds
the GIL meanwhile: the UI loop, the audio callback and LiveKit's event threads all
wait.  A pause longer than the ~40 ms of queued device audio is a click in the heard
call and a late focus switch.  The dashboard runs for hours, so what matters is the
pause once every pane's transcript history is full (500 segments a call).

Runs the real DashboardApp headless (Textual's test driver) at 200x60 with N panes,
freezes the start-up heap as the dashboard command does (``tui.core.heap``), then
fills every call's transcript to each ``--segments`` length with final lines of
ordinary length, lets every pane paint, and prints the objects the collector still
tracks and how long ``gc.collect()`` takes (median of 5).
Figures only: nothing is asserted.

Usage: .venv/bin/python scripts/bench_gc.py [--panes 32] [--segments 0,100,500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import time
from datetime import UTC, datetime

from bench_repaints import connected_dashboard  # this folder is on sys.path when run

from tui.app.app import DashboardApp
from tui.core.heap import freeze_startup_heap

WORDS = (
    "thanks for calling I can see your order from Tuesday and the refund is on its way "
    "it should reach your card within three to five working days is there anything else"
).split()


def line(n: int) -> str:
    """An ordinary spoken line of 12-20 words, different for each n."""
    count = 12 + n % 9
    return " ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(count))


def full_collect_ms(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


async def run(panes: int, histories: list[int]) -> None:
    dashboard, _ = connected_dashboard(panes)
    app = DashboardApp(dashboard, None)
    print("# scripts/bench_gc.py: a full garbage collection with every pane's history filled")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"{panes} panes at 200x60"
    )
    print()
    print("| segments per call | tracked objects | full collect ms |")
    print("|---|---|---|")
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause(0.5)
        before = full_collect_ms()
        frozen = freeze_startup_heap()  # as the dashboard command does once it is up
        written = 0
        for target in histories:
            while written < target:
                for n, call in enumerate(dashboard.calls):
                    role = "agent" if written % 2 else "user"
                    call.add_transcript(f"SG_{written:06}", role, line(written + n), True)
                written += 1
                if written % 50 == 0:
                    await pilot.pause(0.05)  # let the panes paint as they would live
            await pilot.pause(0.5)
            tracked = len(gc.get_objects())
            print(f"| {target} | {tracked} | {full_collect_ms():.1f} |", flush=True)
        await pilot.press("q")
    print()
    print(
        f"- the start-up heap, {frozen} objects, is frozen first as the dashboard does "
        f"(a full collection of it took {before:.1f} ms); the rows are what is left to walk"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--panes", type=int, default=32)
    parser.add_argument(
        "--segments",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[0, 100, 500],
        help="history lengths to measure, in order (0,100,500)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.panes, args.segments))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

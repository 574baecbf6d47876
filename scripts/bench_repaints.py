#!/usr/bin/env python3
"""Benchmark: how the dashboard absorbs transcript bursts.

Runs the real DashboardApp headless (Textual's test driver) with N panes and
injects interim transcript updates into the model as fast as a burst allows
(every update grows the segment's text, as agent speech streams do), then
prints, per pane, how many transcript repaints the UI made per second, and
how late a 10 ms ticker on the UI's event loop ran during the burst (what a
key press would feel).  The design target is at most ~20 repaints a second per
pane whatever the update rate.  Figures only: nothing is asserted.

Usage: .venv/bin/python scripts/bench_repaints.py [--panes 9] [--seconds 3] [--rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

from tui.app.app import DashboardApp
from tui.app.widgets.call_pane import CallPane
from tui.monitor.model import ConversationInfo, Dashboard


def connected_dashboard(panes: int) -> tuple[Dashboard, list[str]]:
    """A model with ``panes`` connected calls and no transcript yet (bench_gc uses it too)."""
    dashboard = Dashboard()
    ids = [f"conv_{i:02}" for i in range(panes)]
    for i, conversation_id in enumerate(ids):
        call = dashboard.add_call(
            conversation_id,
            ConversationInfo(conversation_id, user_id=f"+1555000{i:04}", agent_name="Ava"),
        )
        call.set_state("connected")
    return dashboard, ids


async def run(panes: int, seconds: float, rate: float) -> None:
    dashboard, ids = connected_dashboard(panes)

    repaints: Counter[str] = Counter()
    original = CallPane.update_transcript

    def counting(self: CallPane) -> None:
        repaints[self.call.conversation_id] += 1
        original(self)

    CallPane.update_transcript = counting  # type: ignore[method-assign]
    app = DashboardApp(dashboard, None)
    lags: list[float] = []
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause(0.5)
        repaints.clear()

        async def ticker() -> None:
            while True:
                started = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - started - 0.01)

        tick = asyncio.create_task(ticker())
        interval = 1.0 / rate
        updates = 0
        words = "thank you for calling how can I help you today with your account".split()
        started = time.perf_counter()
        segment = 0
        while time.perf_counter() - started < seconds:
            call = dashboard.calls[updates % panes]
            n = (updates // panes) % 40 + 1
            text = " ".join(words[i % len(words)] for i in range(n))
            if n == 40:
                segment += 1
            call.add_transcript(f"SG_{segment:06}", "agent", text, n == 40)
            updates += 1
            if updates % max(1, int(rate / 100)) == 0:
                await asyncio.sleep(interval * max(1, int(rate / 100)))
        elapsed = time.perf_counter() - started
        await pilot.pause(0.3)
        tick.cancel()
        await pilot.press("q")

    per_pane = [repaints[i] / elapsed for i in ids]
    print(
        f"panes: {panes}, burst: {elapsed:.1f} s, updates injected: {updates} "
        f"({updates / elapsed:.0f}/s, {updates / elapsed / panes:.0f}/s per pane)"
    )
    print(
        f"transcript repaints per pane: max {max(per_pane):.1f}/s, "
        f"median {statistics.median(per_pane):.1f}/s (target: at most ~20/s)"
    )
    if lags:
        lags.sort()
        print(
            f"UI loop lag during the burst: median {1000 * statistics.median(lags):.1f} ms, "
            f"p95 {1000 * lags[int(0.95 * (len(lags) - 1))]:.1f} ms, "
            f"max {1000 * lags[-1]:.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panes", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="updates per second, total")
    args = parser.parse_args()
    asyncio.run(run(args.panes, args.seconds, args.rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

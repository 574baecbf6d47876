"""Lost sessions heal: a livekit-server crash, and a rejoin after the token expired.

Panes keep their transcript and its file: every segment shown as settled is in
the JSONL file exactly once, before and after the crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.live import FAST_POLICY, LiveFactory, follower, saved_ids, until
from tui.demo.calls import CallOptions
from tui.monitor.model import MonitoredCall

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ENDLESS = CallOptions(mode="tone", loop=True, time_scale=0.3)


def settled_ids(call: MonitoredCall) -> list[str]:
    return [s.id for s in call.transcript.segments if s.final]


@pytest.mark.timeout(180)
async def test_server_killed_and_restarted_panes_are_live_again_and_files_complete(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    entries = [stack.start_call("support", channel="webrtc", options=ENDLESS) for _ in range(2)]
    await stack.wait_in_progress(2)
    monitor = live_monitor(stack)
    dashboard = monitor.dashboard
    await until(lambda: all(e.conversation_id in dashboard for e in entries), 30, "two panes")
    calls = [dashboard.get(e.conversation_id) for e in entries]
    assert all(c is not None for c in calls)
    live_calls: list[MonitoredCall] = [c for c in calls if c is not None]
    await until(
        lambda: all(c.is_live and settled_ids(c) for c in live_calls),
        60,
        "both LIVE with settled lines",
        dashboard,
    )
    before = {c.conversation_id: set(settled_ids(c)) for c in live_calls}

    killed_at = time.monotonic()
    await asyncio.to_thread(stack.server.kill)
    await until(
        lambda: not any(c.is_live for c in live_calls), 30, "panes notice the crash", dashboard
    )
    assert all(c.badge.text == "Reconnecting…" for c in live_calls), [
        c.badge.text for c in live_calls
    ]
    await asyncio.to_thread(stack.server.start)
    restarted_at = time.monotonic()
    await until(lambda: all(c.is_live for c in live_calls), 90, "LIVE again", dashboard)
    live_again_at = time.monotonic()
    await until(
        lambda: all(set(settled_ids(c)) - before[c.conversation_id] for c in live_calls),
        60,
        "new settled lines after the restart",
        dashboard,
    )
    print(
        f"\nreconnect after restart: {live_again_at - restarted_at:.2f} s "
        f"(outage {restarted_at - killed_at:.2f} s); mints per call: "
        f"{[follower(monitor, c.conversation_id).mints for c in live_calls]}"
    )

    store = monitor.store
    assert store is not None
    for call in live_calls:
        ids = saved_ids(store, call.conversation_id)
        assert len(ids) == len(set(ids)), "a segment was saved twice"
        assert set(ids) == set(settled_ids(call))  # every line shown as settled, nothing else
        assert before[call.conversation_id] <= set(ids)
        assert set(ids) - before[call.conversation_id]


@pytest.mark.timeout(120)
async def test_rejoin_after_the_token_expired_mints_a_fresh_token(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0, token_ttl=timedelta(seconds=3))
    entry = stack.start_call("support", channel="webrtc", options=ENDLESS)
    await stack.wait_in_progress(1)
    # LiveKit's own resume is given up on quickly, so the rejoin is ours.
    monitor = live_monitor(stack, policy=dataclasses.replace(FAST_POLICY, resume_stall_s=1.0))
    dashboard = monitor.dashboard
    await until(lambda: entry.conversation_id in dashboard, 30, "a pane")
    call = dashboard.get(entry.conversation_id)
    assert call is not None
    await until(lambda: call.is_live, 30, "LIVE", dashboard)
    live = follower(monitor, entry.conversation_id)
    first_expiry = stack.emulator.minted[-1].expires_at
    assert live.mints == 1 and live.joins == 1

    # Let the first token expire.
    await asyncio.sleep((first_expiry - datetime.now(UTC)).total_seconds() + 1.0)
    await asyncio.to_thread(stack.server.kill)
    await until(lambda: live.mints >= 2, 30, "a fresh token while the server is down", dashboard)
    await asyncio.to_thread(stack.server.start)
    await until(lambda: call.is_live and live.joins >= 2, 60, "LIVE again", dashboard)
    lines = len(settled_ids(call))
    await until(lambda: len(settled_ids(call)) > lines, 30, "new lines", dashboard)
    assert stack.emulator.minted[-1].expires_at > first_expiry

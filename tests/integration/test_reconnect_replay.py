"""Segments replayed after a rejoin: the pane keeps the bots' order and agrees with the file.

After the listener rejoins, the agent sends two settled segments again: one with
changed text, one already dropped from the pane's bounded history.  The rule
(tui/monitor/follow.py): a settled segment counts once, in its first version,
which is the one already saved and shown; so the pane's order is the order the
bots sent, and the pane and the JSONL hold the same text for every segment.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.live import FAST_POLICY, LiveFactory, follower, until
from tui.demo.calls import CallOptions, SimulatedCall
from tui.monitor.model import Dashboard
from tui.monitor.store import read_transcript

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PANE_HISTORY = 4  # segments the pane keeps: the oldest ones are dropped from it


async def test_replayed_segments_keep_the_pane_in_order_and_in_step_with_the_file(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    # Listen first, so every segment of the call is heard from its start.
    conversation = stack.emulator.create_conversation(status="in_progress", room_name="replay")
    cid = conversation.id
    dashboard = Dashboard(max_segments=PANE_HISTORY)
    monitor = live_monitor(
        stack,
        dashboard=dashboard,
        pinned=[cid],
        discovery=False,
        policy=dataclasses.replace(FAST_POLICY, resume_stall_s=1.0),
    )
    pane = dashboard.get(cid)
    assert pane is not None
    await until(lambda: pane.is_live, 30, "LIVE", dashboard)
    server = stack.server
    call = SimulatedCall(
        server.url,
        server.api_key,
        server.api_secret,
        "replay",
        CallOptions(mode="tone", max_lines=14, time_scale=0.3),
    )
    await call.start()

    def settled_agent_segments() -> list[str]:
        return [s.segment_id for s in call.sent_segments if s.final and s.role == "agent"]

    await until(lambda: len(settled_agent_segments()) >= 2, 60, "two agent lines", dashboard)

    # A server crash: the follower rejoins with a fresh token.
    await asyncio.to_thread(stack.server.kill)
    await asyncio.sleep(1.5)
    await asyncio.to_thread(stack.server.start)
    await until(lambda: follower(monitor, cid).joins >= 2 and pane.is_live, 60, "rejoined")
    await call.agent.wait_connected()

    # The agent replays its first line unchanged (gone from the pane's history by now)
    # and its latest, still shown, with a corrected text.
    def shown_ids() -> list[str]:
        return [s.id for s in pane.transcript.segments]

    await until(
        lambda: (
            settled_agent_segments()[0] not in shown_ids()
            and any(i in shown_ids() for i in settled_agent_segments())
        ),
        60,
        "the first line dropped from the pane, a later one shown",
        dashboard,
    )
    first = settled_agent_segments()[0]
    latest = [i for i in settled_agent_segments() if i in shown_ids()][-1]
    text_of = {s.segment_id: s.text for s in call.sent_segments if s.final}
    await call.agent.replay_segment(first, text_of[first])
    await call.agent.replay_segment(latest, "CORRECTED: this text was never said first")
    # Whatever the bots settle next was sent after the replays, on the same channel.
    replayed_at = len(call.sent_segments)
    await until(
        lambda: any(
            s.final and s.segment_id in shown_ids() for s in call.sent_segments[replayed_at:]
        ),
        60,
        "a line sent after the replays is shown",
        dashboard,
    )
    sent_order = [s.segment_id for s in call.sent_segments if s.final]
    assert shown_ids() == [i for i in sent_order if i in shown_ids()], "pane order = bots' order"
    assert first not in shown_ids(), "a replay of a dropped segment does not come back"
    shown_text = {s.id: s.text for s in pane.transcript.segments}
    assert shown_text[latest] == text_of[latest], "the first version is the one shown"

    try:
        await asyncio.wait_for(call.wait_ended(), 120)
    finally:
        await call.stop()
    await until(lambda: pane.ended, 30, "the call ended", dashboard)

    sent = [s for s in call.sent_segments if s.final]
    sent_order = [s.segment_id for s in sent]
    sent_text = {s.segment_id: s.text for s in sent}

    shown = pane.transcript.segments
    assert len(shown) == len({s.id for s in shown}) <= PANE_HISTORY
    at_end = [s.id for s in shown]
    assert at_end == [i for i in sent_order if i in at_end], "pane order = bots' order"

    assert monitor.store is not None
    saved = read_transcript(monitor.store.path_for(cid))
    saved_ids = [s.id for s in saved]
    assert saved_ids == [i for i in sent_order if i in saved_ids], (
        "file order = bots' order",
        [(s.id, s.role, s.text[:20]) for s in saved],
        [(s.segment_id, s.role, s.text[:20]) for s in sent],
    )
    assert len(saved_ids) == len(set(saved_ids))
    assert {first, latest} <= set(saved_ids)
    saved_text = {s.id: s.text for s in saved}
    assert saved_text[latest] == sent_text[latest], "the first version is the one kept"
    for segment in shown:  # the pane and the file agree
        if segment.id in saved_text:
            assert segment.text == saved_text[segment.id]

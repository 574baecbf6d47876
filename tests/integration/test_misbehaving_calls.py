"""Issue 15: simulated calls that misbehave on purpose raise their health flag on their
own call, in the pane, in ``tail``'s output and in the JSONL; a well-behaved call none.

All real: livekit-server, the API emulator over HTTP, bots saying espeak-ng lines
(speech, not tone: a tone agent never stops, so no silence would ever be heard), the
DashboardApp under Pilot finding the calls by discovery, and an ``anyreach-tui tail
--all`` process.  The health thresholds are the defaults (tui/monitor/health.py).  One
stack, five calls at once: the four on-demand misbehaving scenarios, each wrong in one
way (tui/demo/scenarios/), and the first lines of ``support``.  It takes as long as the
longest of them (the 11 s silence of ``dead_air`` included), about 40 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.app import pane_texts
from tests.fixtures.config import ConfigHome
from tests.fixtures.live import (
    POLL_INTERVAL,
    LiveFactory,
    end_tail,
    saved_records,
    start_tail,
    until,
)
from tui.app.app import DashboardApp
from tui.demo.calls import CallOptions
from tui.monitor.health import (
    DEFAULT_DEAD_AIR_S,
    DEFAULT_LOOP_REPEATS,
    DEFAULT_RESPONSE_S,
    HealthState,
)
from tui.monitor.model import Dashboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

MISBEHAVING = {
    "slow_agent": "slow",
    "dead_air": "dead_air",
    "talk_over": "talk_over",
    "agent_loop": "loop",
}
# How each flag reads in a pane's header (tui/app/widgets/call_pane.py: health_flags).
PANE_WORDS = {
    "slow": re.compile(r"SLOW \d+\.\ds"),
    "dead_air": re.compile(r"DEAD AIR \d+s"),
    "talk_over": re.compile(r"TALK-OVER ×\d+"),
    "loop": re.compile(r"\bLOOP\b"),
}
# support's first lines: a normal call as long as the misbehaving ones.
WELL_BEHAVED = CallOptions(scenario="support", max_lines=6)
CHECK_EVERY_S = 0.2  # the slow flag shows only until the agent's next (quick) answer


async def read_json_lines(stream: asyncio.StreamReader, into: list[dict]) -> None:
    while raw := await stream.readline():
        into.append(json.loads(raw))


def health_lines(records: list[dict], conversation_id: str) -> list[dict]:
    return [
        r for r in records if r.get("event") == "health" and r["conversation_id"] == conversation_id
    ]


@pytest.mark.timeout(240)
async def test_each_misbehaving_call_raises_its_flag_in_the_pane_in_tail_and_in_its_jsonl(
    config_home: ConfigHome, demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    started = time.monotonic()
    stack = await demo_stack(calls=0)
    dashboard = Dashboard()
    monitor = live_monitor(stack, dashboard=dashboard, start=False)
    assert monitor.store is not None
    app = DashboardApp(dashboard, monitor)
    tail = await start_tail(
        config_home, stack.emulator, "--all", ANYREACH_DISCOVERY__INTERVAL_S=str(POLL_INTERVAL)
    )
    assert tail.stdout is not None and tail.stderr is not None
    tailed: list[dict] = []
    reader = asyncio.create_task(read_json_lines(tail.stdout, tailed))
    # What the panes showed, per call: each flag's words as last seen, and the health.
    pane_words: dict[str, dict[str, str]] = {}
    health: dict[str, HealthState] = {}

    def look_at_panes() -> None:
        for conversation_id, text in pane_texts(app).items():
            rows = text.splitlines()
            if len(rows) < 2:
                continue  # mounted, not laid out yet
            header = rows[1]
            for kind, words in PANE_WORDS.items():
                if found := words.search(header):
                    pane_words.setdefault(conversation_id, {})[kind] = found.group()
        for call in dashboard.calls:
            health[call.conversation_id] = call.health

    try:
        async with app.run_test(size=(200, 50)) as pilot:
            good = stack.start_call(channel="webrtc", options=WELL_BEHAVED).conversation_id

            def followed(conversation_id: str) -> bool:
                call = dashboard.get(conversation_id)
                return (
                    call is not None
                    and call.is_live
                    and any(
                        r["conversation_id"] == conversation_id and r.get("state") == "connected"
                        for r in tailed
                    )
                )

            # tail takes seconds to start: both listeners are up before the misbehaving
            # calls start, so each is followed long before it misbehaves (8 s in or later).
            await until(lambda: followed(good), 60, "the well-behaved call followed", dashboard)
            names = {
                stack.start_call(name, channel="webrtc").conversation_id: name
                for name in MISBEHAVING
            }
            bad = {cid: MISBEHAVING[name] for cid, name in names.items()}
            jsonl = {cid: monitor.store.path_for(cid) for cid in [good, *bad]}

            def everywhere(conversation_id: str, kind: str) -> bool:
                saved = saved_records(jsonl[conversation_id])
                return (
                    kind in pane_words.get(conversation_id, {})
                    and any(r["flag"] == kind for r in health_lines(tailed, conversation_id))
                    and any(r["flag"] == kind for r in health_lines(saved, conversation_id))
                )

            deadline = time.monotonic() + 150
            while not (
                all(everywhere(cid, kind) for cid, kind in bad.items())
                and all(call.finished for call in stack.calls)
            ):
                assert time.monotonic() < deadline, (
                    f"not every flag everywhere: panes {pane_words}, tail "
                    f"{[r for r in tailed if r.get('event') == 'health']}"
                )
                look_at_panes()
                await pilot.pause(CHECK_EVERY_S)
            await pilot.pause(1.0)  # the last lines of the calls' ends
            look_at_panes()
            tail.send_signal(signal.SIGTERM)
            tail_code = await asyncio.wait_for(tail.wait(), 20)
            await asyncio.wait_for(reader, 10)
            await pilot.press("q")
            await until(lambda: not app.is_running, 10, "the app exits after q")
    finally:
        await end_tail(tail, reader)
    took = time.monotonic() - started
    stderr = (await tail.stderr.read()).decode(errors="replace")
    assert tail_code == 0, stderr  # --all stopped by SIGTERM

    for cid in [*bad, good]:
        saved = health_lines(saved_records(jsonl[cid]), cid)
        from_tail = health_lines(tailed, cid)
        state = health.get(cid, HealthState())
        print(
            f"{names.get(cid, 'support (well-behaved)')}: pane {pane_words.get(cid, {})}; "
            f"tail {[(r['flag'], r['value']) for r in from_tail]}; "
            f"JSONL {[(r['flag'], r['value']) for r in saved]}; "
            f"replies {[round(s, 1) for s in state.response_times]}"
        )
        # Exactly the flag it misbehaves for, once, wherever it shows; none for the good one.
        expected = [bad[cid]] if cid in bad else []
        # On failure: what tail saw of this call, to tell a late line from a wrong rule.
        timeline = [
            (r["ts"][11:23], r["event"], r.get("state") or r.get("flag"), r.get("text"))
            for r in tailed
            if r.get("conversation_id") == cid and (r["event"] != "transcript" or r["final"])
        ]
        if [r["flag"] for r in from_tail] != expected:
            print("\n".join(map(str, timeline)))
        assert [r["flag"] for r in from_tail] == expected, (cid, from_tail, timeline)
        assert [r["flag"] for r in saved] == expected, (cid, saved)
        assert sorted(pane_words.get(cid, {})) == expected, (cid, pane_words.get(cid))
        for record in [*from_tail, *saved]:
            assert record["conversation_id"] == cid and record["ts"].endswith("Z")
            value = record["value"]
            match record["flag"]:  # raised over the threshold; the value is to 0.1 s
                case "slow":
                    assert value >= DEFAULT_RESPONSE_S
                case "dead_air":
                    assert value >= DEFAULT_DEAD_AIR_S
                case "talk_over":
                    assert value == 1.0  # the call's count so far
                case "loop":
                    assert value == float(DEFAULT_LOOP_REPEATS)
    print(f"five calls, start to end of checks: {took:.1f} s")

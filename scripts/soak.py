#!/usr/bin/env python3
"""Soak: the dashboard's engine on N live calls for a while, under server crashes and an API outage.

    .venv/bin/python scripts/soak.py                      # 16 calls, 10 min, restart every 2 min
    .venv/bin/python scripts/soak.py --minutes 2          # a short run: one restart, the 503 window
    .venv/bin/python scripts/soak.py --calls 6 --minutes 2 --json out.json   # what the test runs

Figures are printed, never asserted (tests/integration/test_soak.py runs a
2-minute version and asserts the counts).  Exit status 0 once the report is
printed, 1 when the run could not get going (why is printed).

**The listener** is this process: the real :class:`~tui.monitor.monitor.Monitor`
composed as ``anyreach-tui --no-audio --max-panes N`` composes it
(``tui.commands.dashboard.build_dashboard``): the dashboard's ``AnyreachClient``
(default retries and timeouts), ``DASHBOARD_POLICY`` (keep trying while the call
is active, the default backoff), discovery every 2 s, a real ``TranscriptStore``
(``<work dir>/transcripts``), the default keyword alerts and an ``AudioRouter`` on
the null device, with listening on and the first pane focused (one call decodes
its audio, as a supervisor would hear one).  Only Textual is left out.  The
process also hosts the API emulator (small: one record per request), since its
fault hooks are called from here; livekit-server and the bots are processes of
their own.

**The calls**: N simulated calls in a ``BotProcess``, each looping a shipped
scenario in tone mode at real pace (the agent transcribes both sides), each an
in-progress conversation in the emulator that the monitor discovers.

**The faults**, on a timeline that starts when every pane is first LIVE:

* livekit-server killed (SIGKILL) every ``--restart-every`` minutes, the first
  half an interval in (10 min, every 2: at 1, 3, 5, 7, 9 min); it stays down
  until every pane has noticed (and at least ``--outage`` s), then starts on the
  same ports;
* the API answers 503 to everything for 20 s once (``emulator.fail_for(20,
  503)``), from the kill of the middle restart (``--api-fault-at`` S moves it to
  S seconds into the soak, on its own), and that time the server stays down 12 s
  (past the follower's 8 s resume stall): a short outage is healed by LiveKit's
  own resume with the old token, this one only by the follower minting a fresh
  token, which the API refuses until the window ends; discovery fails meanwhile.

**The comparison**, per call, of its JSONL file with what the bots reported
publishing.  A settled segment is one the bots closed as final.  It is *counted*
(the listener could have heard it) when all of these hold, with a margin
``M`` = 1 s:

1. it began (its first update was published) at least M after the pane was
   first LIVE: a stream begun before the listener joined cannot be heard;
2. its span, from its first update to its final one, does not come within M of
   an outage window of that pane: from a server kill to the moment that pane is
   LIVE again (both measured here, one monotonic clock for every process).  The
   window includes any 503 time that kept the pane out; a pane that is never
   LIVE again is reported as such, and its segments after the kill are counted
   as missing (an open window does not excuse them);
3. its final update was published at least M before the end of the soak.

Nothing else is excused: a drop of a pane outside a kill window counts.  Then:

* **missing**: counted segments not in the file;
* **duplicated**: segment lines in the file beyond the first for their id (every
  line, counted or not);
* **out of order**: counted segments in the file minus the longest run of them
  in the bots' order (the fewest that would have to move);
* text differs (a counted segment saved with other words: the listener settled it
  early, e.g. its speaker seen leaving mid-segment, and the first version wins),
  saved but not counted (by the rule), saved but never sent, pane drops outside
  kill windows, mints and joins per pane: shown too.

**Reconnect time**: from the moment the restarted server is ready to each pane
being LIVE again.  **Memory**: PSS of this process (/proc/self/smaps_rollup) when
every pane is LIVE (start), after each restart, and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.measure import Machine, pss_mib  # noqa: E402
from tui.anyreach import AnyreachClient  # noqa: E402
from tui.audio import AudioRouter, open_output_device  # noqa: E402
from tui.core.logs import configure_logging  # noqa: E402
from tui.demo.bot_process import BotProcess, CallSpec  # noqa: E402
from tui.demo.calls import CallOptions  # noqa: E402
from tui.demo.emulator import ApiEmulator  # noqa: E402
from tui.demo.livekit_server import LiveKitServer  # noqa: E402
from tui.demo.scenarios import scenario_names  # noqa: E402
from tui.monitor.alerts import AlertMatcher  # noqa: E402
from tui.monitor.follow import RESUME_STALL_S  # noqa: E402
from tui.monitor.model import Change, Dashboard  # noqa: E402
from tui.monitor.monitor import DASHBOARD_POLICY, Monitor  # noqa: E402
from tui.monitor.store import TranscriptStore  # noqa: E402

MARGIN_S = 1.0  # the rule's margin M (module docstring)
API_FAULT_S = 20.0
API_FAULT_STATUS = 503
DISCOVERY_INTERVAL_S = 2.0  # the dashboard's default
RETIRE_AFTER_S = 30.0
JOIN_TIMEOUT_S = 240.0  # bots and panes getting going on a loaded machine
NOTICE_TIMEOUT_S = 30.0  # for every pane to notice a kill
SAMPLE_EVERY_S = 0.05
# The restart with the API fault keeps the server down past the follower's resume stall.
FAULT_OUTAGE_S = RESUME_STALL_S + 4.0


# -- the machine and /proc ------------------------------------------------------------------


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def fmt(value: float | None, spec: str = "{:.1f}") -> str:
    return "-" if value is None else spec.format(value)


# -- what the panes did ---------------------------------------------------------------------


@dataclass
class PaneLog:
    """When one pane became LIVE and stopped being LIVE (monotonic clock)."""

    conversation_id: str
    room: str
    live: bool = False
    first_live: float | None = None
    transitions: list[tuple[float, bool]] = field(default_factory=list)

    def observe(self, live: bool, at: float) -> None:
        if live == self.live:
            return
        self.live = live
        self.transitions.append((at, live))
        if live and self.first_live is None:
            self.first_live = at

    def live_again_after(self, at: float) -> float | None:
        return next((t for t, live in self.transitions if live and t > at), None)

    def drops_outside(
        self, windows: Sequence[tuple[float, float | None]], end: float
    ) -> list[float]:
        """When the pane stopped being LIVE during the soak other than in a kill window."""
        drops = []
        for at, live in self.transitions:
            if live or self.first_live is None or not self.first_live < at <= end:
                continue
            if not any(a <= at and (b is None or at <= b) for a, b in windows):
                drops.append(at)
        return drops


@dataclass
class Restart:
    number: int
    killed_at: float
    ready_at: float = 0.0  # the restarted server answers
    api_fault: bool = False
    reconnect_s: dict[str, float] = field(default_factory=dict)  # per conversation
    not_live_again: list[str] = field(default_factory=list)
    pss_mib: float = 0.0

    @property
    def outage_s(self) -> float:
        return self.ready_at - self.killed_at


# -- the comparison -------------------------------------------------------------------------


@dataclass
class SentSettled:
    segment_id: str
    text: str
    began: float
    settled: float
    order: int  # the bots' order of settling, per room


def settled_by_room(messages: Sequence[dict[str, Any]]) -> dict[str, list[SentSettled]]:
    """Every segment the bots settled, per room, in the order they settled them."""
    began: dict[tuple[str, str], float] = {}
    settled: dict[str, list[SentSettled]] = {}
    for message in messages:
        if message.get("event") != "segment" or message.get("channel") != "stream":
            continue
        key = (message["room"], message["segment_id"])
        began.setdefault(key, message["published_at"])
        if message["final"]:
            room = settled.setdefault(message["room"], [])
            room.append(
                SentSettled(
                    message["segment_id"],
                    message["text"],
                    began[key],
                    message["published_at"],
                    len(room),
                )
            )
    return settled


def saved_lines(path: Path) -> list[dict[str, Any]]:
    """Segment lines of a transcript file, in order, duplicates kept (event lines skipped)."""
    if not path.exists():
        return []
    lines = []
    for raw in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(raw)
            if isinstance(record, dict) and "id" in record and "event" not in record:
                lines.append(record)
    return lines


def longest_increasing(values: Sequence[int]) -> int:
    tails: list[int] = []
    for value in values:
        at = bisect.bisect_left(tails, value)
        if at == len(tails):
            tails.append(value)
        else:
            tails[at] = value
    return len(tails)


@dataclass
class CallResult:
    conversation_id: str
    room: str
    sent_settled: int = 0
    counted: int = 0
    saved: int = 0
    missing: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    text_differs: int = 0
    excluded_before_join: int = 0
    excluded_outage: int = 0
    excluded_at_end: int = 0
    saved_not_counted: int = 0
    saved_never_sent: int = 0
    drops_outside_kills: int = 0
    counted_after_outages: int = 0  # counted ones begun after the pane's last window
    mints: int = 0  # listener tokens the pane's follower obtained
    joins: int = 0  # its sessions that connected (LiveKit's own resumes are not joins)
    missing_ids: list[str] = field(default_factory=list)
    # monotonic times, for the JSON (shifted to the soak's zero there)
    missing_spans: list[tuple[float, float]] = field(default_factory=list)
    drops_at: list[float] = field(default_factory=list)
    transitions: list[tuple[float, bool]] = field(default_factory=list)


def compare(
    pane: PaneLog,
    sent: Sequence[SentSettled],
    lines: Sequence[dict[str, Any]],
    windows: Sequence[tuple[float, float | None]],
    end: float,
    every_sent_id: set[str],
) -> CallResult:
    """One call's file against the bots' reports, by the rule of the module docstring."""
    result = CallResult(pane.conversation_id, pane.room, sent_settled=len(sent))
    first_live = pane.first_live if pane.first_live is not None else float("inf")
    counted: list[SentSettled] = []
    for segment in sent:
        if segment.began < first_live + MARGIN_S:
            result.excluded_before_join += 1
        elif segment.settled > end - MARGIN_S:
            result.excluded_at_end += 1
        elif any(
            end_ is not None
            and segment.settled >= start - MARGIN_S
            and segment.began <= end_ + MARGIN_S
            for start, end_ in windows
        ):
            result.excluded_outage += 1
        else:
            counted.append(segment)
    result.counted = len(counted)
    last = max((end_ for _, end_ in windows if end_ is not None), default=first_live)
    result.counted_after_outages = sum(1 for s in counted if s.began > last)

    ids_in_file = [str(line["id"]) for line in lines]
    result.duplicated = len(ids_in_file) - len(set(ids_in_file))
    first_text: dict[str, str] = {}
    file_order: list[str] = []
    for line in lines:
        segment_id = str(line["id"])
        if segment_id not in first_text:
            first_text[segment_id] = str(line.get("text", ""))
            file_order.append(segment_id)
    result.saved = len(file_order)

    counted_by_id = {s.segment_id: s for s in counted}
    result.missing_ids = [s.segment_id for s in counted if s.segment_id not in first_text]
    result.missing = len(result.missing_ids)
    ranks = [counted_by_id[i].order for i in file_order if i in counted_by_id]
    result.out_of_order = len(ranks) - longest_increasing(ranks)
    result.text_differs = sum(
        1 for i in file_order if i in counted_by_id and first_text[i] != counted_by_id[i].text
    )
    result.saved_not_counted = sum(
        1 for i in file_order if i not in counted_by_id and i in every_sent_id
    )
    result.saved_never_sent = sum(1 for i in file_order if i not in every_sent_id)
    drops = pane.drops_outside(windows, end)
    result.drops_outside_kills = len(drops)
    result.drops_at = drops
    result.transitions = list(pane.transitions)
    result.missing_spans = [(s.began, s.settled) for s in counted if s.segment_id not in first_text]
    return result


# -- the run --------------------------------------------------------------------------------


@dataclass
class Options:
    calls: int
    minutes: float
    restart_every: float
    outage: float
    api_fault_at: float | None
    work_dir: Path
    json_path: Path | None


class Soak:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.work_dir = options.work_dir
        self.server = LiveKitServer(log_path=self.work_dir / "livekit-server.log")
        self.emulator: ApiEmulator | None = None
        self.bots: BotProcess | None = None
        self.monitor: Monitor | None = None
        self.client: AnyreachClient | None = None
        self.router: AudioRouter | None = None
        self.panes: dict[str, PaneLog] = {}
        self.restarts: list[Restart] = []
        self.api_fault_window: tuple[float, float] | None = None
        self.started_at = 0.0  # every pane first LIVE: the soak's zero
        self.notes: list[str] = []
        self.follower_counts: dict[str, tuple[int, int]] = {}

    # the listener's side ------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        if change.call_id is None or self.monitor is None:
            return
        pane = self.panes.get(change.call_id)
        call = self.monitor.dashboard.get(change.call_id)
        if pane is not None:
            pane.observe(call is not None and call.is_live, time.monotonic())

    def start_monitor(self) -> Monitor:
        assert self.emulator is not None
        # As build_dashboard composes it (no Textual): the dashboard's client and policy.
        self.client = AnyreachClient(self.emulator.url, self.emulator.admin_key)
        self.router = AudioRouter(open_output_device(None, no_audio=True))
        dashboard = Dashboard()
        self.monitor = Monitor(
            dashboard,
            self.client,
            self.router,
            interval_s=DISCOVERY_INTERVAL_S,
            max_panes=max(9, self.options.calls),
            retire_after_s=RETIRE_AFTER_S,
            store=TranscriptStore(self.work_dir / "transcripts"),
            alerts=AlertMatcher(),
            policy=DASHBOARD_POLICY,
        )
        dashboard.subscribe(self.on_change)
        dashboard.set_listening(True)  # the focused (first) pane is heard
        self.monitor.start()
        return self.monitor

    def all_live(self) -> bool:
        return all(p.live for p in self.panes.values())

    async def until(self, predicate: Any, within: float, what: str) -> bool:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                self.notes.append(f"not within {within:g} s: {what}")
                return False
            await asyncio.sleep(SAMPLE_EVERY_S)
        return True

    # the run ---------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        options = self.options
        await asyncio.to_thread(self.server.start)
        self.emulator = ApiEmulator(self.server.url, self.server.api_key, self.server.api_secret)
        await self.emulator.start()
        scenarios = scenario_names()  # the on-demand ones (the agent leaves early) are not
        specs = [
            CallSpec(
                f"soak-{k:02d}",
                CallOptions(
                    scenario=scenarios[k % len(scenarios)],
                    mode="tone",
                    tone_hz=300.0 + 50.0 * k,
                    loop=True,
                ),
                caller_identity=f"+1555000{k:04d}",
            )
            for k in range(options.calls)
        ]
        self.bots = BotProcess(
            self.server.url,
            self.server.api_key,
            self.server.api_secret,
            specs,
            log_path=self.work_dir / "bots.log",
        )
        self.bots.start()
        await asyncio.to_thread(self.bots.wait_ready, JOIN_TIMEOUT_S)
        for spec in specs:
            conversation = self.emulator.create_conversation(
                channel="telephone",
                status="in_progress",
                room_name=spec.room_name,
                user_id=spec.caller_identity,
                agent_name="Ava (Support)",
                custom_metadata={"scenario": spec.options.scenario, "simulated": True},
            )
            self.panes[conversation.id] = PaneLog(conversation.id, spec.room_name)

        monitor = self.start_monitor()
        if not await self.until(
            lambda: all(cid in monitor.dashboard for cid in self.panes) and self.all_live(),
            JOIN_TIMEOUT_S,
            "every pane LIVE at the start",
        ):
            raise SoakError("; ".join(self.notes))
        self.started_at = time.monotonic()
        cpu_at_start = cpu_seconds()
        pss_start = pss_mib()
        print(
            f"t=0: all {options.calls} panes LIVE; PSS {pss_start:.1f} MiB",
            file=sys.stderr,
            flush=True,
        )

        duration = 60.0 * options.minutes
        every = 60.0 * options.restart_every
        schedule = [every / 2 + k * every for k in range(int(duration // every) + 1)]
        schedule = [at for at in schedule if at < duration]
        fault_restart = len(schedule) // 2 if schedule else None
        fault_at = options.api_fault_at
        if fault_at is None and fault_restart is None:
            fault_at = duration / 2  # no restart at all: the window on its own
        for number, at in enumerate(schedule, 1):
            await self.sleep_until(at, fault_at)
            await self.restart(
                number, with_api_fault=fault_at is None and number - 1 == fault_restart
            )
        await self.sleep_until(duration, fault_at)

        end = time.monotonic()
        cpu_used = cpu_seconds() - cpu_at_start
        pss_end = pss_mib()
        self.follower_counts = {cid: (f.mints, f.joins) for cid, f in monitor.followers.items()}
        await monitor.aclose()
        return self.report(end, pss_start, pss_end, cpu_used)

    async def sleep_until(self, at: float, fault_at: float | None) -> None:
        """Sleep to ``at`` s into the soak, starting the API fault on the way if due."""
        while True:
            now = time.monotonic() - self.started_at
            if fault_at is not None and self.api_fault_window is None and now >= fault_at:
                self.start_api_fault()
            if now >= at:
                return
            await asyncio.sleep(min(1.0, at - now))

    def start_api_fault(self) -> None:
        assert self.emulator is not None
        self.emulator.fail_for(API_FAULT_S, API_FAULT_STATUS)
        now = time.monotonic()
        self.api_fault_window = (now, now + API_FAULT_S)
        print(
            f"t={now - self.started_at:.0f}s: API answering {API_FAULT_STATUS} "
            f"for {API_FAULT_S:g} s",
            file=sys.stderr,
            flush=True,
        )

    async def restart(self, number: int, *, with_api_fault: bool) -> None:
        killed_at = time.monotonic()
        await asyncio.to_thread(self.server.kill)
        if with_api_fault:
            self.start_api_fault()
        restart = Restart(number, killed_at, api_fault=with_api_fault)
        self.restarts.append(restart)
        await self.until(
            lambda: not any(p.live for p in self.panes.values()),
            NOTICE_TIMEOUT_S,
            f"every pane noticing kill {number}",
        )
        # Through the 503 the server stays down past LiveKit's own resume: every pane's
        # follower must rejoin with a fresh token while the API refuses to mint one.
        outage = max(self.options.outage, FAULT_OUTAGE_S) if with_api_fault else self.options.outage
        await asyncio.sleep(max(0.0, killed_at + outage - time.monotonic()))
        await asyncio.to_thread(self.server.start)
        restart.ready_at = time.monotonic()
        print(
            f"t={killed_at - self.started_at:.0f}s: restart {number}: server down "
            f"{restart.outage_s:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        # Reconnect times are read from the panes' logs at the end; the PSS after it:
        budget = max(60.0, 60.0 * self.options.restart_every / 2)
        await self.until(self.all_live, budget, f"every pane LIVE again after restart {number}")
        restart.pss_mib = pss_mib()

    # the report ---------------------------------------------------------------------------

    def relative(self, row: dict[str, Any]) -> dict[str, Any]:
        """A per-call row with its times in seconds from the soak's zero."""
        zero = self.started_at
        row["missing_spans"] = [(a - zero, b - zero) for a, b in row["missing_spans"]]
        row["drops_at"] = [at - zero for at in row["drops_at"]]
        row["transitions"] = [(at - zero, live) for at, live in row["transitions"]]
        return row

    def windows_of(self, pane: PaneLog) -> list[tuple[float, float | None]]:
        return [(r.killed_at, pane.live_again_after(r.ready_at)) for r in self.restarts]

    def report(
        self, end: float, pss_start: float, pss_end: float, cpu_used: float
    ) -> dict[str, Any]:
        assert self.bots is not None
        messages = list(self.bots.messages)
        sent = settled_by_room(messages)
        every_sent_id = {m["segment_id"] for m in messages if m.get("event") == "segment"}
        assert self.monitor is not None and self.monitor.store is not None
        store = self.monitor.store
        results = []
        for pane in self.panes.values():
            windows = self.windows_of(pane)
            results.append(
                compare(
                    pane,
                    sent.get(pane.room, []),
                    saved_lines(store.path_for(pane.conversation_id)),
                    windows,
                    end,
                    every_sent_id,
                )
            )
        for result in results:
            result.mints, result.joins = self.follower_counts.get(result.conversation_id, (0, 0))
        for restart in self.restarts:
            for pane in self.panes.values():
                again = pane.live_again_after(restart.ready_at)
                if again is None:
                    restart.not_live_again.append(pane.conversation_id)
                else:
                    restart.reconnect_s[pane.conversation_id] = again - restart.ready_at
        totals = {
            name: sum(getattr(r, name) for r in results)
            for name in (
                "sent_settled",
                "counted",
                "saved",
                "missing",
                "duplicated",
                "out_of_order",
                "text_differs",
                "excluded_before_join",
                "excluded_outage",
                "excluded_at_end",
                "saved_not_counted",
                "saved_never_sent",
                "drops_outside_kills",
                "mints",
                "joins",
            )
        }
        times = [s for r in self.restarts for s in r.reconnect_s.values()]
        plain = [s for r in self.restarts if not r.api_fault for s in r.reconnect_s.values()]
        faulted = [s for r in self.restarts if r.api_fault for s in r.reconnect_s.values()]
        soak_s = end - self.started_at
        summary: dict[str, Any] = {
            "calls": self.options.calls,
            "soak_s": soak_s,
            "restarts": len(self.restarts),
            "api_fault_at_s": (
                self.api_fault_window[0] - self.started_at if self.api_fault_window else None
            ),
            "totals": totals,
            "panes_never_live_again": sorted(
                {cid for r in self.restarts for cid in r.not_live_again}
            ),
            "reconnect_s": {
                "all": {
                    "p50": percentile(times, 50),
                    "p95": percentile(times, 95),
                    "n": len(times),
                },
                "without_api_fault": {
                    "p50": percentile(plain, 50),
                    "p95": percentile(plain, 95),
                    "n": len(plain),
                },
                "with_api_fault": {
                    "p50": percentile(faulted, 50),
                    "p95": percentile(faulted, 95),
                    "n": len(faulted),
                },
            },
            "pss_mib": {
                "start": pss_start,
                "end": pss_end,
                "after_restarts": [r.pss_mib for r in self.restarts],
            },
            "cpu_percent": 100.0 * cpu_used / soak_s if soak_s > 0 else None,
            "per_call": [self.relative(asdict(r)) for r in results],
            "restart_log": [
                {
                    "number": r.number,
                    "at_s": r.killed_at - self.started_at,
                    "outage_s": r.outage_s,
                    "api_fault": r.api_fault,
                    "reconnect_p50_s": percentile(list(r.reconnect_s.values()), 50),
                    "reconnect_p95_s": percentile(list(r.reconnect_s.values()), 95),
                    "reconnect_max_s": max(r.reconnect_s.values(), default=None),
                    "not_live_again": r.not_live_again,
                }
                for r in self.restarts
            ],
            "notes": self.notes,
            "work_dir": str(self.work_dir),
        }
        self.print_report(summary, results)
        return summary

    def print_report(self, summary: dict[str, Any], results: Sequence[CallResult]) -> None:
        totals = summary["totals"]
        print()
        print(f"soak: {summary['soak_s']:.0f} s after every pane was LIVE")
        print()
        print("restarts (server killed; reconnect = restarted server ready -> pane LIVE):")
        print("| # | at s | down s | API 503 | reconnect p50 s | p95 s | max s | not LIVE again |")
        print("|---|---|---|---|---|---|---|---|")
        for row in summary["restart_log"]:
            print(
                f"| {row['number']} | {row['at_s']:.0f} | {row['outage_s']:.1f} | "
                f"{'yes' if row['api_fault'] else 'no'} | "
                + " | ".join(
                    fmt(row[k], "{:.2f}")
                    for k in ("reconnect_p50_s", "reconnect_p95_s", "reconnect_max_s")
                )
                + f" | {len(row['not_live_again'])} |"
            )
        fault = summary["api_fault_at_s"]
        print(
            f"API {API_FAULT_STATUS} for {API_FAULT_S:g} s from t={fmt(fault, '{:.0f}')} s"
            + (
                " (with the kill of the restart marked yes)"
                if any(r["api_fault"] for r in summary["restart_log"])
                else ""
            )
        )
        print()
        print("per call (JSONL vs what the bots sent):")
        print(
            "| call | settled | counted | saved | missing | dup | out of order | text differs "
            "| excl. before join | excl. outage | excl. end | drops outside kills | mints | joins |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            print(
                f"| {r.room} | {r.sent_settled} | {r.counted} | {r.saved} | {r.missing} | "
                f"{r.duplicated} | {r.out_of_order} | {r.text_differs} | "
                f"{r.excluded_before_join} | {r.excluded_outage} | {r.excluded_at_end} | "
                f"{r.drops_outside_kills} | {r.mints} | {r.joins} |"
            )
        print()
        print(
            f"missing: {totals['missing']}   duplicated: {totals['duplicated']}   "
            f"out of order: {totals['out_of_order']}   (of {totals['counted']} counted "
            f"settled segments; all expected 0)"
        )
        print(
            f"text differs: {totals['text_differs']}; saved but not counted (by the rule): "
            f"{totals['saved_not_counted']}; saved, never sent by the bots: "
            f"{totals['saved_never_sent']}; excluded: {totals['excluded_before_join']} "
            f"before the join, {totals['excluded_outage']} in an outage, "
            f"{totals['excluded_at_end']} at the end"
        )
        never = summary["panes_never_live_again"]
        print(
            f"panes not LIVE again after a restart: {len(never)}; pane drops outside kill "
            f"windows: {totals['drops_outside_kills']}"
        )
        rec = summary["reconnect_s"]
        print(
            "reconnect s: "
            + "; ".join(
                f"{label} p50 {fmt(rec[key]['p50'], '{:.2f}')} "
                f"p95 {fmt(rec[key]['p95'], '{:.2f}')} (n={rec[key]['n']})"
                for key, label in (
                    ("all", "all"),
                    ("without_api_fault", "without the 503"),
                    ("with_api_fault", "through the 503"),
                )
            )
        )
        pss = summary["pss_mib"]
        print(
            f"monitor PSS MiB: start {pss['start']:.1f}, end {pss['end']:.1f} "
            f"({pss['end'] - pss['start']:+.1f}); after each restart: "
            + (", ".join(f"{v:.1f}" for v in pss["after_restarts"]) or "-")
        )
        print(
            f"monitor CPU: {fmt(summary['cpu_percent'])} % of one core over the soak "
            "(this process: the monitor and the API emulator)"
        )
        for note in summary["notes"]:
            print(f"note: {note}")
        print(f"files: {summary['work_dir']}")

    async def stop(self) -> None:
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                await self.monitor.aclose()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        if self.router is not None:
            with contextlib.suppress(Exception):
                self.router.close()
        if self.bots is not None:
            await asyncio.to_thread(self.bots.stop)
        if self.emulator is not None:
            with contextlib.suppress(Exception):
                await self.emulator.stop()
        await asyncio.to_thread(self.server.stop)


class SoakError(RuntimeError):
    """The soak could not get going (printed, exit status 1)."""


async def run(options: Options) -> int:
    for line in Machine.here().header().splitlines():
        print(line)
    print(
        f"soak: {options.calls} calls (tone, looping, bots in another process), "
        f"{options.minutes:g} min, livekit-server killed every {options.restart_every:g} min "
        f"(first at {options.restart_every / 2:g} min, down >= {options.outage:g} s), "
        f"API {API_FAULT_STATUS} for {API_FAULT_S:g} s once; margin M = {MARGIN_S:g} s",
        flush=True,
    )
    configure_logging(path=options.work_dir / "anyreach-tui.log")
    soak = Soak(options)
    try:
        summary = await soak.run()
    except (SoakError, TimeoutError) as error:
        print(f"soak: {error or type(error).__name__}; files: {options.work_dir}")
        return 1
    finally:
        await soak.stop()
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(summary, indent=1))
    return 0


def parse(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=16, help="live calls (default 16)")
    parser.add_argument("--minutes", type=float, default=10.0, help="soak time (default 10)")
    parser.add_argument(
        "--restart-every", type=float, default=2.0, help="minutes between kills (default 2)"
    )
    parser.add_argument(
        "--outage", type=float, default=3.0, help="least seconds the server stays down (3)"
    )
    parser.add_argument(
        "--api-fault-at",
        type=float,
        default=None,
        help="seconds into the soak for the 503 window (default: the middle restart's kill)",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="files (default: a new tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(list(argv))
    if not 1 <= args.calls <= 36:
        parser.error("--calls: 1 to 36 (discovery.max_panes allows no more)")
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="anyreach-soak-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    return Options(
        args.calls,
        args.minutes,
        args.restart_every,
        args.outage,
        args.api_fault_at,
        work_dir,
        args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    return asyncio.run(run(options))


if __name__ == "__main__":
    sys.exit(main())

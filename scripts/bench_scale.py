#!/usr/bin/env python3
"""Scale benchmark: the dashboard following N live calls with one heard, beside a browser.

    .venv/bin/python scripts/bench_scale.py                          # N = 1,4,8,16,32; 30 s each
    .venv/bin/python scripts/bench_scale.py --calls 1,2 --seconds 10
    .venv/bin/python scripts/bench_scale.py --peer                   # and Chromium, tab per call
    .venv/bin/python scripts/bench_scale.py --speech                 # espeak-ng speech, not tones
    .venv/bin/python scripts/bench_scale.py --calls 2 --seconds 5 --switches 4   # a smoke run

Exit status 0 once the table is printed, 1 when a run failed (why is printed), 3
when ``--peer`` lacks Chromium or npm (the command to install it is printed).

For each N this process starts (once) livekit-server and the Anyreach API
emulator, and (per N) N simulated calls in another process (``BotProcess``): an
agent playing a tone of its own (300 Hz + 250 Hz per call; ``--speech``: spoken
lines) and transcribing both sides in real time, looping its script; each call
is an in-progress conversation in the emulator.  Then, one after the other so
they never compete for the cores:

1. **The dashboard**: the real command (``tui.commands.dashboard.main``, which
   composes it with ``build_dashboard``) in a child process whose terminal is a
   200x60 pseudo-terminal that this process holds and reads, as a terminal
   emulator would.  Why a pty, not ``run_test`` nor tmux: with Textual's real
   Linux driver the figures include encoding and writing every frame to a
   terminal (``run_test``'s headless driver skips output altogether), and the
   focus switch is a key typed into the terminal, parsed by Textual like any
   other; tmux would add a server of its own in between and nothing more.  The
   child discovers the calls through the emulator, as it would the real API.
   Once all N are connected, ``space`` turns listening on: the focused (first)
   call is heard, through PortAudio into a private PulseAudio server.  The child
   is this script in another mode: it wraps ``build_dashboard`` to install a
   probe that only observes (the model's own observer list, a wrapper around
   ``TranscriptView.render_line``, a ticker on the UI loop; nothing in the
   product's code).
2. **``anyreach-tui tail --all``** on the same calls.
3. With ``--peer``, **headless Chromium** with LiveKit's own JS SDK
   (``livekit-client``, bench/peer/), one tab per call joining with a listener
   token from the same emulator, playing the audio and reading the same
   ``lk.transcription`` text streams.

Columns (one row per N and process):

* ``CPU %``: CPU-seconds of the process tree (utime+stime of every process in
  it, and of children it reaped, from /proc/<pid>/stat) over the wall time of
  the window, as % of one core: other load on the machine changes it little.
* ``PSS MiB``, ``PSS/call MiB``: /proc/<pid>/smaps_rollup ``Pss`` summed over
  the tree at the end of the window; per call = total / N.
* ``apply p50/p95 ms``: a transcript update, from the moment a bot began to
  publish it (``SentSegment.published_at``) to the model applying it (seen by
  the model's observer), on every call, heard or not.
* ``paint p95 ms``: the same update to the first paint of its pane's transcript
  that shows it (``render_line``, which brings the lines up to the model).
* ``lag p95/max ms``: how late a 20 ms timer on the UI loop fires.
* ``switch p50/p95 ms``: ``tab`` typed with listening on to the new call's tone
  in a recording of the PulseAudio sink (``parec``; its capture latency is
  included, so read them as upper bounds).  Not with one call or ``--speech``.
* ``peer ...``: the browser's CPU and PSS measured the same way, and how many
  times ours the browser uses (``peer/ours``; per call it is the same ratio).

``tail --all`` has CPU and memory only.  The notes under the table say, per N, how
busy the whole machine was in the dashboard's window and while switching (/proc/stat,
all cores, every process: the bots, livekit-server and the recorder share them with
the dashboard) and what the bots took: read a slow switch against them.

Figures are printed, never asserted: they depend on the machine and on whatever
else runs on it (the header says which machine and when).  The dashboard's figures
include the probe's own small cost (one observer call per model change, a 20 ms
timer); its process imports only the standard library beyond what the dashboard
imports itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import pty
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.measure import (  # noqa: E402  (after the path is set)
    Machine,
    RecordingClock,
    cpu_percent,
    machine_busy_percent,
    pss_mib,
    sample_cpu,
    sample_machine,
)

if TYPE_CHECKING:  # the children must not pay for the parent's imports
    import numpy as np

    from tests.fixtures.audio import PulseServer
    from tui.commands.dashboard import DashboardParts
    from tui.demo.bot_process import BotProcess
    from tui.demo.emulator import ApiEmulator
    from tui.demo.livekit_server import LiveKitServer
    from tui.monitor.model import Change

DEFAULT_CALLS = "1,4,8,16,32"
MAX_CALLS = 36  # discovery.max_panes allows no more
TERMINAL = (200, 60)  # columns, rows: the wallboard issue 16 plans 32 panes for
WARMUP_S = 3.0  # after every call is joined (and listening on), before the window
JOIN_TIMEOUT_S = 180.0
LANDING_S = 1.0  # after the window, for its last updates to be applied and painted
LAG_TICK_S = 0.02
TAIL_EVENTS_KEPT = 4  # per call, for saying why tail never connected to it
RECENT_SEGMENTS = 4  # an update changes one of a call's newest segments
TONE_BASE_HZ, TONE_STEP_HZ = 300.0, 250.0  # far apart for 10 ms windows
SWITCH_DWELL_S = 1.0
SWITCH_WINDOW_S = 0.15  # after this the old call's tone must be gone
BAND_DB = -40.0  # tones play at about -10 dBFS
ONSET_WINDOW_MS = 10.0  # tests.audio_analysis.onset's window
SUSTAIN_MS = 50.0  # a tone lasts; a click spreads into every band for a moment
RATE = 48_000
CHILD_FLAG = "--dashboard-child"
PEER_DIR = ROOT / "bench" / "peer"
PEER_SDK = PEER_DIR / "node_modules" / "livekit-client" / "dist" / "livekit-client.umd.js"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)


class BenchError(RuntimeError):
    """Something the benchmark needs did not happen (printed, exit status 1)."""


class PeerMissing(RuntimeError):
    """What to install for --peer (printed, exit status 3)."""


# -- the machine --------------------------------------------------------------------------


# -- CPU and memory of a process tree (/proc) ---------------------------------------------


@dataclass(frozen=True)
class Usage:
    cpu_pct: float
    pss_mib: float
    start: float  # the window, time.monotonic()
    end: float
    machine_pct: float = 0.0  # the whole machine meanwhile, % of all its cores
    bots_pct: float | None = None  # the bots' process tree meanwhile, % of one core


async def measure_usage(root: int, seconds: float, bots: int | None = None) -> Usage:
    machine, before = sample_machine(), sample_cpu(root)
    bots_before = sample_cpu(bots) if bots is not None else None
    await asyncio.sleep(seconds)
    after = sample_cpu(root)
    bots_pct = cpu_percent(bots_before, sample_cpu(bots)) if bots_before and bots else None
    return Usage(
        cpu_percent(before, after),
        pss_mib(root),
        before.at,
        after.at,
        machine_busy_percent(machine, sample_machine()),
        bots_pct,
    )


def percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- the calls ----------------------------------------------------------------------------

SegmentKey = tuple[str, str, bool]  # segment id, text, final: one transcript update


@dataclass(frozen=True)
class BenchCall:
    room: str
    conversation_id: str
    tone_hz: float


class CallSet:
    """N simulated calls in a BotProcess, each an in-progress conversation in the emulator."""

    def __init__(
        self,
        server: LiveKitServer,
        emulator: ApiEmulator,
        count: int,
        *,
        speech: bool,
        tag: str,
        log_dir: Path,
    ) -> None:
        self.server, self.emulator, self.count = server, emulator, count
        self.speech, self.tag, self.log_dir = speech, tag, log_dir
        self.calls: list[BenchCall] = []
        self.bots: BotProcess | None = None

    async def start(self) -> CallSet:
        from tui.demo.bot_process import BotProcess, CallSpec
        from tui.demo.calls import CallOptions

        tones = [TONE_BASE_HZ + TONE_STEP_HZ * k for k in range(self.count)]
        rooms = [f"bench-{self.tag}-{k}" for k in range(self.count)]
        specs = [
            CallSpec(
                room,
                CallOptions(mode="speech" if self.speech else "tone", tone_hz=hz, loop=True),
                caller_identity=f"+1555{self.tag[-3:]:0>3}{k:04d}",
            )
            for k, (room, hz) in enumerate(zip(rooms, tones, strict=True))
        ]
        server = self.server
        self.bots = BotProcess(
            server.url,
            server.api_key,
            server.api_secret,
            specs,
            log_path=self.log_dir / f"bots-{self.tag}.log",
        )
        self.bots.start()
        await asyncio.to_thread(self.bots.wait_ready, JOIN_TIMEOUT_S)
        for spec, hz in zip(specs, tones, strict=True):
            conversation = self.emulator.create_conversation(
                channel="telephone",
                status="in_progress",
                room_name=spec.room_name,
                user_id=spec.caller_identity,
                agent_name="Ava (Support)",
            )
            self.calls.append(BenchCall(spec.room_name, conversation.id, hz))
        return self

    @property
    def bots_pid(self) -> int | None:
        return self.bots.pid if self.bots is not None else None

    def tone_of(self, conversation_id: str | None) -> float | None:
        return next((c.tone_hz for c in self.calls if c.conversation_id == conversation_id), None)

    def published(self, start: float, end: float, joined: float) -> dict[SegmentKey, float]:
        """When each transcript update published in [start, end] began to be published,
        for the segments begun after ``joined`` (a listener misses a stream begun before
        it joined)."""
        assert self.bots is not None
        segments = [m for m in list(self.bots.messages) if m.get("event") == "segment"]
        begun: dict[str, float] = {}
        for message in segments:
            begun.setdefault(message["segment_id"], message["published_at"])
        sent: dict[SegmentKey, float] = {}
        for message in segments:
            at = message["published_at"]
            if (
                message["channel"] == "stream"
                and start <= at <= end
                and begun[message["segment_id"]] > joined
            ):
                key = (message["segment_id"], message["text"], bool(message["final"]))
                sent.setdefault(key, at)
        return sent

    async def stop(self) -> None:
        for call in self.calls:
            with contextlib.suppress(ValueError):
                self.emulator.set_status(call.conversation_id, "completed")
        if self.bots is not None:
            await asyncio.to_thread(self.bots.stop)


def delays_ms(published: dict[SegmentKey, float], observed: Sequence[Sequence[Any]]) -> list[float]:
    """Publish -> observed (ms) for every published update observed (first time only)."""
    delays: list[float] = []
    seen: set[SegmentKey] = set()
    for segment_id, text, final, at in observed:
        key = (segment_id, text, bool(final))
        if key in published and key not in seen:
            seen.add(key)
            delays.append(1000 * (at - published[key]))
    return delays


# -- the dashboard's side: the probe, in the child process --------------------------------


class Probe:
    """In the dashboard's process: when the model applied each transcript update, when a
    pane painted it, how late the UI loop runs, which call is heard.  It only observes."""

    def __init__(self, report_fd: int, control_fd: int, expected_calls: int) -> None:
        self._out = os.fdopen(report_fd, "w", buffering=1)
        self._control_fd = control_fd
        self._lock = threading.Lock()  # reports come from the UI loop and the control thread
        self.expected_calls = expected_calls
        self.applied: list[tuple[str, str, bool, float]] = []
        self.painted: list[tuple[str, str, bool, float]] = []
        self.lags: list[tuple[float, float]] = []  # (when the timer was set, how late it fired)
        self._seen: dict[str, tuple[str, bool]] = {}
        self._unpainted: dict[str, list[SegmentKey]] = {}
        self._heard: str | None = None
        self._connected = False
        self._parts: DashboardParts | None = None
        self._ticker: asyncio.Task[None] | None = None

    def report(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(message) + "\n")

    def attach(self, parts: DashboardParts) -> None:
        """Observe the model, and start the loop ticker where the monitor starts."""
        self._parts = parts
        parts.app.dashboard.subscribe(self.on_change)
        start_monitor = parts.monitor.start

        def start_and_tick() -> None:
            start_monitor()
            self._ticker = asyncio.get_running_loop().create_task(self.tick())

        parts.monitor.start = start_and_tick  # type: ignore[method-assign]
        threading.Thread(target=self.serve_control, daemon=True).start()

    def on_change(self, change: Change) -> None:
        assert self._parts is not None
        dashboard = self._parts.app.dashboard
        if change.kind == "transcript" and change.call_id:
            call = dashboard.get(change.call_id)
            if call is None:
                return
            now = time.monotonic()
            for segment in call.transcript.segments[-RECENT_SEGMENTS:]:
                state = (segment.text, segment.final)
                if self._seen.get(segment.id) != state:
                    self._seen[segment.id] = state
                    self.applied.append((segment.id, segment.text, segment.final, now))
                    unpainted = self._unpainted.setdefault(change.call_id, [])
                    unpainted.append((segment.id, segment.text, segment.final))
        elif change.kind in ("focus", "listening"):
            if dashboard.heard_id != self._heard:
                self._heard = dashboard.heard_id
                self.report({"event": "heard", "id": self._heard, "at": time.monotonic()})
        elif change.kind in ("call", "calls") and not self._connected:
            if sum(c.state == "connected" for c in dashboard.calls) >= self.expected_calls:
                self._connected = True
                shown = [c.conversation_id for c in dashboard.visible_calls()]
                self.report({"event": "connected", "calls": shown, "at": time.monotonic()})

    def watch_paints(self, view_class: Any) -> None:
        """Wrap ``render_line``: it brings a pane's lines up to the model before drawing,
        so its first call after an update is the paint that shows the update."""
        render_line = view_class.render_line
        unpainted_of = self._unpainted
        painted = self.painted

        def render_line_watched(view: Any, y: int) -> Any:
            strip = render_line(view, y)
            unpainted = unpainted_of.get(view.call.conversation_id)
            if unpainted:
                now = time.monotonic()
                painted.extend((*key, now) for key in unpainted)
                unpainted.clear()
            return strip

        view_class.render_line = render_line_watched

    async def tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK_S)
            self.lags.append((before, time.monotonic() - before - LAG_TICK_S))

    def serve_control(self) -> None:
        with os.fdopen(self._control_fd) as commands:
            for command in commands:
                if command.strip() == "stats":
                    self.report(
                        {
                            "event": "stats",
                            "applied": list(self.applied),
                            "painted": list(self.painted),
                            "lags": list(self.lags),
                        }
                    )


def dashboard_child(report_fd: int, control_fd: int, expected_calls: int) -> None:
    """The child: ``anyreach-tui`` itself (configuration from the environment), probed."""
    from tui.app.widgets.transcript_view import TranscriptView
    from tui.commands import dashboard as command

    probe = Probe(report_fd, control_fd, expected_calls)
    probe.watch_paints(TranscriptView)
    build_dashboard = command.build_dashboard

    def build_and_probe(settings: Any, pinned: Sequence[str] = ()) -> DashboardParts:
        parts = build_dashboard(settings, pinned)
        probe.attach(parts)
        return parts

    command.build_dashboard = build_and_probe
    command.main([])  # ends the process (ending.leave)


# -- the dashboard's side: the parent's handle on it --------------------------------------


class DashboardProcess:
    """The dashboard in a child process; this process is its terminal (a pty)."""

    def __init__(self, env: dict[str, str], expected_calls: int) -> None:
        columns, rows = TERMINAL
        self._terminal, tty = pty.openpty()
        fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        report_r, report_w = os.pipe()
        control_r, control_w = os.pipe()
        script = str(Path(__file__).resolve())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                script,
                CHILD_FLAG,
                str(report_w),
                str(control_r),
                str(expected_calls),
            ],
            stdin=tty,
            stdout=tty,
            stderr=tty,  # Textual draws on stderr; a traceback lands there too
            pass_fds=(report_w, control_r),
            env=env,
            start_new_session=True,
        )
        for fd in (tty, report_w, control_r):
            os.close(fd)
        self._control = os.fdopen(control_w, "w", buffering=1)
        self._reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self.heard: list[tuple[float, str | None]] = []  # (when, conversation id) per change
        self._screen: deque[bytes] = deque(maxlen=64)  # the last output, for error messages
        threading.Thread(target=self._drain_terminal, daemon=True).start()
        threading.Thread(target=self._read_reports, args=(report_r,), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain_terminal(self) -> None:
        while True:
            try:
                data = os.read(self._terminal, 65536)
            except OSError:  # EIO: the child closed its side
                return
            if not data:
                return
            self._screen.append(data)

    def _read_reports(self, fd: int) -> None:
        with os.fdopen(fd) as reports:
            for line in reports:
                with contextlib.suppress(ValueError):
                    report = json.loads(line)
                    if report.get("event") == "heard":
                        self.heard.append((report["at"], report["id"]))
                    self._reports.put(report)
        self._reports.put({"event": "exited"})

    def screen_tail(self) -> str:
        text = b"".join(self._screen).decode(errors="replace")
        return "".join(c for c in text[-2000:] if c.isprintable() or c == "\n")

    async def wait_for(self, event: str, within: float) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                report = await asyncio.to_thread(self._reports.get, True, min(remaining, 1.0))
            except queue.Empty:
                continue
            if report["event"] == event:
                return report
            if report["event"] == "exited":
                break
        raise BenchError(
            f"the dashboard never reported {event!r} (exit status {self.proc.poll()}); "
            f"its terminal ended with:\n{self.screen_tail()}"
        )

    async def wait_heard(self, conversation_id: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not (self.heard and self.heard[-1][1] == conversation_id):
            if time.monotonic() > deadline:
                raise BenchError(f"listening never went on for {conversation_id}")
            await asyncio.sleep(0.05)

    def type(self, keys: bytes) -> float:
        """Type ``keys`` on the dashboard's terminal; returns when."""
        at = time.monotonic()
        os.write(self._terminal, keys)
        return at

    async def stats(self) -> dict[str, Any]:
        self._control.write("stats\n")
        return await self.wait_for("stats", 30.0)

    async def quit(self, within: float = 15.0) -> None:
        """``q``, as a user would (every session ends); killed if it does not exit."""
        with contextlib.suppress(OSError):
            self.type(b"q")
        try:
            await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait, 5)
        with contextlib.suppress(OSError):
            self._control.close()
        with contextlib.suppress(OSError):
            os.close(self._terminal)


# -- focus switches in a recording --------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    at: float  # the key typed
    old_hz: float
    new_hz: float


@dataclass
class SwitchResult:
    delays_ms: list[float]
    leaks: list[str]  # switches after which the old call was still heard past SWITCH_WINDOW_S
    switches: int
    # key typed -> the model's heard call changed: the UI's share of each switch (the
    # rest is the media path: decoding the new call, the router, the device, PulseAudio)
    model_ms: list[float] = field(default_factory=list)
    machine_pct: float = 0.0  # how busy the whole machine was while switching


def analyse_switches(
    samples: np.ndarray, clock: RecordingClock, switches: list[Switch]
) -> SwitchResult:
    from tests.audio_analysis import CHECK_WINDOW, PRESENT_DB, band_db, ms, onset

    delays: list[float] = []
    leaks: list[str] = []
    for k, switch in enumerate(switches):
        at = clock.offset_at(switch.at)
        end = (
            clock.offset_at(switches[k + 1].at)
            if k + 1 < len(switches)
            else at + ms(SWITCH_DWELL_S * 1000)
        )
        start = max(0, at - ms(50))
        found = onset(
            samples[start:end],
            switch.new_hz,
            threshold_db=BAND_DB,
            step=ms(1),
            sustain=ms(SUSTAIN_MS),
        )
        if found is not None:
            # A 10 ms Hann window passes the threshold once the tone fills its last ~20 %.
            heard_at = start + found + 0.8 * ms(ONSET_WINDOW_MS)
            delays.append(1000 * (heard_at - at) / RATE)
        # The old call is heard when its band plays (PRESENT_DB, the tests' definition).
        size = CHECK_WINDOW
        for window in range(at + ms(SWITCH_WINDOW_S * 1000), end - size, size // 2):
            level = band_db(samples[window : window + size], switch.old_hz)
            if level > PRESENT_DB:
                leaks.append(
                    f"switch {k + 1}: {switch.old_hz:.0f} Hz at {level:.0f} dB "
                    f"{1000 * (window - at) / RATE:.0f} ms after the key"
                )
                break
    return SwitchResult(delays, leaks, len(switches))


async def measure_switches(
    dashboard: DashboardProcess, pulse: PulseServer, calls: CallSet, count: int
) -> SwitchResult:
    """``tab`` typed ``count`` times, listening on; the sink recorded meanwhile."""
    recorder = await asyncio.to_thread(pulse.record)
    clock = RecordingClock(recorder)
    await asyncio.sleep(0.5)
    machine = sample_machine()
    typed = []
    for _ in range(count):
        typed.append(dashboard.type(b"\t"))
        await asyncio.sleep(SWITCH_DWELL_S)
    busy = machine_busy_percent(machine, sample_machine())
    clock.stop()
    samples = await asyncio.to_thread(recorder.stop)
    switches = []
    model_ms = []
    for at in typed:
        before = [cid for when, cid in dashboard.heard if when < at]
        after = [(when, cid) for when, cid in dashboard.heard if at <= when < at + SWITCH_DWELL_S]
        old_hz = calls.tone_of(before[-1] if before else None)
        new_hz = calls.tone_of(after[0][1] if after else None)
        if old_hz is not None and new_hz is not None:
            switches.append(Switch(at, old_hz, new_hz))
            model_ms.append(1000 * (after[0][0] - at))
    result = analyse_switches(samples, clock, switches)
    result.switches = count
    result.model_ms = model_ms
    result.machine_pct = busy
    return result


# -- anyreach-tui tail --all --------------------------------------------------------------


class TailProcess:
    """``anyreach-tui tail --all``; counts the calls it has connected to."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        script = Path(sys.executable).with_name("anyreach-tui")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "tui.commands.main"]
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*command, "tail", "--all"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        self.log_path = log_path
        self.connected: set[str] = set()
        self.said: dict[str, list[str]] = {}  # per call, its latest events other than text
        self.lines = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines += 1
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                conversation_id = event.get("conversation_id")
                if event.get("event") == "stateChange" and event.get("state") == "connected":
                    self.connected.add(conversation_id)
                if conversation_id and event.get("event") != "transcript":
                    said = self.said.setdefault(conversation_id, [])
                    text = line.decode(errors="replace").strip()[:300]
                    said[:] = [*said[-(TAIL_EVENTS_KEPT - 1) :], text]

    async def wait_connected(self, conversation_ids: Sequence[str], within: float) -> None:
        deadline = time.monotonic() + within
        while not self.connected.issuperset(conversation_ids):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                missing = [cid for cid in conversation_ids if cid not in self.connected]
                said = "; ".join(
                    f"{cid}: {' | '.join(self.said.get(cid, [])) or 'nothing'}" for cid in missing
                )
                log = self.log_path.read_text(errors="replace").splitlines()[-10:]
                raise BenchError(
                    f"tail --all connected to {len(self.connected)} of {len(conversation_ids)} "
                    f"calls within {within:g} s; never connected: {said}; its log ends: "
                    + " / ".join(log)
                )
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)  # ends its sessions, like Ctrl-C
        try:
            await asyncio.to_thread(self.proc.wait, 10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait, 5)


# -- the browser peer ---------------------------------------------------------------------


def peer_ready() -> str:
    """Chromium's path, with livekit-client installed in bench/peer; or PeerMissing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise PeerMissing(
            "--peer needs Chromium; install it with:\n"
            "    apt-get install -y chromium\n"
            "(as root; `sudo apt-get install -y chromium` otherwise), then run this again"
        )
    if not PEER_SDK.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise PeerMissing(
                "--peer needs npm to install livekit-client; install it with:\n"
                "    apt-get install -y npm\nthen run this again"
            )
        print("installing livekit-client: npm install --prefix bench/peer", file=sys.stderr)
        done = subprocess.run(
            [npm, "install", "--prefix", str(PEER_DIR), "--no-audit", "--no-fund"],
            stdout=sys.stderr,
            check=False,
        )
        if done.returncode != 0 or not PEER_SDK.exists():
            raise PeerMissing(
                f"`npm install --prefix bench/peer` failed (status {done.returncode}); "
                "run it by hand to see why"
            )
    return binary


class PeerServer:
    """Serves the peer's page and the SDK, hands out the emulator's listener tokens and
    collects what each tab reports (POST /report)."""

    def __init__(self, api_url: str, api_key: str) -> None:
        self.api_url, self.api_key = api_url, api_key
        self.reports: dict[str, dict[str, Any]] = {}
        self.port = 0
        self._runner: Any = None
        self._client: Any = None

    async def start(self) -> PeerServer:
        from aiohttp import web

        from tui.anyreach import AnyreachClient

        self._client = AnyreachClient(self.api_url, self.api_key)
        files = {
            "/": PEER_DIR / "index.html",
            "/peer.js": PEER_DIR / "peer.js",
            "/livekit-client.umd.js": PEER_SDK,
        }

        def serve(path: Path) -> Callable[[web.Request], Any]:
            async def handler(request: web.Request) -> web.FileResponse:
                return web.FileResponse(path)

            return handler

        async def token(request: web.Request) -> web.Response:
            grant = await self._client.listener_token(request.match_info["conversation_id"])
            return web.json_response({"url": grant.url, "token": grant.token})

        async def report(request: web.Request) -> web.Response:
            tab = await request.json()
            self.reports[str(tab.get("conversation"))] = tab
            return web.Response(status=204)

        app = web.Application()
        for route, path in files.items():
            app.router.add_get(route, serve(path))
        app.router.add_get("/token/{conversation_id}", token)
        app.router.add_post("/report", report)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    def page_for(self, conversation_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/?conversation={conversation_id}"

    def tabs(self, conversation_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [self.reports.get(cid, {}) for cid in conversation_ids]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.aclose()


class Chromium:
    """Headless Chromium with a fresh profile; tabs opened through its DevTools HTTP API."""

    def __init__(self, binary: str, env: dict[str, str], log_path: Path) -> None:
        self.binary, self.env, self.log_path = binary, env, log_path
        self.profile = Path(tempfile.mkdtemp(prefix="bench-chromium-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def _launch(self, first_page: str) -> subprocess.Popen[bytes]:
        from tui.demo.livekit_server import free_port

        self.port = free_port()
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                [
                    self.binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={self.profile}",
                    f"--remote-debugging-port={self.port}",  # to open the other tabs
                    first_page,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )

    async def start(self, first_page: str) -> Chromium:
        self.proc = self._launch(first_page)
        deadline = time.monotonic() + 30
        while True:
            try:
                await asyncio.to_thread(self._devtools, "GET", "/json/version")
                return self
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BenchError(f"Chromium did not start; log: {self.log_path}") from None
                await asyncio.sleep(0.2)

    def _devtools(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return bytes(response.read())

    async def open_tab(self, page: str) -> None:
        await asyncio.to_thread(self._devtools, "PUT", f"/json/new?{page}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait, 5)
        shutil.rmtree(self.profile, ignore_errors=True)


# -- rows and the table -------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: one process (the dashboard or tail) following N calls."""

    calls: int
    process: str
    usage: Usage
    apply_p50: float | None = None
    apply_p95: float | None = None
    paint_p95: float | None = None
    lag_p95: float | None = None
    lag_max: float | None = None
    switch_p50: float | None = None
    switch_p95: float | None = None
    peer: Usage | None = None

    @property
    def pss_per_call(self) -> float:
        return self.usage.pss_mib / self.calls

    @property
    def peer_cpu_ratio(self) -> float | None:
        """How many times our CPU the browser uses."""
        if self.peer is None or self.usage.cpu_pct <= 0:
            return None
        return self.peer.cpu_pct / self.usage.cpu_pct

    @property
    def peer_pss_ratio(self) -> float | None:
        """How many times our memory the browser uses (total and per call alike)."""
        if self.peer is None or self.usage.pss_mib <= 0:
            return None
        return self.peer.pss_mib / self.usage.pss_mib


Column = tuple[str, Callable[[Row], float | str | None], str]
COLUMNS: list[Column] = [
    ("calls", lambda r: r.calls, "{}"),
    ("process", lambda r: r.process, "{}"),
    ("CPU %", lambda r: r.usage.cpu_pct, "{:.1f}"),
    ("PSS MiB", lambda r: r.usage.pss_mib, "{:.0f}"),
    ("PSS/call MiB", lambda r: r.pss_per_call, "{:.1f}"),
    ("apply p50 ms", lambda r: r.apply_p50, "{:.1f}"),
    ("apply p95 ms", lambda r: r.apply_p95, "{:.1f}"),
    ("paint p95 ms", lambda r: r.paint_p95, "{:.1f}"),
    ("lag p95 ms", lambda r: r.lag_p95, "{:.1f}"),
    ("lag max ms", lambda r: r.lag_max, "{:.1f}"),
    ("switch p50 ms", lambda r: r.switch_p50, "{:.0f}"),
    ("switch p95 ms", lambda r: r.switch_p95, "{:.0f}"),
    ("peer CPU %", lambda r: r.peer.cpu_pct if r.peer else None, "{:.1f}"),
    ("peer PSS MiB", lambda r: r.peer.pss_mib if r.peer else None, "{:.0f}"),
    ("peer/ours CPU", lambda r: r.peer_cpu_ratio, "{:.1f}x"),
    ("peer/ours PSS", lambda r: r.peer_pss_ratio, "{:.1f}x"),
]


def table_header() -> str:
    names = [name for name, _, _ in COLUMNS]
    return "| " + " | ".join(names) + " |\n|" + "|".join("---" for _ in names) + "|"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} %"


def table_line(row: Row) -> str:
    cells = []
    for _, value_of, form in COLUMNS:
        value = value_of(row)
        cells.append("-" if value is None else form.format(value))
    return "| " + " | ".join(cells) + " |"


# -- one N --------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every N shares: the options, the servers, the notes printed after the table."""

    seconds: float
    switches: int
    speech: bool
    server: LiveKitServer
    emulator: ApiEmulator
    pulse: PulseServer | None
    chromium: str | None
    work_dir: Path
    notes: list[str] = field(default_factory=list)

    def env(self, calls: int, name: str) -> dict[str, str]:
        """A child's environment: this emulator, the private PulseAudio, its own XDG dirs."""
        base = self.pulse.env if self.pulse is not None else os.environ
        env = {k: v for k, v in base.items() if not k.startswith("ANYREACH_")}
        home = self.work_dir / name
        for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            env[variable] = str(home / variable.lower())
        env.update(
            ANYREACH_API_URL=self.emulator.url,
            ANYREACH_API_KEY=self.emulator.admin_key,
            ANYREACH_DISCOVERY__MAX_PANES=str(max(9, calls)),
            TERM="xterm-256color",
            COLORTERM="truecolor",
        )
        if self.pulse is None:
            env["ANYREACH_AUDIO__NO_AUDIO"] = "true"
        return env

    async def run_calls(self, count: int, emit: Callable[[Row], None]) -> None:
        """Measure N calls, handing each row to ``emit`` as soon as it is measured (a
        later failure at this N then loses nothing already measured)."""
        print(f"N={count}: starting {count} calls", file=sys.stderr, flush=True)
        calls = CallSet(
            self.server,
            self.emulator,
            count,
            speech=self.speech,
            tag=f"{count:03d}",
            log_dir=self.work_dir,
        )
        try:
            await calls.start()
            print(f"N={count}: the dashboard", file=sys.stderr, flush=True)
            dashboard = await self.dashboard_row(calls)
            if self.chromium is None:
                emit(dashboard)
            print(f"N={count}: tail --all", file=sys.stderr, flush=True)
            tail = await self.tail_row(calls)
            if self.chromium is not None:
                print(f"N={count}: the browser peer", file=sys.stderr, flush=True)
                dashboard.peer = tail.peer = await self.peer_usage(calls)
                emit(dashboard)
            emit(tail)
        finally:
            await calls.stop()

    async def dashboard_row(self, calls: CallSet) -> Row:
        count = calls.count
        dashboard = DashboardProcess(self.env(count, f"dashboard-{count}"), count)
        try:
            ready = await dashboard.wait_for("connected", JOIN_TIMEOUT_S)
            dashboard.type(b" ")  # listening on: the focused (first) pane is heard
            await dashboard.wait_heard(ready["calls"][0])
            await asyncio.sleep(WARMUP_S)
            usage = await measure_usage(dashboard.pid, self.seconds, calls.bots_pid)
            await asyncio.sleep(LANDING_S)
            stats = await dashboard.stats()
            published = calls.published(usage.start, usage.end, ready["at"])
            applied = delays_ms(published, stats["applied"])
            painted = delays_ms(published, stats["painted"])
            lags = [1000 * lag for at, lag in stats["lags"] if usage.start <= at <= usage.end]
            row = Row(
                count,
                "dashboard",
                usage,
                apply_p50=percentile(applied, 50),
                apply_p95=percentile(applied, 95),
                paint_p95=percentile(painted, 95),
                lag_p95=percentile(lags, 95),
                lag_max=max(lags, default=None),
            )
            self.notes.append(
                f"N={count} dashboard: {len(published)} transcript updates published in the "
                f"window, {len(applied)} applied, {len(painted)} painted; the machine "
                f"{usage.machine_pct:.0f} % busy (all {os.cpu_count()} cores, everything on it), "
                f"the bots {fmt_pct(usage.bots_pct)} of a core"
            )
            if self.pulse is None or count < 2 or self.speech or not self.switches:
                why = (
                    "no PulseAudio (install pulseaudio pulseaudio-utils)"
                    if self.pulse is None
                    else "one call: nothing to switch to"
                    if count < 2
                    else "speech: no tone to find"
                    if self.speech
                    else "--switches 0"
                )
                self.notes.append(f"N={count} switch: not measured ({why})")
            else:
                switches = await measure_switches(dashboard, self.pulse, calls, self.switches)
                row.switch_p50 = percentile(switches.delays_ms, 50)
                row.switch_p95 = percentile(switches.delays_ms, 95)
                leaks = f" ({'; '.join(switches.leaks)})" if switches.leaks else ""
                self.notes.append(
                    f"N={count} switch: new call heard in {len(switches.delays_ms)} of "
                    f"{switches.switches} switches; old call still heard after "
                    f"{1000 * SWITCH_WINDOW_S:.0f} ms in {len(switches.leaks)}{leaks}; "
                    "key -> model "
                    f"p50/p95 {fmt_ms(percentile(switches.model_ms, 50))}/"
                    f"{fmt_ms(percentile(switches.model_ms, 95))} ms (the rest is the media path); "
                    f"the machine {switches.machine_pct:.0f} % busy meanwhile; "
                    f"each switch, ms: {' '.join(f'{d:.0f}' for d in switches.delays_ms)}"
                )
        finally:
            await dashboard.quit()
        return row

    async def tail_row(self, calls: CallSet) -> Row:
        count = calls.count
        tail = TailProcess(self.env(count, f"tail-{count}"), self.work_dir / f"tail-{count}.log")
        try:
            await tail.wait_connected([c.conversation_id for c in calls.calls], JOIN_TIMEOUT_S)
            await asyncio.sleep(WARMUP_S)
            usage = await measure_usage(tail.proc.pid, self.seconds)
        finally:
            await tail.stop()
        return Row(count, "tail --all", usage)

    async def peer_usage(self, calls: CallSet) -> Usage:
        assert self.chromium is not None
        count = calls.count
        ids = [call.conversation_id for call in calls.calls]
        server = await PeerServer(self.emulator.url, self.emulator.admin_key).start()
        env = dict(self.pulse.env if self.pulse is not None else os.environ)
        chromium = Chromium(self.chromium, env, self.work_dir / f"chromium-{count}.log")
        try:
            await chromium.start(server.page_for(ids[0]))
            for conversation_id in ids[1:]:
                await chromium.open_tab(server.page_for(conversation_id))
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            while not all(
                tab.get("joined") and tab.get("playing") and tab.get("updates")
                for tab in server.tabs(ids)
            ):
                errors = [tab["error"] for tab in server.tabs(ids) if tab.get("error")]
                if errors or time.monotonic() > deadline:
                    raise BenchError(
                        f"the browser peer did not get going: {errors or server.tabs(ids)}; "
                        f"log: {chromium.log_path}"
                    )
                await asyncio.sleep(0.2)
            await asyncio.sleep(WARMUP_S)
            before = {
                cid: tab.get("updates", 0) for cid, tab in zip(ids, server.tabs(ids), strict=True)
            }
            usage = await measure_usage(chromium.pid, self.seconds)
            tabs = server.tabs(ids)
            read = sum(
                tab.get("updates", 0) - before[cid] for cid, tab in zip(ids, tabs, strict=True)
            )
            self.notes.append(
                f"N={count} peer: {sum(bool(t.get('joined')) for t in tabs)} of {count} tabs "
                f"joined, {sum(t.get('playing', 0) for t in tabs)} audio elements playing, "
                f"{read} transcript chunks read in the window"
            )
        finally:
            await chromium.stop()
            await server.stop()
        return usage


# -- the run ------------------------------------------------------------------------------


def start_pulse() -> PulseServer | None:
    if not (shutil.which("pulseaudio") and shutil.which("parec")):
        return None
    from tests.fixtures.audio import PulseServer

    return PulseServer().start()


async def run(args: argparse.Namespace) -> int:
    from tui.demo.emulator import ApiEmulator
    from tui.demo.livekit_server import LiveKitServer

    chromium = None
    if args.peer:
        try:
            chromium = peer_ready()
        except PeerMissing as missing:
            print(f"bench_scale: {missing}", file=sys.stderr)
            return 3
    machine = Machine.here()
    mode = "speech (espeak-ng)" if args.speech else "tone"
    print("# anyreach-tui scale benchmark (scripts/bench_scale.py)")
    print(machine.header())
    print(
        f"calls: {mode}, bots in another process; {args.seconds:g} s window per N after "
        f"{WARMUP_S:g} s warm-up; dashboard on a {TERMINAL[0]}x{TERMINAL[1]} pty, one call "
        f"heard{'; peer: headless Chromium, livekit-client, one tab per call' if chromium else ''}"
    )
    print()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        work_dir = Path(work)
        pulse = start_pulse()
        server = LiveKitServer(log_path=work_dir / "livekit-server.log")
        emulator: ApiEmulator | None = None
        try:
            await asyncio.to_thread(server.start)
            emulator = await ApiEmulator(server.url, server.api_key, server.api_secret).start()
            bench = Bench(
                args.seconds,
                args.switches,
                args.speech,
                server,
                emulator,
                pulse,
                chromium,
                work_dir,
            )
            print(table_header(), flush=True)
            failures = 0
            for count in args.calls:
                try:
                    await bench.run_calls(count, lambda row: print(table_line(row), flush=True))
                except BenchError as error:  # this N is incomplete; the others still run
                    failures += 1
                    bench.notes.append(f"N={count} FAILED: {error}")
                    print(f"bench_scale: N={count}: {error}", file=sys.stderr, flush=True)
            print()
            for note in bench.notes:
                print(f"- {note}")
            if failures:
                return 1
        finally:
            if emulator is not None:
                await emulator.stop()
            await asyncio.to_thread(server.stop)
            if pulse is not None:
                pulse.cleanup()
    return 0


def call_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(not 1 <= n <= MAX_CALLS for n in counts):
        raise argparse.ArgumentTypeError(f"call counts from 1 to {MAX_CALLS}, e.g. 1,4,8")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == [CHILD_FLAG]:
        report_fd, control_fd, calls = (int(value) for value in args_in[1:4])
        dashboard_child(report_fd, control_fd, calls)
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=call_counts, default=call_counts(DEFAULT_CALLS))
    parser.add_argument("--seconds", type=float, default=30.0, help="window per N (30)")
    parser.add_argument("--switches", type=int, default=10, help="focus switches per N (10)")
    parser.add_argument("--speech", action="store_true", help="spoken calls instead of tones")
    parser.add_argument("--peer", action="store_true", help="headless Chromium beside it")
    return asyncio.run(run(parser.parse_args(args_in)))


if __name__ == "__main__":
    sys.exit(main())

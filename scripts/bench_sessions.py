"""Measure N listen sessions in one process, one call heard (the bots run in another).

    .venv/bin/python scripts/bench_sessions.py --sessions 8 --seconds 10
    .venv/bin/python scripts/bench_sessions.py --sessions 4 --mechanism all

Each call is a tone bot at its own frequency (BotProcess, another OS process).
This process holds only the listeners, the audio router and, when PulseAudio is
installed, the real device path (PyAudio -> PortAudio -> ALSA -> a private
PulseAudio null sink recorded with ``parec``), as the dashboard would.

``--mechanism`` is how a call that is not heard is kept:

* ``stream`` (the product's): subscribed, but no AudioStream (``set_heard``);
* ``all``: every track decoded, the router alone decides what plays (before
  issue 16);
* ``unsubscribe``: its tracks unsubscribed (``set_subscribed(False)``), subscribed
  again on hear (the server then sends no speaker updates for that call: livekit-server
  scopes them to the publishers one subscribes to, so ``speaking`` goes stale);
* ``coarse``: an AudioStream with ``frame_size_ms=500`` per track for a meter,
  swapped for the 10 ms one on hear;
* ``disable``: like ``stream``, and the server told to stop forwarding its tracks
  (the FFI's ``enable_remote_track_publication``, which livekit 1.2.1 does not wrap).

Prints: connect times; this process's CPU (CPU-seconds over wall time, % of one
core) while one call is heard; event-loop lag; decoded frames per second of the
heard and the unheard sessions; how many unheard sessions showed ``speaking``;
then, for ``--switches`` switches to the next call: the delay from the switch to
the first frame handed to the router and to the new call's band in the recording
(p50/p95; read them as upper bounds: parec's own capture latency is included),
and whether the previous call's band was ever heard after the switch window.
Figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from livekit import api, rtc

from tests.measure import RecordingClock
from tui.audio import AudioRouter, NullDevice, PyAudioDevice, open_output_device
from tui.demo.bot_process import BotProcess, CallSpec
from tui.demo.calls import CallOptions
from tui.demo.livekit_server import LiveKitServer
from tui.listen import ListenSession, listen
from tui.listen.audio import SAMPLE_RATE
from tui.listen.levels import measure

MECHANISMS = ("stream", "all", "unsubscribe", "coarse", "disable")
COARSE_FRAME_MS = 500
CLOSING: set[asyncio.Task[None]] = set()
DWELL_S = 1.0  # between switches
SWITCH_WINDOW_S = 0.15  # after this the old call's band must be gone
TONE_STEP_HZ = 250.0  # far apart for 20 ms windows (a Hann main lobe of +-100 Hz)
ONSET_WINDOW_MS = 20.0
LEAK_WINDOW_MS = 50.0
SUSTAIN_MS = 50.0  # an onset is the new band lasting this long (not a stale 30 ms, a click)
BAND_DB = -40.0
LEAK_DB = -30.0  # the old band this loud in a 50 ms window is its call playing, not a click
TRACKS_PER_CALL = 2  # a band above this (dBFS, 10 ms window) is "heard"; tones play at ~-10


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def token(server: LiveKitServer, room: str) -> str:
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_subscribe=True,
        can_publish=False,
        can_publish_data=False,
        hidden=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            api.AccessToken(server.api_key, server.api_secret)
            .with_identity("bench")
            .with_grants(grants)
            .with_ttl(timedelta(minutes=30))
            .to_jwt()
        )


async def loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - before - 0.01)


class TimedOutput:
    """Forwards to the router's output; remembers when the first frame after a mark came."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.frames = 0
        self.marked_at: float | None = None
        self.first_after_mark: float | None = None

    def mark(self) -> None:
        self.marked_at, self.first_after_mark = time.monotonic(), None

    def write(self, frame: bytes) -> None:
        self.frames += 1
        if self.marked_at is not None and self.first_after_mark is None:
            self.first_after_mark = time.monotonic()
        if self._inner is not None:
            self._inner.write(frame)

    def flush(self) -> None:
        if self._inner is not None:
            self._inner.flush()


# -- the mechanisms -------------------------------------------------------------------


def audio_publications(session: ListenSession) -> list[rtc.RemoteTrackPublication]:
    room = session._room
    if room is None:
        return []
    return [
        publication
        for participant in room.remote_participants.values()
        for publication in participant.track_publications.values()
        if publication.kind == rtc.TrackKind.KIND_AUDIO
    ]


def set_enabled(publication: rtc.RemoteTrackPublication, enabled: bool) -> None:
    """Ask the server to forward (or not) a subscribed track's media; private FFI."""
    from livekit.rtc._ffi_client import FfiClient
    from livekit.rtc._proto import ffi_pb2

    request = ffi_pb2.FfiRequest()
    request.enable_remote_track_publication.track_publication_handle = (
        publication._ffi_handle.handle
    )
    request.enable_remote_track_publication.enabled = enabled
    FfiClient.instance.request(request)


@dataclass
class CoarseMeter:
    """Mechanism ``coarse``: 500 ms frames per track, measured, for an unheard meter."""

    session: ListenSession
    streams: list[rtc.AudioStream] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    frames: int = 0
    level: float = -96.0

    def open(self) -> None:
        for track in self.session._audio._tracks.values():
            stream = rtc.AudioStream(
                track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=COARSE_FRAME_MS
            )
            self.streams.append(stream)
            self.readers.append(asyncio.create_task(self._read(stream)))

    async def _read(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            self.frames += 1
            self.level = measure(np.frombuffer(event.frame.data, dtype=np.int16)).rms_dbfs

    def close(self) -> None:
        streams, readers = self.streams, self.readers
        self.streams, self.readers = [], []

        async def closing() -> None:
            for stream in streams:
                await stream.aclose()
            for reader in readers:
                reader.cancel()

        task = asyncio.create_task(closing())
        CLOSING.add(task)
        task.add_done_callback(CLOSING.discard)


def mechanism_switch(
    mechanism: str, sessions: list[ListenSession]
) -> tuple[Callable[[int, bool], None], list[CoarseMeter]]:
    meters = [CoarseMeter(s) for s in sessions]

    def apply(n: int, heard: bool) -> None:
        session = sessions[n]
        if mechanism == "stream":
            session.set_heard(heard)
        elif mechanism == "disable":
            for publication in audio_publications(session):
                set_enabled(publication, heard)
            session.set_heard(heard)
        elif mechanism == "unsubscribe":
            for publication in audio_publications(session):
                publication.set_subscribed(heard)
        elif mechanism == "coarse":
            if heard:
                meters[n].close()
                session.set_heard(True)
            else:
                session.set_heard(False)
                meters[n].open()
        # "all": every session decodes; the router alone decides what plays

    return apply, meters


# -- recording ------------------------------------------------------------------------


def band_levels(
    samples: np.ndarray, hz: float, start: int, end: int, size: int, step: int
) -> np.ndarray:
    """The ``hz`` band's level (dBFS) in windows of ``size`` every ``step`` samples."""
    from tests.audio_analysis import band_db

    starts = range(max(start, 0), min(end, samples.size) - size, step)
    return np.array([band_db(samples[at : at + size], hz) for at in starts])


@dataclass
class Switch:
    old: int
    new: int
    at: float
    first_frame_ms: float | None = None


def analyse(
    samples: np.ndarray, clock: RecordingClock, switches: list[Switch], tones: list[float]
) -> tuple[list[float], int]:
    """Delays (ms) to the new band in the recording, and switches where the old band stayed."""
    from tests.audio_analysis import ms

    delays: list[float] = []
    leaks = 0
    lead, onset_size, leak_size = ms(50), ms(ONSET_WINDOW_MS), ms(LEAK_WINDOW_MS)
    for k, switch in enumerate(switches):
        at = clock.offset_at(switch.at)
        end = (
            clock.offset_at(switches[k + 1].at)
            if k + 1 < len(switches)
            else at + ms(DWELL_S * 1000)
        )
        new = band_levels(samples, tones[switch.new], at - lead, end, onset_size, ms(1))
        run = ms(SUSTAIN_MS) // ms(1)
        sustained = np.convolve(new > BAND_DB, np.ones(run), mode="valid") >= run
        above = np.flatnonzero(sustained)
        if above.size:
            # A window passes the threshold once the tone fills its last ~20 %.
            onset = at - lead + int(above[0]) * ms(1) + 0.8 * onset_size
            delays.append(1000 * (onset - at) / SAMPLE_RATE)
        old_from = at + ms(SWITCH_WINDOW_S * 1000)
        old = band_levels(samples, tones[switch.old], old_from, end, leak_size, leak_size // 2)
        if old.size and old.max() > LEAK_DB:
            leaks += 1
    return delays, leaks


# -- the run --------------------------------------------------------------------------


async def bench(sessions_count: int, seconds: float, mechanism: str, switches: int) -> None:
    pulse: Any = None
    if shutil.which("pulseaudio") and shutil.which("parec"):
        from tests.fixtures.audio import PulseServer

        pulse = PulseServer()
        os.environ["XDG_RUNTIME_DIR"] = pulse.env["XDG_RUNTIME_DIR"]
        os.environ["PULSE_CLIENTCONFIG"] = pulse.env["PULSE_CLIENTCONFIG"]
        pulse.start()
    device = open_output_device(None, no_audio=pulse is None)
    router = AudioRouter(device)
    try:
        with LiveKitServer() as server:
            await run(server, router, device, pulse, sessions_count, seconds, mechanism, switches)
    finally:
        router.close()
        device.close()
        if pulse is not None:
            pulse.cleanup()


async def run(
    server: LiveKitServer,
    router: AudioRouter,
    device: PyAudioDevice | NullDevice,
    pulse: Any,
    sessions_count: int,
    seconds: float,
    mechanism: str,
    switches_count: int,
) -> None:
    rooms = [f"bench-{n}" for n in range(sessions_count)]
    tones = [300.0 + TONE_STEP_HZ * n for n in range(sessions_count)]
    specs = [
        CallSpec(
            room,
            CallOptions(mode="tone", tone_hz=hz, loop=True),
            caller_identity=f"+1555999{n:04d}",
        )
        for n, (room, hz) in enumerate(zip(rooms, tones, strict=True))
    ]
    outputs = [TimedOutput(router.output_for(room)) for room in rooms]
    sessions: list[ListenSession] = [
        listen(server.url, token(server, room), output=out)
        for room, out in zip(rooms, outputs, strict=True)
    ]
    # Joined before the tones start, so the server reports who speaks (a steady
    # tone's level never changes after its first report).
    connect_times: list[float] = []
    for session in sessions:
        started = time.perf_counter()
        await session.connect()
        await session.start_audio()
        connect_times.append(time.perf_counter() - started)
    with BotProcess(server.url, server.api_key, server.api_secret, specs) as bots:
        await asyncio.to_thread(bots.wait_ready, 90)
        apply, meters = mechanism_switch(mechanism, sessions)
        if isinstance(device, PyAudioDevice):
            from tests.fixtures.audio import wait_until_playing

            await wait_until_playing(device)
        # Every track subscribed first (agent and caller), or a mechanism would act on none.
        while not all(s._audio.subscribed_count == TRACKS_PER_CALL for s in sessions):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        heard = 0
        router.set_heard([rooms[heard]])
        for n in range(sessions_count):
            apply(n, n == heard)
        await asyncio.sleep(3.0)  # tracks subscribed, streams settled

        stop, lags = asyncio.Event(), []
        ticker = asyncio.create_task(loop_lag(stop, lags))
        frames_before = [sum(s._audio.frames_by_track.values()) for s in sessions]
        coarse_before = [m.frames for m in meters]
        speaking_seen = [False] * sessions_count
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        deadline = wall_before + seconds
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            for n, session in enumerate(sessions):
                speaking_seen[n] = speaking_seen[n] or session.speaking
        cpu = time.process_time() - cpu_before
        wall = time.perf_counter() - wall_before
        stop.set()
        await ticker
        decoded = [
            (sum(s._audio.frames_by_track.values()) - before) / wall
            for s, before in zip(sessions, frames_before, strict=True)
        ]
        coarse = [
            (m.frames - before) / wall for m, before in zip(meters, coarse_before, strict=True)
        ]

        switch_log: list[Switch] = []
        recorder = clock = None
        if pulse is not None and switches_count:
            recorder = await asyncio.to_thread(pulse.record)
            clock = RecordingClock(recorder)
            await asyncio.sleep(0.5)
        for _ in range(switches_count):
            new = (heard + 1) % sessions_count
            outputs[new].mark()
            apply(heard, False)
            apply(new, True)
            router.set_heard([rooms[new]])
            switch = Switch(heard, new, time.monotonic())
            switch_log.append(switch)
            await asyncio.sleep(DWELL_S)
            first = outputs[new].first_after_mark
            if first is not None:
                switch.first_frame_ms = 1000 * (first - switch.at)
            heard = new
        samples = None
        if recorder is not None and clock is not None:
            clock.stop()
            samples = await asyncio.to_thread(recorder.stop)

        started = time.perf_counter()
        await asyncio.gather(*(s.end() for s in sessions))
        end_time = time.perf_counter() - started
        await asyncio.gather(*(s.closed for s in sessions))

    unheard = [n for n in range(sessions_count) if n != 0]
    print(f"sessions: {sessions_count}, mechanism: {mechanism}, cores: {os.cpu_count()}")
    print(
        f"connect: median {statistics.median(connect_times):.3f} s, max {max(connect_times):.3f} s"
    )
    print(
        f"listener CPU: {100 * cpu / wall:.1f} % of one core over {wall:.1f} s "
        f"({100 * cpu / wall / sessions_count:.2f} % per session)"
    )
    print(
        f"event-loop lag: median {1000 * statistics.median(lags):.1f} ms, "
        f"p99 {1000 * percentile(lags, 99):.1f} ms, max {1000 * max(lags):.1f} ms"
    )
    print(
        f"decoded frames/s: heard {decoded[0]:.0f}, unheard median "
        f"{statistics.median(decoded[n] for n in unheard) if unheard else 0:.0f}"
        + (f" (+ {statistics.median(coarse[n] for n in unheard):.1f} coarse)" if unheard else "")
    )
    print(
        f"unheard sessions showing speaking: {sum(speaking_seen[n] for n in unheard)}"
        f" of {len(unheard)}"
    )
    firsts = [s.first_frame_ms for s in switch_log if s.first_frame_ms is not None]
    if firsts:
        print(
            f"switch -> first frame to the router: p50 {percentile(firsts, 50):.0f} ms, "
            f"p95 {percentile(firsts, 95):.0f} ms ({len(firsts)} of {len(switch_log)})"
        )
    if samples is not None and clock is not None:
        delays, leaks = analyse(samples, clock, switch_log, tones)
        if delays:
            print(
                f"switch -> new band in the recording: p50 {percentile(delays, 50):.0f} ms, "
                f"p95 {percentile(delays, 95):.0f} ms ({len(delays)} of {len(switch_log)})"
            )
        print(f"old band after {1000 * SWITCH_WINDOW_S:.0f} ms: in {leaks} of {len(switch_log)}")
    print(f"end() of all sessions together: {end_time:.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mechanism", choices=MECHANISMS, default="stream")
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args(argv)
    asyncio.run(bench(args.sessions, args.seconds, args.mechanism, args.switches))
    return 0


if __name__ == "__main__":
    sys.exit(main())

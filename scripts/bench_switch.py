"""Benchmark: how long after ``router.set_heard({B})`` does B's tone come out of the speaker?

Runs the real path (PyAudio -> PortAudio -> ALSA -> a private PulseAudio null
sink), records the sink with ``parec`` and finds, for each switch, the first
samples of the new call's band in the recording.  The recording is put on the
same clock as the ``set_heard()`` calls by sampling the recording file's length
while it grows, so each figure also includes parec's own capture latency
(asked for 20 ms): read them as upper bounds.

Usage: .venv/bin/python scripts/bench_switch.py [--switches N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.audio_analysis import band_db, ms
from tests.fixtures.audio import (
    PulseServer,
    ToneFeeder,
    wait_until_playing,
)
from tests.measure import RecordingClock
from tui.audio import AudioRouter, PyAudioDevice, open_output_device

RATE = 48_000
TONES = {"a": 440.0, "b": 1000.0}
THRESHOLD_DB = -40.0  # the feeders play at -10.5 dBFS


def first_band_onset(samples, hz: float, start: int) -> int | None:
    size, step = ms(10), ms(1)
    for at in range(max(start, 0), samples.size - size, step):
        if band_db(samples[at : at + size], hz) > THRESHOLD_DB:
            return at + size // 2
    return None


async def run(switches: int) -> int:
    server = PulseServer()
    os.environ["XDG_RUNTIME_DIR"] = server.env["XDG_RUNTIME_DIR"]
    os.environ["PULSE_CLIENTCONFIG"] = server.env["PULSE_CLIENTCONFIG"]
    server.start()
    device = open_output_device(None)
    try:
        if not isinstance(device, PyAudioDevice):
            print(f"no device: {device.notice}")
            return 1
        router = AudioRouter(device)
        await wait_until_playing(device)
        recorder = await asyncio.to_thread(server.record)
        clock = RecordingClock(recorder)
        feeders = [ToneFeeder(router.output_for(sid), hz).start() for sid, hz in TONES.items()]
        router.set_heard({"a"})
        await asyncio.sleep(0.8)
        calls: list[tuple[str, float]] = []
        for k in range(switches):
            target = "b" if k % 2 == 0 else "a"
            router.set_heard({target})
            calls.append((target, time.monotonic()))
            await asyncio.sleep(0.6)
        for feeder in feeders:
            await feeder.stop()
        await asyncio.sleep(0.2)
        clock.stop()
        samples = recorder.stop()
    finally:
        device.close()
        server.cleanup()

    delays: list[float] = []
    for target, when in calls:
        at = clock.offset_at(when)
        found = first_band_onset(samples, TONES[target], at - ms(50))
        if found is None:
            print(f"set_heard({target}): new band never heard")
            continue
        delays.append((found - at) / RATE * 1000)
        print(f"set_heard({target}): first samples {delays[-1]:6.1f} ms after the call")
    if delays:
        print(
            f"switch delay over {len(delays)} switches: "
            f"median {statistics.median(delays):.1f} ms, "
            f"min {min(delays):.1f} ms, max {max(delays):.1f} ms"
        )
    print(f"jitter-buffer underruns: {router.underruns}, PortAudio underflows: {device.xruns}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.switches))


if __name__ == "__main__":
    sys.exit(main())

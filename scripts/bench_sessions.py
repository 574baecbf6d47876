"""Measure N listen sessions in one process (the bots run in another).

    .venv/bin/python scripts/bench_sessions.py --sessions 8 --seconds 10

Prints: connect time per session, this process's CPU use while listening,
event-loop lag (how late a 10 ms ticker wakes), and transcript/audio counts.
Numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livekit import api

from tui.demo.bot_process import BotProcess, CallSpec
from tui.demo.calls import CallOptions
from tui.demo.livekit_server import LiveKitServer
from tui.listen import ListenSession, listen


class CountingOutput:
    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame: bytes) -> None:
        self.frames += 1

    def flush(self) -> None:
        pass


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


async def bench(sessions_count: int, seconds: float) -> None:
    with LiveKitServer() as server:
        rooms = [f"bench-{n}" for n in range(sessions_count)]
        specs = [
            CallSpec(
                room,
                CallOptions(mode="tone", tone_hz=300.0 + 50 * n, loop=True),
                caller_identity=f"+1555999{n:04d}",
            )
            for n, room in enumerate(rooms)
        ]
        with BotProcess(server.url, server.api_key, server.api_secret, specs) as bots:
            await bots.wait_ready_async()
            outputs = [CountingOutput() for _ in rooms]
            sessions: list[ListenSession] = [
                listen(server.url, token(server, room), output=out)
                for room, out in zip(rooms, outputs, strict=True)
            ]
            transcripts = [0] * sessions_count

            def counter(n: int):  # type: ignore[no-untyped-def]
                def count(transcript: object) -> None:
                    transcripts[n] += 1

                return count

            for n, session in enumerate(sessions):
                session.on("transcript", counter(n))

            async def timed_connect(session: ListenSession) -> float:
                started = time.perf_counter()
                await session.connect()
                await session.start_audio()
                return time.perf_counter() - started

            connect_times = await asyncio.gather(*(timed_connect(s) for s in sessions))
            stop, lags = asyncio.Event(), []
            ticker = asyncio.create_task(loop_lag(stop, lags))
            frames_before = [out.frames for out in outputs]
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu = time.process_time() - cpu_before
            wall = time.perf_counter() - wall_before
            frames_per_s = [
                (out.frames - before) / wall
                for out, before in zip(outputs, frames_before, strict=True)
            ]
            stop.set()
            await ticker

            started = time.perf_counter()
            await asyncio.gather(*(s.end() for s in sessions))
            end_time = time.perf_counter() - started
            await asyncio.gather(*(s.closed for s in sessions))

    print(f"sessions: {sessions_count}")
    print(
        f"connect: median {statistics.median(connect_times):.3f} s, max {max(connect_times):.3f} s"
    )
    print(
        f"listener CPU: {100 * cpu / wall:.1f} % of one core over {wall:.1f} s "
        f"({100 * cpu / wall / sessions_count:.2f} % per session)"
    )
    lags.sort()
    print(
        f"event-loop lag: median {1000 * statistics.median(lags):.1f} ms, "
        f"p99 {1000 * lags[int(len(lags) * 0.99)]:.1f} ms, max {1000 * lags[-1]:.1f} ms"
    )
    print(
        f"audio frames handed out per session: ~{statistics.median(frames_per_s):.0f}/s "
        "(100/s = every 10 ms block)"
    )
    print(f"transcript events per session: min {min(transcripts)}, max {max(transcripts)}")
    print(f"end() of all sessions together: {end_time:.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    asyncio.run(bench(args.sessions, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

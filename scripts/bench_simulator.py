"""What ``anyreach-tui simulate`` costs per call (issue 17).

For each N it starts ``anyreach-tui simulate --calls N`` (speech unless ``--tone``),
reads the api_url and api_key it prints, polls the API until N conversations are
``in_progress`` (time to N), then samples the CPU of the simulator's whole process
tree (livekit-server and espeak-ng included: utime + stime of every process below
it, and of children it reaped, from /proc/<pid>/stat) over ``--window`` seconds::

    .venv/bin/python scripts/bench_simulator.py            # N = 4 8 16 32, speech
    .venv/bin/python scripts/bench_simulator.py -n 4 -n 8 --window 20

Columns: ``N``; ``to N s``: from the command's start to N calls in progress (or
``-`` if never within ``--within``); ``in prog``: how many were in progress at the
end of the window; ``CPU %``: % of one core, the whole tree over the window;
``%/call``; ``PSS MiB``.  The first line states the machine and its load, since
every figure depends on what else runs there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
from tests.measure import Machine, cpu_percent, pss_mib, sample_cpu  # noqa: E402
from tui.anyreach import AnyreachClient  # noqa: E402
from tui.commands.demo import StackProcess  # noqa: E402


@dataclass
class Row:
    calls: int
    to_n: float | None
    in_progress: int
    cpu_pct: float
    pss: float

    def line(self) -> str:
        to_n = f"{self.to_n:6.1f}" if self.to_n is not None else "     -"
        per_call = self.cpu_pct / self.calls if self.calls else 0.0
        return (
            f"{self.calls:3d}  {to_n}  {self.in_progress:7d}  {self.cpu_pct:6.1f}  "
            f"{per_call:6.1f}  {self.pss:7.1f}"
        )


HEADER = "  N  to N s  in prog   CPU %  %/call  PSS MiB"


async def in_progress(client: AnyreachClient) -> int:
    conversations = await client.active_conversations()
    return sum(c.status == "in_progress" for c in conversations)


async def wait_in_progress(
    client: AnyreachClient, count: int, started: float, within: float
) -> float | None:
    """Seconds from ``started`` until ``count`` calls are in progress (None: not in time)."""
    deadline = started + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await in_progress(client) >= count:
                return time.monotonic() - started
        await asyncio.sleep(0.5)
    return None


async def measure(calls: int, *, tone: bool, window: float, within: float, log: Path) -> Row:
    started = time.monotonic()
    log_file = log.open("ab")
    sim = StackProcess(calls, tone=tone, log=log_file)  # what `anyreach-tui demo` runs
    try:
        await asyncio.to_thread(sim.read_endpoint)
        async with AnyreachClient(sim.api_url, sim.api_key) as client:
            to_n = await wait_in_progress(client, calls, started, within)
            before = sample_cpu(sim.proc.pid)
            await asyncio.sleep(window)
            after = sample_cpu(sim.proc.pid)
            pss = pss_mib(sim.proc.pid)
            count = -1
            with contextlib.suppress(Exception):
                count = await in_progress(client)
    finally:
        await asyncio.to_thread(sim.stop)
        log_file.close()
    return Row(calls, to_n, count, cpu_percent(before, after), pss)


async def main_async(args: argparse.Namespace) -> None:
    print(Machine.here().header(), flush=True)
    print(f"mode: {'tone' if args.tone else 'speech'}; window {args.window:.0f} s", flush=True)
    print(HEADER, flush=True)
    for calls in args.calls or [4, 8, 16, 32]:
        row = await measure(
            calls, tone=args.tone, window=args.window, within=args.within, log=args.log
        )
        print(row.line(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--calls", type=int, action="append", help="N (repeatable)")
    parser.add_argument("--tone", action="store_true", help="tone mode instead of speech")
    parser.add_argument("--window", type=float, default=30.0, help="CPU window, s (30)")
    parser.add_argument("--within", type=float, default=150.0, help="wait for N, s (150)")
    parser.add_argument(
        "--log", type=Path, default=Path("/tmp/bench-simulator.log"), help="simulator stderr"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

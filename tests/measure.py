"""How benchmarks and measuring tests measure: one definition each, shared.

- the machine a figure was taken on (cores, CPU model, kernel, load, date);
- CPU of a whole process tree as CPU-seconds over wall time (utime + stime of
  every process below a pid, from /proc; a child that exited is in its
  reaper's cutime/cstime), so other load on the machine changes it little;
- memory as PSS summed over the tree (/proc/<pid>/smaps_rollup);
- how busy the whole machine was meanwhile (/proc/stat: every process, all cores);
- the clock of a parec recording (sample offset <-> time.monotonic()).
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

RATE = 48_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu_model: str
    kernel: str
    load: tuple[float, float, float]
    date: str

    @classmethod
    def here(cls) -> Machine:
        model = "unknown CPU"
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        return cls(
            cores=os.cpu_count() or 0,
            cpu_model=model,
            kernel=f"{platform.system()} {platform.release()}",
            load=os.getloadavg(),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )

    def header(self) -> str:
        load = " ".join(f"{value:.2f}" for value in self.load)
        return (
            f"machine: {self.cores} cores, {self.cpu_model}, {self.kernel}; "
            f"load average at start {load}\ndate: {self.date}"
        )


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


@dataclass(frozen=True)
class CpuSample:
    at: float  # time.monotonic()
    ticks: dict[int, int]  # pid -> utime + stime + cutime + cstime


def sample_cpu(root: int) -> CpuSample:
    ticks = {}
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks[pid] = sum(int(value) for value in fields[11:15])
    return CpuSample(time.monotonic(), ticks)


def cpu_percent(before: CpuSample, after: CpuSample) -> float:
    """% of one core between two samples; a process gone meanwhile is in its reaper's
    cutime/cstime, a new one counts from zero."""
    used = sum(ticks - before.ticks.get(pid, 0) for pid, ticks in after.ticks.items())
    return 100.0 * used / CLOCK_TICKS / (after.at - before.at)


@dataclass(frozen=True)
class MachineSample:
    busy: int  # jiffies of every core spent on anything but idle and iowait
    total: int


def sample_machine() -> MachineSample:
    """The whole machine's CPU time so far (/proc/stat), every process on it."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return MachineSample(sum(fields) - idle, sum(fields))


def machine_busy_percent(before: MachineSample, after: MachineSample) -> float:
    """How busy the machine was between two samples, % of all its cores (100 = saturated)."""
    total = after.total - before.total
    return 100.0 * (after.busy - before.busy) / total if total else 0.0


def pss_mib(root: int | None = None) -> float:
    """PSS of the tree below ``root`` (default: this process alone), MiB."""
    pids = process_tree(root) if root is not None else ["self"]
    total_kib = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
    return total_kib / 1024


class GrowingRecording(Protocol):
    def recorded_samples(self) -> int: ...


class RecordingClock:
    """Maps recording sample offsets to time.monotonic() by watching the file grow."""

    def __init__(self, recorder: GrowingRecording) -> None:
        self._recorder = recorder
        self._earliest_start = float("inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            now, size = time.monotonic(), self._recorder.recorded_samples()
            if size:
                # The file lags real time, so the smallest estimate is the closest one.
                self._earliest_start = min(self._earliest_start, now - size / RATE)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def offset_at(self, when: float) -> int:
        return round((when - self._earliest_start) * RATE)

"""The shared ending of long-running commands, in a child process (it ends processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tui.commands import ending

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import asyncio, os, signal, sys, time
from tui.commands.ending import Ending, HEADLESS_SIGNALS

mode = sys.argv[1]

async def graceful():
    print("graceful", flush=True)
    if mode == "stuck":
        await asyncio.sleep(60)  # never ends: the deadline must
    stop.set()

async def main():
    global stop
    stop = asyncio.Event()
    print("ready", flush=True)
    if mode == "starved":
        while True:  # never yields to the loop; the handler still runs between bytecodes
            pass
    await stop.wait()
    return 0

ending = Ending(
    graceful, signals=HEADLESS_SIGNALS, deadline=0.5, exit_code=7,
    last_words=lambda: print("last words", flush=True),
)
with ending:
    code = asyncio.run(main())
print("returned", code, ending.signal_name, flush=True)
"""


def run(mode: str, signum: int) -> tuple[int, str, float]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PROGRAM), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    sent = time.monotonic()
    child.send_signal(signum)
    out, _ = child.communicate(timeout=10)
    return child.returncode, out, time.monotonic() - sent


@pytest.mark.timeout(30)
def test_a_signal_runs_the_graceful_end_on_the_loop() -> None:
    code, out, _ = run("normal", ending.signal.SIGTERM)
    assert code == 0
    assert out.split("\n")[:2] == ["graceful", "returned 0 SIGTERM"]


@pytest.mark.timeout(30)
def test_a_starved_loop_still_leaves_by_the_deadline() -> None:
    code, out, took = run("starved", ending.signal.SIGHUP)
    assert code == 7
    assert "graceful" not in out and "last words" in out
    assert took < 3


@pytest.mark.timeout(30)
def test_a_graceful_end_that_hangs_is_cut_at_the_deadline() -> None:
    code, out, took = run("stuck", ending.signal.SIGINT)
    assert code == 7
    assert out.split("\n")[:2] == ["graceful", "last words"]
    assert 0.4 < took < 3


def test_terminal_alive_is_false_without_a_controlling_terminal() -> None:
    probe = "from tui.commands.ending import terminal_alive; print(terminal_alive())"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        start_new_session=True,  # a new session has no controlling terminal
        timeout=20,
    )
    assert result.stdout.strip() == "False"


def test_the_documented_timings() -> None:
    # The README promises every session ended within 3.5 s of SIGHUP/SIGTERM.
    assert ending.SIGNAL_END_GRACE_S < ending.EXIT_DEADLINE_S <= 3.5

"""The real product in a real terminal: ``anyreach-tui demo`` inside tmux.

The demo starts livekit-server, the API emulator and simulated calls, then the
dashboard; these tests read the screen with ``tmux capture-pane`` like a person
would, press keys, and check that after ``q`` no process of the demo is left.
One runs with ``--no-audio``, one with a sound device (a private PulseAudio
null sink, recorded): with a device open, the screen must still reach the
terminal and never the log file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.audio import RATE, PulseServer

ROOT = Path(__file__).resolve().parents[2]
ANYREACH_TUI = Path(sys.executable).with_name("anyreach-tui")
WIDTH, HEIGHT = 160, 45
FOCUS_CORNER = "┏"  # the focused pane's heavy border: visible without colour too

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Tmux:
    def __init__(self, tmp_path: Path) -> None:
        self.socket = f"anyreach-test-{uuid.uuid4().hex[:8]}"
        self.session = "demo"
        self.tmp_path = tmp_path

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        shell = f"env {exports} {' '.join(command)}"
        self.run(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            shell,
        )
        self.run("set-option", "-t", self.session, "remain-on-exit", "on")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def pane_pid(self) -> int:
        return int(self.run("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())

    def pane_dead(self) -> bool:
        out = self.run("display-message", "-p", "-t", self.session, "#{pane_dead}")
        return out.strip() == "1"

    def kill(self) -> None:
        # A failing test must not leave the demo behind: remember its processes
        # before the pane goes, then make sure none survives.
        try:
            pids = descendants(self.pane_pid()) | {self.pane_pid()}
        except (subprocess.CalledProcessError, ValueError):
            pids = set()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
        for pid in pids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (the demo, its stack child, livekit-server)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(tmux: Tmux, predicate: Callable[[str], bool], what: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen()
        if predicate(screen):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")


def corner_positions(screen: str, corner: str) -> list[tuple[int, int]]:
    return [
        (row, col)
        for row, line in enumerate(screen.splitlines())
        for col, char in enumerate(line)
        if char == corner
    ]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    assert shutil.which("tmux"), "tmux is installed by scripts/setup.sh"
    session = Tmux(tmp_path)
    yield session
    session.kill()


def demo_env(tmp_path: Path) -> dict[str, str]:
    return {
        # Private folders: the demo's logs and transcripts stay in this test.
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
        "TERM": "xterm-256color",
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
    }


def log_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "anyreach-tui" / "anyreach-tui.log"


def wait_for_live_panes(tmux: Tmux) -> str:
    return wait_for(
        tmux,
        lambda s: s.count("LIVE") >= 2 and ("AGENT" in s or "CALLER" in s),
        "two LIVE panes with transcript lines",
        timeout=150,
    )


def quit_and_check_nothing_left(tmux: Tmux, demo_processes: set[int]) -> None:
    """``q``: the dashboard ends its sessions and the stack goes with it."""
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not tmux.pane_dead():
        time.sleep(0.2)
    assert tmux.pane_dead(), "the demo did not exit after q:\n" + tmux.screen()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in demo_processes):
        time.sleep(0.2)
    left = [p for p in demo_processes if alive(p)]
    assert not left, f"processes of the demo still running after q: {left}"


def test_demo_in_a_real_terminal(tmux: Tmux, tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    tmux.start([str(ANYREACH_TUI), "demo", "--no-audio", "--calls", "3"], env)

    screen = wait_for_live_panes(tmux)
    demo_processes = descendants(tmux.pane_pid()) | {tmux.pane_pid()}
    assert len(demo_processes) >= 3, "dashboard, stack process and livekit-server"

    # Focus moves: the heavy corner of the focused pane changes place.
    before = corner_positions(screen, FOCUS_CORNER)
    assert len(before) == 1, screen
    tmux.keys("l")
    screen = wait_for(
        tmux,
        lambda s: corner_positions(s, FOCUS_CORNER) not in ([], before),
        "focus to move right",
        timeout=10,
    )
    tmux.keys("Tab")
    wait_for(
        tmux,
        lambda s: corner_positions(s, FOCUS_CORNER) not in ([], corner_positions(screen, "┏")),
        "tab to move focus",
        timeout=10,
    )

    # Zoom: one pane fills the screen; escape brings the grid back.
    tmux.keys("z")
    wait_for(tmux, lambda s: s.count("LIVE") + s.count("Ended") == 1, "zoomed pane", 10)
    tmux.keys("Escape")
    wait_for(tmux, lambda s: s.count("LIVE") + s.count("Ended") >= 2, "grid again", 10)

    # Help opens and closes.
    tmux.keys("?")
    wait_for(tmux, lambda s: "anyreach-tui keys" in s and "Next pane" in s, "help", 10)
    tmux.keys("Escape")
    wait_for(tmux, lambda s: "anyreach-tui keys" not in s, "help closed", 10)

    quit_and_check_nothing_left(tmux, demo_processes)
    assert b"\x1b" not in log_file(tmp_path).read_bytes()


def rms_windows(samples: np.ndarray, window_s: float = 0.1) -> np.ndarray:
    """RMS of each window, in full-scale fractions."""
    n = int(RATE * window_s)
    usable = len(samples) // n * n
    windows = samples[:usable].astype(np.float64).reshape(-1, n) / 32768.0
    return np.sqrt((windows**2).mean(axis=1))


SILENT_RMS = 10 ** (-60 / 20)  # -60 dBFS: nothing played (a null sink records zeros)
SPEECH_RMS = 10 ** (-40 / 20)  # -40 dBFS: clearly someone speaking


def test_demo_with_a_sound_device_draws_on_the_terminal(tmux: Tmux, tmp_path: Path) -> None:
    """Audio on (PortAudio open, fd 2 moved off the terminal): the screen still shows."""
    pulse = PulseServer().start()
    try:
        env = demo_env(tmp_path)
        env["XDG_RUNTIME_DIR"] = pulse.env["XDG_RUNTIME_DIR"]
        env["PULSE_CLIENTCONFIG"] = pulse.env["PULSE_CLIENTCONFIG"]
        tmux.start([str(ANYREACH_TUI), "demo", "--calls", "3"], env)
        screen = wait_for_live_panes(tmux)
        assert "No audio device" not in screen, screen
        demo_processes = descendants(tmux.pane_pid()) | {tmux.pane_pid()}

        recorder = pulse.record()
        time.sleep(3)  # listening is off at start: nothing may play
        pressed_at = recorder.recorded_samples()
        tmux.keys("Space")
        time.sleep(8)  # speech has pauses: a few seconds hold several turns
        samples = recorder.stop()

        before = rms_windows(samples[:pressed_at])
        after = rms_windows(samples[pressed_at + RATE // 2 :])  # the switch's own delay
        assert len(before) >= 20 and len(after) >= 60, (len(before), len(after))
        assert before.max() < SILENT_RMS, f"sound before space: {before.max():.2e}"
        loud = int((after > SPEECH_RMS).sum())
        assert loud >= 10, f"the focused call was not heard after space ({loud} loud windows)"

        quit_and_check_nothing_left(tmux, demo_processes)
    finally:
        pulse.cleanup()
    log = log_file(tmp_path).read_bytes()
    assert log, "the dashboard wrote its log"
    assert b"\x1b" not in log, "screen output (ESC sequences) reached the log file"

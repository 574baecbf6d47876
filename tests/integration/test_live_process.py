"""``anyreach-tui`` as a real process in a real terminal (tmux) against the demo stack."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.config import ConfigHome
from tests.fixtures.live import TmuxApp, process_gone, until
from tui.demo.calls import CallOptions
from tui.demo.stack import DemoStack, StackCall
from tui.monitor.store import read_transcript, transcript_file_name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
ENDLESS = CallOptions(mode="tone", loop=True, time_scale=0.3)
# A screen line can only prove a segment settled if all of its text fits on it.
JUDGEABLE_CHARS = 150

TmuxFactory = Callable[[dict[str, str]], TmuxApp]


def app_env(config_home: ConfigHome, stack: DemoStack) -> dict[str, str]:
    return config_home.env(
        ANYREACH_API_URL=stack.api_url,
        ANYREACH_API_KEY=stack.api_key,
        ANYREACH_DISCOVERY__INTERVAL_S="0.5",
        TERM="xterm-256color",
    )


def shown_settled(screen: str, entry: StackCall) -> set[str]:
    """Segments of the call whose whole text is on screen without the interim mark."""
    assert entry.call is not None
    found = set()
    for segment in entry.call.sent_segments:
        text = segment.text.strip()
        if not segment.final or not text or len(text) > JUDGEABLE_CHARS:
            continue
        for line in screen.splitlines():
            at = line.find(text)
            if at >= 0 and not line[at + len(text) :].lstrip(" ").startswith("…"):
                found.add(segment.segment_id)
    return found


@pytest.mark.timeout(120)
async def test_kill_9_mid_call_loses_no_line_shown_as_settled(
    config_home: ConfigHome, demo_stack: StackFactory, tmux_app: TmuxFactory
) -> None:
    stack = await demo_stack(calls=0)
    entry = stack.start_call("support", channel="webrtc", options=ENDLESS)
    await stack.wait_in_progress(1)
    terminal = tmux_app(app_env(config_home, stack))
    pid = terminal.start("--no-audio")
    await until(lambda: "LIVE" in terminal.screen(), 40, "the call LIVE on screen")
    await until(
        lambda: len(shown_settled(terminal.screen(), entry)) >= 3, 60, "settled lines on screen"
    )
    screen = terminal.screen()
    os.kill(pid, signal.SIGKILL)
    shown = shown_settled(screen, entry)
    assert len(shown) >= 3
    path = config_home.data_dir / "transcripts" / transcript_file_name(entry.conversation_id)
    saved = [s.id for s in read_transcript(path)]
    assert shown <= set(saved)
    assert len(path.read_text().splitlines()) == len(saved)  # no line twice


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "signum", [signal.SIGHUP, signal.SIGTERM, None], ids=["SIGHUP", "SIGTERM", "terminal-closed"]
)
async def test_hangup_or_term_ends_every_session_and_exits_and_logs_go_to_the_file(
    config_home: ConfigHome, demo_stack: StackFactory, tmux_app: TmuxFactory, signum: int
) -> None:
    stack = await demo_stack(calls=0)
    for _ in range(2):
        stack.start_call("support", channel="webrtc", options=ENDLESS)
    await stack.wait_in_progress(2)
    terminal = tmux_app(app_env(config_home, stack))
    pid = terminal.start("--no-audio", "--log-level", "DEBUG")
    await until(lambda: terminal.screen().count("LIVE") == 2, 40, "both calls LIVE on screen")

    sent = time.monotonic()
    if signum is None:
        terminal.close()  # the terminal goes away: the kernel hangs the app up
        signum = signal.SIGHUP
    else:
        os.kill(pid, signum)
    await until(lambda: process_gone(pid), 10, "the app exits")
    took = time.monotonic() - sent
    print(f"\n{signal.Signals(signum).name} to exit: {took:.2f} s")
    assert took <= 3.5  # the documented bound on ending every session

    log = (config_home.state_dir / "anyreach-tui.log").read_text()
    assert f"received {signal.Signals(signum).name}" in log
    assert "sessions not ended: 0" in log
    assert re.search(r" (livekit|httpx|tui\.listen)[\w.]*: ", log)  # library noise lands here
    assert stack.api_key not in log
    assert not re.search(r"eyJ[\w-]{10,}\.", log)  # no JWT either


@pytest.mark.timeout(60)
async def test_bad_config_and_pat_without_org_exit_2_before_any_request(
    config_home: ConfigHome, demo_stack: StackFactory
) -> None:
    stack = await demo_stack(calls=0)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tui.commands.main", *args],
            capture_output=True,
            text=True,
            env=config_home.env(ANYREACH_API_URL=stack.api_url, **env),
            cwd=ROOT,
            timeout=40,
        )

    bad = config_home.write_config('[discovery]\nmax_panes = "many"\nspeed = 3\n')
    result = await asyncio.to_thread(run, "--config", str(bad))
    assert result.returncode == 2
    assert f"discovery.max_panes ({bad}, line 2)" in result.stderr
    assert result.stdout == ""  # no UI was drawn

    pat = stack.emulator.add_key(personal=True)
    result = await asyncio.to_thread(run, ANYREACH_API_KEY=pat)
    assert result.returncode == 2
    assert "org_id" in result.stderr and pat not in result.stderr
    assert stack.emulator.request_count() == 0

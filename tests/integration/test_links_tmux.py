"""`y` reaches the clipboard of the terminal the user sits at, through tmux (real processes).

The real dashboard runs against the demo stack inside an *inner* tmux (the session
on the remote host), whose client runs inside an *outer* tmux (standing in for the
user's own terminal, which accepts OSC 52).  The app writes OSC 52; with
``set-clipboard on`` the inner tmux takes it as a buffer and passes it on to the
outer one.  Both buffers must hold exactly ``"ID URL"``.  With tmux's default,
``external``, nothing arrives: that is why the README asks for ``on``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.config import ConfigHome
from tests.fixtures.live import until
from tui.app.links import clipboard_text, conversation_url
from tui.config.settings import DEFAULT_CONVERSATION_URL
from tui.demo.calls import CallOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ENDLESS = CallOptions(mode="tone", loop=True, time_scale=0.3)
# Pinned from the command line: a bracket, ESC, BEL, an OSC title, a newline, a space.
HOSTILE_ID = "c]1\x1b]0;pwned\x07\n2 z"


class NestedTmux:
    """The app in an inner tmux whose client runs in an outer tmux (the user's terminal)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        tag = f"{os.getpid()}-{id(self)}"
        self.outer, self.inner = f"anyreach-outer-{tag}", f"anyreach-inner-{tag}"
        self.root = root
        self.env = {k: v for k, v in env.items() if k != "TMUX"}

    def run(self, socket: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=10,
        )

    def start(self, *app_args: str) -> None:
        app = " ".join(
            shlex.quote(a) for a in (sys.executable, "-m", "tui.commands.main", *app_args)
        )
        inner = " ".join(
            shlex.quote(a)
            for a in ("tmux", "-L", self.inner, "-f", "/dev/null", "new-session", f"exec {app}")
        )
        started = self.run(
            self.outer,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            str(self.root),
            f"exec {inner}",
        )
        assert started.returncode == 0, started.stderr
        # The user's terminal takes OSC 52 from what runs in it (here: the inner tmux).
        self.run(self.outer, "set-option", "-s", "set-clipboard", "on")

    def inner_ready(self) -> bool:
        return self.run(self.inner, "has-session").returncode == 0

    def screen(self) -> str:
        return self.run(self.inner, "capture-pane", "-p", "-J").stdout

    def press(self, *keys: str) -> None:
        # Typed into the outer terminal: they go through the inner tmux to the app.
        self.run(self.outer, "send-keys", *keys)

    def buffer(self, socket: str) -> str | None:
        shown = self.run(socket, "show-buffer")
        return shown.stdout if shown.returncode == 0 else None

    def close(self) -> None:
        for socket in (self.inner, self.outer):
            self.run(socket, "kill-server")


@pytest.fixture
def nested_tmux(tmp_path: Path) -> Iterator[list[NestedTmux]]:
    made: list[NestedTmux] = []
    yield made
    for terminal in made:
        terminal.close()


@pytest.mark.timeout(120)
async def test_y_copies_id_and_link_through_tmux_to_the_outer_terminal(
    config_home: ConfigHome,
    demo_stack: StackFactory,
    nested_tmux: list[NestedTmux],
    tmp_path: Path,
) -> None:
    stack = await demo_stack(calls=0)
    entry = stack.start_call("support", channel="webrtc", options=ENDLESS)
    await stack.wait_in_progress(1)
    env = config_home.env(
        ANYREACH_API_URL=stack.api_url,
        ANYREACH_API_KEY=stack.api_key,
        ANYREACH_DISCOVERY__INTERVAL_S="0.5",
        TERM="xterm-256color",
        SSH_CONNECTION="10.0.0.2 50000 10.0.0.1 22",  # the dashboard runs on a remote host
    )
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    terminal = NestedTmux(tmp_path, env)
    nested_tmux.append(terminal)
    terminal.start("--no-audio", HOSTILE_ID)
    await until(terminal.inner_ready, 20, "the inner tmux is up")
    await until(lambda: "LIVE" in terminal.screen(), 40, "the demo call LIVE on screen")
    await until(lambda: "2 calls" in terminal.screen(), 20, "the pinned pane too")

    real = clipboard_text(
        entry.conversation_id, conversation_url(DEFAULT_CONVERSATION_URL, entry.conversation_id)
    )
    hostile = conversation_url(DEFAULT_CONVERSATION_URL, HOSTILE_ID)  # the link alone
    assert real == (
        f"{entry.conversation_id} https://app.anyreach.ai/conversations/{entry.conversation_id}"
    )

    # tmux's default, external: programs' OSC 52 is ignored, nothing reaches the user.
    terminal.run(terminal.inner, "set-option", "-s", "set-clipboard", "external")
    terminal.press("1", "y")
    await until(lambda: "OSC 52" in terminal.screen(), 10, "the copy notice")
    assert terminal.buffer(terminal.inner) is None
    assert terminal.buffer(terminal.outer) is None

    # set -g set-clipboard on (the README's line): it passes, into both clipboards.
    terminal.run(terminal.inner, "set-option", "-s", "set-clipboard", "on")
    copied: list[str] = []
    for pane in ("1", "2"):
        terminal.press(pane, "y")
        await until(
            lambda: (b := terminal.buffer(terminal.outer)) is not None and b not in copied,
            10,
            f"pane {pane}'s link in the outer terminal's clipboard",
        )
        outer = terminal.buffer(terminal.outer)
        assert outer is not None
        assert terminal.buffer(terminal.inner) == outer
        copied.append(outer)
    assert sorted(copied) == sorted([real, hostile])
    assert "\x1b" not in hostile and "\n" not in hostile and "%1B%5D0%3Bpwned%07%0A2%20z" in hostile

    # The sequence was consumed by tmux, not drawn: the screen still shows the panes,
    # and the hostile id in the pane header is text (no title change, nothing erased).
    screen = terminal.screen()
    assert "LIVE" in screen and "2 calls" in screen
    title = terminal.run(terminal.inner, "display-message", "-p", "#{pane_title}").stdout
    assert "pwned" not in title

    # o over SSH: words, no browser.
    terminal.press("o")
    await until(lambda: "No local browser" in terminal.screen(), 10, "the no-browser words")
    assert "over SSH" in terminal.screen()

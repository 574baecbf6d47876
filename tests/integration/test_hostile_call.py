"""Hostile transcript text through a real call, to the real terminal, the JSONL and ``tail``.

A simulated call plays the ``hostile`` scenario (tui/demo/scenarios/hostile.toml): its
agent bot publishes, on ``lk.transcription`` text streams as LiveKit agents do, Rich
markup, CSI/OSC sequences (screen erase, colour, window title, OSC 52 clipboard), C1
controls, bidi overrides and a 100 KiB line.  The real dashboard runs in tmux; ``tail``
runs as a process beside it.  In the same run no API key or listener token may show on
the screen, in ``tail``'s output or in the log file at DEBUG; the same goes for
``anyreach-tui demo``, the command that writes demo-stack.log.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.config import ConfigHome
from tests.fixtures.live import TmuxApp, end_tail, process_gone, saved_records
from tui.demo.calls import CallOptions
from tui.demo.scenarios import load_scenario
from tui.demo.stack import DemoStack, StackCall
from tui.monitor.store import transcript_file_name
from tui.monitor.text import TRUNCATION_MARK, safe_text

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = load_scenario("hostile")
TEXTS = [line.text for line in SCENARIO.lines]
LONG_TEXT = max(TEXTS, key=len)
# The call repeats its script, so a listener that joins late still hears every line.
HOSTILE = CallOptions(scenario="hostile", mode="tone", loop=True, time_scale=0.3)
JWT = re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]*")
SGR = re.compile(r"\x1b\[([0-9;:]*)m")
RAW_C1 = re.compile("[\x80-\x9f]")
# The shape of every key the emulator makes (ak_ or pat_ and 40 hex digits).
EMULATOR_KEY = re.compile(r"\b(?:ak|pat)_[0-9a-f]{16,}")
TAIL_LINE_LIMIT = 1 << 22  # one JSON line carries the 100 KiB text (asyncio's default: 64 KiB)

TmuxFactory = Callable[[dict[str, str]], TmuxApp]


def test_the_scenario_carries_every_kind_of_hostile_text() -> None:
    joined = "".join(TEXTS)
    for needle in (
        "[bold red]x[/]",
        "[link=https://evil]y[/link]",
        "\x1b[2J",
        "\x1b[31m",
        "\x1b]0;PWNED\x07",
        "\x1b]52;c;cHduZWQ=\x07",
        "\x9b2J",
        "\x9d0;x\x9c",
        "\u202e",
        "\u2066",
    ):
        assert needle in joined, repr(needle)
    assert len(LONG_TEXT.encode()) >= 100 * 1024
    assert SCENARIO.on_demand  # never played by "every scenario" (the demo)


def basic_colours(params: str) -> set[int]:
    """The 16-colour SGR codes (30-37, 90-97 and their backgrounds) in one SGR's params:
    what a leaked ``ESC[31m`` would set.  Textual itself draws in 256 or 24-bit colour."""
    numbers = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)]
    found: set[int] = set()
    index = 0
    while index < len(numbers):
        number = numbers[index]
        if number in (38, 48, 58):  # extended colour: 5;N or 2;R;G;B follow
            index += 3 if numbers[index + 1 : index + 2] == [5] else 5
            continue
        if 30 <= number <= 37 or 40 <= number <= 47 or 90 <= number <= 97 or 100 <= number <= 107:
            found.add(number)
        index += 1
    return found


def shown(screen_e: str) -> str:
    """A ``capture-pane -e`` screen with tmux's own SGR codes taken out."""
    return SGR.sub("", screen_e)


class Terminal:
    """The dashboard's tmux pane, with the checks every capture must pass."""

    def __init__(self, app: TmuxApp) -> None:
        self.app = app
        self.pane = app.tmux("display-message", "-p", "#{pane_id}").strip()
        self.screens: list[str] = []

    def capture(self) -> str:
        screen = self.app.tmux("capture-pane", "-p", "-e", "-t", self.pane)
        self.screens.append(screen)
        return screen

    def title(self) -> str:
        return self.app.tmux("display-message", "-p", "-t", self.pane, "#{pane_title}").strip()

    def buffers(self) -> str:
        return self.app.tmux("list-buffers", "-F", "#{buffer_name}: #{buffer_sample}")

    def keys(self, *keys: str) -> None:
        self.app.tmux("send-keys", "-t", self.pane, *keys)


def check_tmux_notices_osc(app: TmuxApp) -> None:
    """A control: in this tmux, OSC 0 does change a pane's title and OSC 52 does fill a
    buffer, so the dashboard's unchanged title and empty buffer list below mean something."""
    window = app.tmux(
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        r"printf '\033]0;CANARY\007\033]52;c;Y2FuYXJ5\007'; sleep 30",
    ).strip()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        title = app.tmux("display-message", "-p", "-t", window, "#{pane_title}").strip()
        if title == "CANARY" and "canary" in app.tmux("show-buffer"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("tmux ignored OSC 0 / OSC 52: the checks below could not fail")
    app.tmux("kill-pane", "-t", window)
    app.tmux("delete-buffer")
    assert app.tmux("list-buffers") == ""


def app_env(config_home: ConfigHome, stack: DemoStack) -> dict[str, str]:
    return config_home.env(
        ANYREACH_API_URL=stack.api_url,
        ANYREACH_API_KEY=stack.api_key,
        ANYREACH_DISCOVERY__INTERVAL_S="0.5",
        TERM="xterm-256color",
    )


def record_tokens(stack: DemoStack) -> list[str]:
    """Every listener JWT the emulator mints from now on (its records keep no token)."""
    tokens: list[str] = []
    mint = stack.emulator._mint

    def recording(conversation: Any) -> dict[str, str]:
        answer = mint(conversation)
        tokens.append(answer["token"])
        return answer

    stack.emulator._mint = recording  # type: ignore[method-assign]
    return tokens


def sent_texts(entry: StackCall) -> tuple[dict[str, str], dict[str, set[str]]]:
    """What the bot sent: each settled segment's text, and every text of each segment."""
    assert entry.call is not None
    finals: dict[str, str] = {}
    every: dict[str, set[str]] = {}
    for segment in entry.call.sent_segments:
        every.setdefault(segment.segment_id, set()).add(segment.text)
        if segment.final:
            finals[segment.segment_id] = segment.text
    return finals, every


def tail_finals(lines: list[bytes]) -> list[dict]:
    records = [json.loads(raw) for raw in list(lines)]
    return [r for r in records if r["event"] == "transcript" and r["final"]]


def check_exact(
    records: list[dict], settled_before_end: int, sent: dict[str, str], every: dict[str, set[str]]
) -> None:
    """Each segment settled while the call went on holds exactly the text the bot sent;
    one settled by our own ending (q, SIGTERM) mid-sentence holds what had been said."""
    for index, record in enumerate(records):
        if index < settled_before_end:
            assert record["text"] == sent.get(record["id"]), record["id"]
        else:
            assert record["text"] in every[record["id"]], record["id"]


async def read_lines(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while raw := await stream.readline():
        into.append(raw)


def screen_fragments() -> dict[str, str]:
    """What each line must look like on screen: its text made visible, as typed."""
    fragments = {text: safe_text(text) for text in TEXTS if text != LONG_TEXT}
    # The long line is cut for display; its start must show (and the app live on).
    fragments[LONG_TEXT] = LONG_TEXT[:120]
    return fragments


@pytest.mark.timeout(240)
async def test_hostile_text_through_a_real_call_shows_as_text_and_is_kept_exactly(
    config_home: ConfigHome, demo_stack: StackFactory, tmux_app: TmuxFactory
) -> None:
    stack = await demo_stack(calls=0)
    tokens = record_tokens(stack)
    app = tmux_app(app_env(config_home, stack))
    app.size = (200, 60)
    pid = app.start("--no-audio", "--log-level", "DEBUG")
    app.tmux("set-option", "-g", "set-clipboard", "on")  # an app's OSC 52 would fill a buffer
    terminal = Terminal(app)
    check_tmux_notices_osc(app)

    async def until(predicate: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            assert not process_gone(pid), f"the app exited while waiting for: {what}"
            assert time.monotonic() < deadline, f"never happened: {what}\n{shown(app.screen())}"
            await asyncio.sleep(0.2)

    await until(lambda: "anyreach" in shown(terminal.capture()).lower(), 30, "the dashboard")
    title = terminal.title()
    assert "PWNED" not in title

    entry = stack.start_call("hostile", channel="webrtc", options=HOSTILE)
    await stack.wait_in_progress(1)
    tail_env = config_home.env(ANYREACH_API_URL=stack.api_url, ANYREACH_API_KEY=stack.api_key)
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui.commands.main",
        "tail",
        entry.conversation_id,
        "--log-level",
        "DEBUG",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=tail_env,
        cwd=ROOT,
        limit=TAIL_LINE_LIMIT,
    )
    assert tail.stdout is not None and tail.stderr is not None
    tail_out: list[bytes] = []
    reader = asyncio.create_task(read_lines(tail.stdout, tail_out))
    jsonl = config_home.data_dir / "transcripts" / transcript_file_name(entry.conversation_id)
    fragments = screen_fragments()
    seen_on_screen: set[str] = set()
    erased: list[str] = []  # screens from the first one with the erase line on

    def progress() -> bool:
        screen = terminal.capture()
        text = shown(screen)
        # Every screen, whenever taken: the terminal obeyed nothing it was sent.
        assert terminal.title() == title
        assert terminal.buffers() == "", "an OSC 52 clipboard write reached tmux"
        assert "\x1b" not in text, f"an escape other than tmux's SGR: {text!r}"
        for match in SGR.finditer(screen):
            assert not basic_colours(match.group(1)), f"a 16-colour SGR on screen: {match[0]!r}"
        for sent, fragment in fragments.items():
            if fragment in text:
                seen_on_screen.add(sent)
        if erased or safe_text(TEXTS[1]) in text:
            erased.append(text)
        saved = {r["text"] for r in saved_records(jsonl)}
        tailed = {r["text"] for r in tail_finals(tail_out)}
        return seen_on_screen == set(TEXTS) and set(TEXTS) <= saved and set(TEXTS) <= tailed

    try:
        await until(progress, 120, "every hostile line on screen, in the JSONL and from tail")
        # Still responsive after the 100 KiB line: the help opens and closes on keys.
        terminal.keys("?")
        await until(lambda: "anyreach-tui keys" in shown(terminal.capture()), 15, "help shown")
        terminal.keys("Escape")
        await until(lambda: "anyreach-tui keys" not in shown(terminal.capture()), 15, "help shut")
        assert terminal.title() == title and terminal.buffers() == ""
        tailed_before_stop = len(tail_out)
        tail.send_signal(signal.SIGTERM)
        tail_code = await asyncio.wait_for(tail.wait(), 20)
        await asyncio.wait_for(reader, 10)
        tail_err = (await tail.stderr.read()).decode(errors="replace")
        saved_before_quit = len(saved_records(jsonl))
        terminal.keys("q")
        deadline = time.monotonic() + 10
        while not process_gone(pid):
            assert time.monotonic() < deadline, "the app did not quit on q"
            await asyncio.sleep(0.1)
    finally:
        await end_tail(tail, reader)

    # -- the screen: everything as text, nothing cleared, no title, no clipboard --------
    screens = [shown(s) for s in terminal.screens]
    # Nothing was erased: Textual repaints only what changed, so after an erase the
    # status line, the pane's border and header and the key bar would be gone.
    assert erased
    for screen in erased:
        rows = screen.splitlines()
        assert "anyreach-tui" in rows[0] and rows[1].startswith("┏"), screen
        assert "LIVE" in rows[2] and rows[-1].rstrip().endswith("q Quit"), screen
    assert any("[bold red]x[/]" in s and "[link=https://evil]y[/link]" in s for s in screens)
    assert any("␛]0;PWNED␇" in s and "␛]52;c;cHduZWQ=␇" in s for s in screens)
    assert any("\\u009b2J" in s and "\\u009d0;x\\u009c" in s for s in screens)
    assert any("\\u202eemordnilap\\u202c and \\u2066isolated\\u2069" in s for s in screens)
    assert not any(RAW_C1.search(s) or "\u202e" in s or "\u2066" in s for s in screens)
    # The long line shows cut (the whole of it would bury the pane).
    assert any(TRUNCATION_MARK.strip() in s for s in screens)

    # -- the transcript file: the exact text of every settled segment -----------------
    sent, sent_any = sent_texts(entry)
    saved = saved_records(jsonl)
    assert saved and {r["text"] for r in saved} >= set(TEXTS)
    check_exact(saved, saved_before_quit, sent, sent_any)
    assert len({r["id"] for r in saved}) == len(saved)

    # -- tail: exact text in JSON, no ESC or raw C1 byte on its stdout ----------------
    assert tail_code == 130, tail_err  # stopped by SIGTERM while following one call
    assert tail_out
    for raw in tail_out:
        assert b"\x1b" not in raw
        line = raw.decode("utf-8")
        assert not RAW_C1.search(line), line[:200]
    finals = tail_finals(tail_out)
    assert {r["text"] for r in finals} >= set(TEXTS)
    finals_before_stop = len(tail_finals(tail_out[:tailed_before_stop]))
    check_exact(finals, finals_before_stop, sent, sent_any)

    # -- secrets: no key, no listener token anywhere a person or a log would see ------
    log = (config_home.state_dir / "anyreach-tui.log").read_text(encoding="utf-8")
    assert " DEBUG " in log  # the log really was at DEBUG
    stack_log = config_home.state_dir / "demo-stack.log"  # only the demo command writes one
    places = {
        "the screen": "\n".join(terminal.screens),
        "tail's stdout": b"".join(tail_out).decode(),
        "tail's stderr": tail_err,
        "the log file": log,
        "demo-stack.log": stack_log.read_text() if stack_log.exists() else "",
    }
    assert len(tokens) >= 2  # one for the dashboard, one for tail at least
    for where, text in places.items():
        assert stack.api_key not in text, f"the API key is in {where}"
        assert not EMULATOR_KEY.search(text), f"an API key is in {where}"
        for token in tokens:
            assert token not in text, f"a listener token is in {where}"
        assert not JWT.search(text), f"a JWT is in {where}"


@pytest.mark.timeout(120)
async def test_the_demo_keeps_its_key_and_tokens_off_the_screen_and_out_of_its_logs(
    config_home: ConfigHome, tmux_app: TmuxFactory
) -> None:
    """``anyreach-tui demo`` is what writes demo-stack.log: its stack runs in a child
    whose key only the dashboard gets (through its environment, never argv)."""
    app = tmux_app(config_home.env(ANYREACH_LOG__LEVEL="DEBUG", TERM="xterm-256color"))
    pid = app.start("demo", "--calls", "1", "--tone", "--no-audio")
    screens: list[str] = []

    def settled_line_shown() -> bool:
        screens.append(app.tmux("capture-pane", "-p", "-e"))
        text = shown(screens[-1])
        return "LIVE" in text and bool(re.search(r"\d\d:\d\d:\d\d (AGENT|CALLER) ", text))

    deadline = time.monotonic() + 90
    while not settled_line_shown():
        assert not process_gone(pid), shown(app.screen())
        assert time.monotonic() < deadline, shown(app.screen())
        await asyncio.sleep(0.3)
    app.tmux("send-keys", "q")
    deadline = time.monotonic() + 10
    while not process_gone(pid):
        assert time.monotonic() < deadline, "the demo did not quit on q"
        await asyncio.sleep(0.1)

    log = (config_home.state_dir / "anyreach-tui.log").read_text(encoding="utf-8")
    stack_log = (config_home.state_dir / "demo-stack.log").read_text(encoding="utf-8")
    assert " DEBUG " in log and "api_url: http://" in stack_log  # the logs we meant
    for where, text in {
        "the screen": "\n".join(screens),
        "the log file": log,
        "demo-stack.log": stack_log,
    }.items():
        assert not EMULATOR_KEY.search(text), f"an API key is in {where}"
        assert not JWT.search(text), f"a JWT is in {where}"

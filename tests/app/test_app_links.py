"""`o` opens the focused call in the web app, `y` copies its id and link by OSC 52 (Pilot).

What the app writes to the terminal is captured at the driver, where Textual's
``copy_to_clipboard`` writes ``ESC ] 52 ; c ; <base64> BEL``.  The real dashboard in
tmux is tests/integration/test_links_tmux.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.fixtures.app import make_app, screen_text, scripted_dashboard
from tui.app import links
from tui.app.app import DashboardApp, binding_ids
from tui.config import ConfigError, load_settings
from tui.config.settings import DEFAULT_CONVERSATION_URL, Settings
from tui.monitor.model import ConversationInfo, Dashboard

pytestmark = pytest.mark.timeout(60)

OSC52 = re.compile(r"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07")
HOSTILE_ID = "c]1\x1b]0;pwned\x07\n\x1b[2J\u202eX/../y z"
BASE = "https://app.anyreach.ai/conversations/"
DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


class Terminal:
    """Everything the app writes through its driver, while the test runs."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def clipboard(self) -> list[str]:
        """The texts of every OSC 52 the app wrote, decoded."""
        return [
            base64.b64decode(payload, validate=True).decode()
            for payload in OSC52.findall("".join(self.writes))
        ]

    def osc52_writes(self) -> list[str]:
        return [w for w in self.writes if "\x1b]52;" in w]


def capture(app: DashboardApp, monkeypatch: pytest.MonkeyPatch) -> Terminal:
    terminal = Terminal()
    driver = app._driver
    assert driver is not None
    original = driver.write

    def write(data: str) -> None:
        terminal.writes.append(data)
        original(data)

    monkeypatch.setattr(driver, "write", write)
    return terminal


def notices(app: DashboardApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def one_call(conversation_id: str, **kwargs: object) -> Dashboard:
    dashboard = Dashboard(**kwargs)  # type: ignore[arg-type]
    dashboard.add_call(conversation_id, ConversationInfo(conversation_id, user_id="+15550001"))
    return dashboard


@pytest.fixture
def local_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """A desktop session: a display, not over SSH."""
    for name in DISPLAY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """URLs handed to the browser launcher (nothing is launched)."""
    urls: list[str] = []

    async def fake_open(url: str) -> bool:
        urls.append(url)
        return True

    monkeypatch.setattr(links, "open_in_browser", fake_open)
    yield urls


# -- y: OSC 52 ----------------------------------------------------------------------


async def test_y_writes_osc52_that_decodes_to_the_id_and_the_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(scripted_dashboard(3))
    async with app.run_test(size=(120, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("y")
        await pilot.pause()
        assert terminal.clipboard() == [f"conv_01 {BASE}conv_01"]
        [write] = terminal.osc52_writes()  # one sequence, nothing else in that write
        assert OSC52.fullmatch(write)
        await pilot.press("tab", "y")
        await pilot.pause()
        assert terminal.clipboard()[-1] == f"conv_02 {BASE}conv_02"
        assert f"Sent to your terminal's clipboard (OSC 52): conv_02 {BASE}conv_02" in notices(app)


async def test_a_hostile_id_is_data_in_the_osc52_payload_and_encoded_in_the_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(one_call(HOSTILE_ID))
    async with app.run_test(size=(120, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("y")
        await pilot.pause()
        [write] = terminal.osc52_writes()
        # Exactly one ESC (the introducer) and one BEL (the terminator): base64 is data.
        assert write.count("\x1b") == 1 and write.count("\x07") == 1
        assert OSC52.fullmatch(write)
        [copied] = terminal.clipboard()
        # Not pasteable as text, so the id is left out; the link carries it encoded.
        assert copied == links.conversation_url(DEFAULT_CONVERSATION_URL, HOSTILE_ID)
        assert copied.startswith(BASE) and "/" not in copied[len(BASE) :]
        assert copied.isascii() and copied.isprintable() and " " not in copied
        assert unquote(copied[len(BASE) :]) == HOSTILE_ID  # nothing lost, only encoded
        assert "%1B%5D0%3Bpwned%07%0A" in copied
        assert any("Sent the link only" in notice for notice in notices(app))


async def test_an_id_with_a_bracket_is_plain_text_and_copied_with_its_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(one_call("conv]7"))
    async with app.run_test(size=(120, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("y")
        await pilot.pause()
        assert terminal.clipboard() == [f"conv]7 {BASE}conv%5D7"]


# -- o: a local browser, or words --------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "words"),
    [
        ({"SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22", "DISPLAY": ":0"}, "over SSH"),
        ({"SSH_TTY": "/dev/pts/3"}, "over SSH"),
        ({}, "no graphical display"),
    ],
)
async def test_o_without_a_local_browser_says_so_and_tries_nothing(
    monkeypatch: pytest.MonkeyPatch, opened: list[str], environment: dict[str, str], words: str
) -> None:
    for name in DISPLAY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = make_app(scripted_dashboard(2))
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await pilot.press("o")
        await pilot.pause(0.3)
        assert opened == []
        [notice] = notices(app)
        assert notice.startswith(f"No local browser: {words}")
        assert f"Press y to copy the link: {BASE}conv_01" in notice
        assert "No local browser" in screen_text(app)


async def test_o_with_a_browser_opens_exactly_the_templated_url(
    local_display: None, opened: list[str]
) -> None:
    template = "https://eu.app.example/org/acme/c/{conversation_id}?tab=transcript"
    dashboard = one_call("conv_9")
    dashboard.add_call(HOSTILE_ID)
    app = DashboardApp(dashboard, None, conversation_url=template)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause(0.3)
        assert opened == ["https://eu.app.example/org/acme/c/conv_9?tab=transcript"]
        await pilot.press("tab", "o")
        await pilot.pause(0.3)
        encoded = links.conversation_url(template, HOSTILE_ID)
        assert opened[-1] == encoded and encoded.isascii() and encoded.isprintable()
        assert "\x1b" not in opened[-1] and "\n" not in opened[-1]
        assert any(n.startswith("Opened in your browser: https://eu.app") for n in notices(app))


async def test_o_runs_webbrowser_in_a_child_detached_from_the_terminal(
    local_display: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real launcher: Python's webbrowser picks $BROWSER, a fake that records what it got."""
    record = tmp_path / "browser.txt"
    fake = tmp_path / "fake-browser"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "print('browser chatter on stdout'); print('and on stderr', file=sys.stderr)\n"
        "import json\n"
        f"open({str(record)!r}, 'w').write(json.dumps([sys.argv[1:], os.environ.get('TERM'),"
        " os.isatty(0), os.isatty(1), os.isatty(2)]))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(fake))
    monkeypatch.setenv("PATH", str(tmp_path))  # only the fake: no real browser is started
    monkeypatch.setenv("TERM", "xterm-256color")
    app = make_app(one_call("conv_5"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        for _ in range(200):
            if record.exists() and record.read_text():
                break
            await asyncio.sleep(0.05)
        argv, term, *ttys = json.loads(record.read_text())
        assert argv == [f"{BASE}conv_5"]
        assert term is None and ttys == [False, False, False]  # no console browser, no tty
        for _ in range(100):
            if any(n.startswith("Opened in your browser") for n in notices(app)):
                break
            await pilot.pause(0.05)
        assert f"Opened in your browser: {BASE}conv_5" in notices(app)


async def test_a_browser_that_fails_is_said_in_words(
    local_display: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROWSER", "/bin/false")
    monkeypatch.setenv("PATH", str(tmp_path))  # no other browser for webbrowser to find
    app = make_app(one_call("conv_5"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        for _ in range(200):
            if notices(app):
                break
            await pilot.pause(0.05)
        assert notices(app) == [
            f"No browser could be started here. Press y to copy the link: {BASE}conv_5"
        ]


def test_no_local_browser_rules() -> None:
    assert links.no_local_browser({"DISPLAY": ":0"}, "linux") is None
    assert links.no_local_browser({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert links.no_local_browser({}, "darwin") is None
    assert links.no_local_browser({}, "win32") is None
    assert links.no_local_browser({}, "linux") is not None
    assert links.no_local_browser({}, "freebsd14") is not None
    for ssh in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"):
        for platform in ("linux", "darwin"):
            why = links.no_local_browser({ssh: "x", "DISPLAY": ":0"}, platform)
            assert why is not None and "SSH" in why


# -- bindings: ids, help, palette, keys, wallboard ---------------------------------


def test_the_bindings_have_ids() -> None:
    assert {"link.open", "link.copy"} <= set(binding_ids())


async def test_help_lists_o_and_y() -> None:
    app = make_app(scripted_dashboard(1))
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert any(re.search(r"\bo\s+Open in web app", line) for line in lines)
        assert any(re.search(r"\by\s+Copy id and link", line) for line in lines)


async def test_the_palette_copies_and_opens(
    monkeypatch: pytest.MonkeyPatch, local_display: None, opened: list[str]
) -> None:
    app = make_app(scripted_dashboard(2))
    async with app.run_test(size=(140, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Copy conversation id")
        await pilot.pause(0.5)
        assert "Copy conversation id and link" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert terminal.clipboard() == [f"conv_01 {BASE}conv_01"]
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Open in the Anyreach")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert opened == [f"{BASE}conv_01"]


async def test_the_keys_are_remappable_and_the_words_name_the_new_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in DISPLAY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSH_TTY", "/dev/pts/1")
    app = DashboardApp(scripted_dashboard(1), None, keymap={"link.copy": "c", "link.open": "b"})
    async with app.run_test(size=(160, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("y", "o")
        await pilot.pause()
        assert terminal.clipboard() == [] and notices(app) == []
        await pilot.press("c")
        await pilot.pause()
        assert terminal.clipboard() == [f"conv_01 {BASE}conv_01"]
        await pilot.press("b")
        await pilot.pause()
        assert any("Press c to copy the link" in notice for notice in notices(app))


async def test_the_wallboard_neither_opens_nor_copies(
    monkeypatch: pytest.MonkeyPatch, local_display: None, opened: list[str]
) -> None:
    app = make_app(scripted_dashboard(2, wallboard=True))
    async with app.run_test(size=(140, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("o", "y")
        await pilot.pause(0.3)
        for action in ("open_link", "copy_link"):  # the palette's way: run_action
            await app.dashboard_screen.run_action(action)
        await pilot.pause(0.3)
        assert opened == [] and terminal.clipboard() == [] and notices(app) == []
        await pilot.press("w", "y")  # back to the desk: copying works again
        await pilot.pause()
        assert terminal.clipboard() == [f"conv_01 {BASE}conv_01"]


async def test_with_no_call_focused_it_says_so(
    monkeypatch: pytest.MonkeyPatch, local_display: None, opened: list[str]
) -> None:
    app = make_app(Dashboard())
    async with app.run_test(size=(120, 40)) as pilot:
        terminal = capture(app, monkeypatch)
        await pilot.press("y", "o")
        await pilot.pause()
        assert terminal.clipboard() == [] and opened == []
        assert notices(app) == ["No call is focused.", "No call is focused."]


# -- the [links] section -----------------------------------------------------------


def test_the_template_comes_from_the_links_section(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[links]\nconversation_url = "https://x.example/c/{conversation_id}"\n')
    assert load_settings(config).links.conversation_url == "https://x.example/c/{conversation_id}"
    assert (
        Settings().links.conversation_url
        == DEFAULT_CONVERSATION_URL
        == f"{BASE}{{conversation_id}}"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("https://x.example/c/", "must contain {conversation_id}"),
        ("javascript:alert(1)//{conversation_id}", "http:// or https://"),
        ("https://x.example/{org}/{conversation_id}", "the only placeholder"),
        ("https://x.example/c/{conversation_id} x", "spaces or control characters"),
    ],
)
def test_a_bad_template_stops_the_start_naming_key_and_line(
    tmp_path: Path, template: str, problem: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[ui]\nwallboard = false\n\n[links]\nconversation_url = "{template}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "links.conversation_url" in message and "line 5" in message and problem in message


def test_the_app_refuses_a_template_without_the_id() -> None:
    with pytest.raises(ValueError, match="conversation_id"):
        DashboardApp(Dashboard(), None, conversation_url="https://x.example/")


def test_the_dashboard_command_gives_the_app_the_configured_template(tmp_path: Path) -> None:
    from tui.commands.dashboard import build_dashboard

    settings = Settings(
        api_key="ak_test",  # type: ignore[arg-type]
        audio={"no_audio": True},  # type: ignore[arg-type]
        transcripts={"enabled": False, "dir": tmp_path},  # type: ignore[arg-type]
        links={"conversation_url": "https://x.example/c/{conversation_id}"},  # type: ignore[arg-type]
    )
    parts = build_dashboard(settings)
    try:
        assert parts.app.conversation_url == "https://x.example/c/{conversation_id}"
    finally:
        parts.close_audio()

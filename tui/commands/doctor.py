"""``anyreach-tui doctor``: check everything the dashboard needs, and say how to fix it.

One line per check (``ok``, ``PROBLEM``, ``skipped`` or ``note``), each problem
followed by how to fix it:

- **configuration**: the file (there or not; it parses, with the loader's own
  key-and-line messages; a file holding ``api_key`` readable by others is a
  problem) and an API key from somewhere;
- **API**: the discovery call (the active conversations) answers;
- **API key**: it is accepted, and for one live call (if any) it mints a
  listener token, which must be hidden and subscribe-only (the token guard);
  the token is only used for the next check and then dropped, never shown;
- **LiveKit room**: with that token the listen session joins the call's room
  and leaves again, within the session's own bounds (only with a live call);
- **audio**: the output device opens and plays 100 ms of silence (skipped with
  ``--no-audio``);
- **terminal**: ``TERM`` set and not ``dumb``, colours (``COLORTERM``, ``TERM``,
  ``NO_COLOR``), size at least 80x24; over SSH, a note that audio plays on the
  remote machine.

Exit status 0 only if every check passes; otherwise the status of the first
problem (2 configuration, 6 API unreachable, 3 key, 7 room, 1 audio or terminal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

from tui.anyreach import (
    AnyreachClient,
    AnyreachError,
    Conversation,
    ConversationStatus,
    ErrorKind,
    ListenerGrant,
    RetryPolicy,
)
from tui.commands.ending import leave
from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.commands.tail import exit_code_for
from tui.config import ConfigError, Settings, add_config_arguments, settings_from_args
from tui.core import paths
from tui.core.logs import configure_logging

log = logging.getLogger(__name__)

Status = Literal["ok", "PROBLEM", "skipped", "note"]
EXIT_CODES = (
    ExitCode.OK,
    ExitCode.FAILURE,
    ExitCode.BAD_CONFIG,
    ExitCode.AUTH,
    ExitCode.API_UNAVAILABLE,
    ExitCode.NO_ROOM,
)
DOCTOR_FLAGS = ("--api-url", "--org-id", "--device", "--no-audio")
# One HTTP attempt, and the whole of one API call with its retries.
API_TIMEOUT_S = 5.0
API_RETRY = RetryPolicy(max_retries=1, base_delay=0.5, max_delay=1.0, budget=12.0)
MAX_MINT_TRIES = 3  # live calls tried for a listener token (one may end meanwhile)
# The session has its own 15 s connect and 3 s end bounds; these only guard them.
ROOM_BOUND_S = 20.0
END_BOUND_S = 5.0
SILENCE_SAMPLES = 4_800  # 100 ms at 48 kHz
AUDIO_BOUND_S = 6.0  # a pulse-backed stream may pause about 2 s right after opening
MIN_COLUMNS, MIN_LINES = 80, 24
SCOPES = "conversations:read_sensitive or conversations:manage"


@dataclass
class Check:
    name: str
    status: Status
    found: str
    fix: str | None = None
    code: ExitCode = ExitCode.FAILURE  # the exit status, when this is a problem

    @property
    def failed(self) -> bool:
        return self.status == "PROBLEM"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(
        self,
        name: str,
        status: Status,
        found: str,
        fix: str | None = None,
        code: ExitCode = ExitCode.FAILURE,
    ) -> Check:
        check = Check(name, status, found, fix, code)
        self.checks.append(check)
        return check

    @property
    def exit_code(self) -> ExitCode:
        return next((c.code for c in self.checks if c.failed), ExitCode.OK)

    def render(self) -> str:
        name_width = max((len(c.name) for c in self.checks), default=0)
        lines = []
        for check in self.checks:
            lines.append(f"{check.status:<8} {check.name:<{name_width}}  {check.found}")
            if check.failed and check.fix:
                lines.append(f"{'':<8} {'':<{name_width}}  how to fix: {check.fix}")
        problems = sum(c.failed for c in self.checks)
        lines.append("")
        lines.append(
            "All checks passed."
            if not problems
            else f"{problems} problem{'s' if problems > 1 else ''} found "
            f"(exit status {int(self.exit_code)})."
        )
        return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui doctor",
        description=(
            "Check the configuration, the Anyreach API and key, a live call's LiveKit\n"
            "room, the audio device and the terminal; each problem says how to fix it."
        ),
        epilog=(
            "With a live call, a listener token is minted for it and the room joined\n"
            "briefly (hidden, subscribe-only), then left.  Nothing is played but silence.\n\n"
            + exit_codes_help(EXIT_CODES)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser, DOCTOR_FLAGS)
    return parser


# -- configuration ---------------------------------------------------------------------


def check_configuration(args: argparse.Namespace, report: Report) -> Settings | None:
    from tui.app.app import binding_ids, theme_names  # the names [keys] and ui.theme may use

    try:
        settings = settings_from_args(args, binding_ids=binding_ids(), themes=theme_names())
    except ConfigError as error:
        report.add(
            "configuration",
            "PROBLEM",
            str(error).replace("\n", "\n" + " " * 25),
            "fix that key in the file or variable named (config.example.toml documents every key)",
            ExitCode.BAD_CONFIG,
        )
        return None
    path = settings.config_path
    if path is None:
        report.add(
            "configuration",
            "ok",
            f"no config file at {paths.config_file()} (optional: environment and flags only)",
        )
    elif settings.warnings:
        mode = path.stat().st_mode & 0o777
        report.add(
            "configuration",
            "PROBLEM",
            f"{path} holds api_key and other users can read it (mode {mode:03o})",
            f"chmod 600 {path}",
            ExitCode.BAD_CONFIG,
        )
    else:
        mode = path.stat().st_mode & 0o777
        report.add("configuration", "ok", f"{path} parses (mode {mode:03o})")
    if settings.api_key is None:
        report.add(
            "API key",
            "PROBLEM",
            "no API key is set",
            "export ANYREACH_API_KEY=ak_... or set api_key in "
            f"{path or paths.config_file()} (and chmod 600 it)",
            ExitCode.BAD_CONFIG,
        )
    return settings


def _key_source(settings: Settings) -> str:
    if any(name.upper() == "ANYREACH_API_KEY" for name in os.environ):
        return "the key from ANYREACH_API_KEY"
    return f"the key in {settings.config_path}"


# -- API, key, room --------------------------------------------------------------------


async def check_api_key_room(settings: Settings, report: Report) -> None:
    assert settings.api_key is not None
    who = _key_source(settings)
    try:
        client = AnyreachClient(
            settings.api_url,
            settings.api_key.get_secret_value(),
            settings.org_id,
            timeout=API_TIMEOUT_S,
            retries=API_RETRY,
        )
    except AnyreachError as error:  # a pat_ key without its organization
        report.add("API key", "PROBLEM", error.short, error.message, ExitCode.AUTH)
        return
    async with client:
        try:
            active = await client.active_conversations()
        except AnyreachError as error:
            _listing_failed(settings, who, error, report)
            return
        calls = f"{len(active)} live call{'' if len(active) == 1 else 's'}"
        report.add("API", "ok", f"{settings.api_url} answered: {calls}")
        grant = await _mint(client, who, active, report)
    if grant is None:
        if not active:
            report.add("LiveKit room", "skipped", "no live call to test the room with")
        elif not report.checks[-1].failed:
            report.add("LiveKit room", "skipped", "no live call had a room to test with")
        else:
            report.add("LiveKit room", "skipped", "needs a listener token (see above)")
        return
    await _join(grant, report)


def _listing_failed(settings: Settings, who: str, error: AnyreachError, report: Report) -> None:
    if error.kind is ErrorKind.UNAVAILABLE:
        report.add(
            "API",
            "PROBLEM",
            f"{settings.api_url} does not answer: {error.message}",
            "check api_url (ANYREACH_API_URL, --api-url) and the network or proxy",
            ExitCode.API_UNAVAILABLE,
        )
        report.add("API key", "skipped", "needs the API")
        report.add("LiveKit room", "skipped", "needs the API")
        return
    if error.kind in (ErrorKind.KEY_REJECTED, ErrorKind.NO_SCOPE):
        report.add("API", "ok", f"{settings.api_url} answered")
        found = (
            f"{who} was rejected (401)"
            if error.kind is ErrorKind.KEY_REJECTED
            else f"{who} may not list conversations (403)"
        )
        report.add("API key", "PROBLEM", found, error.message, exit_code_for(error))
        report.add("LiveKit room", "skipped", "needs a valid key")
        return
    report.add(
        "API",
        "PROBLEM",
        f"{settings.api_url}: {error.message}",
        "check api_url: it should be the Anyreach API (https://api.anyreach.ai)",
        exit_code_for(error),
    )
    report.add("LiveKit room", "skipped", "needs the API")


def _candidates(active: Sequence[Conversation]) -> list[Conversation]:
    """Calls in progress first: a triggered or ringing call may have no room yet."""
    in_progress = [c for c in active if c.status == ConversationStatus.IN_PROGRESS]
    return (in_progress + [c for c in active if c not in in_progress])[:MAX_MINT_TRIES]


async def _mint(
    client: AnyreachClient, who: str, active: Sequence[Conversation], report: Report
) -> ListenerGrant | None:
    from tui.listen import check_listener_token

    if not active:
        report.add(
            "API key",
            "ok",
            f"{who} lists conversations; no live call, so minting a listener token "
            f"({SCOPES}) was not tried",
        )
        return None
    tried = []
    for conversation in _candidates(active):
        try:
            grant = await client.listener_token(conversation.id)
        except AnyreachError as error:
            if error.kind in (ErrorKind.NOT_FOUND, ErrorKind.NOT_ACTIVE):
                tried.append(f"{conversation.id}: {error.short}")
                continue  # it ended since the list, or its room is not there yet
            fix = (
                f"give the key the {SCOPES} scope in Anyreach, or use a key that has one"
                if error.kind is ErrorKind.NO_SCOPE
                else error.message
            )
            report.add(
                "API key",
                "PROBLEM",
                f"{who} lists conversations but could not mint a listener token for "
                f"{conversation.id}: {error.short}",
                fix,
                exit_code_for(error),
            )
            return None
        refusal = check_listener_token(grant.token)
        if refusal is not None:
            report.add("API key", "PROBLEM", refusal, "ask Anyreach support", ExitCode.NO_ROOM)
            return None
        report.add(
            "API key",
            "ok",
            f"{who} minted a listener token for {conversation.id} "
            "(hidden, subscribe-only; never shown, dropped after the room check)",
        )
        return grant
    report.add(
        "API key",
        "ok",
        f"{who} lists conversations; no live call could be minted for "
        f"({'; '.join(tried)}), so the scope was not tested",
    )
    return None


async def _join(grant: ListenerGrant, report: Report) -> None:
    from tui.listen import SessionError
    from tui.monitor.follow import listen_session  # the one way sessions are opened

    session = listen_session(grant, None)  # no audio output: nothing is played
    started = time.monotonic()
    try:
        await asyncio.wait_for(session.connect(), ROOM_BOUND_S)
    except (SessionError, TimeoutError) as error:
        message = getattr(error, "message", None) or f"no answer within {ROOM_BOUND_S:g} s"
        report.add(
            "LiveKit room",
            "PROBLEM",
            f"could not join {grant.room_name} at {grant.url}: {message}",
            "the call's LiveKit server does not answer from here: check the network, a "
            "firewall or proxy (WebSocket to that URL, then WebRTC over UDP or TCP); if "
            "it persists, ask Anyreach support",
            ExitCode.NO_ROOM,
        )
    else:
        report.add(
            "LiveKit room",
            "ok",
            f"joined {grant.room_name} at {grant.url} as a hidden listener in "
            f"{time.monotonic() - started:.1f} s, and left",
        )
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.end(), END_BOUND_S)


# -- audio -----------------------------------------------------------------------------


def check_audio(settings: Settings, report: Report) -> None:
    if settings.audio.no_audio or settings.ui.wallboard:
        why = "--no-audio" if settings.audio.no_audio else "wallboard mode"
        report.add("audio", "skipped", f"audio is off ({why}): no device is opened")
        return
    from tui.audio import FRAME_BYTES, open_output_device

    device = open_output_device(settings.audio.device)
    fix = (
        "`anyreach-tui devices` lists the devices: pick one with --device NAME|INDEX "
        "([audio] device); start the sound server (PulseAudio, PipeWire) if there is "
        "none; over SSH or without sound, use --no-audio"
    )
    if not device.available:
        report.add("audio", "PROBLEM", device.notice or "no audio device", fix)
        device.close()
        return
    played = 0

    def silence(samples: int) -> bytes:
        nonlocal played
        played += samples
        return bytes(FRAME_BYTES * samples)

    try:
        device.set_renderer(silence)
        deadline = time.monotonic() + AUDIO_BOUND_S
        while played < SILENCE_SAMPLES and time.monotonic() < deadline:
            time.sleep(0.01)
        device.set_renderer(None)
    finally:
        device.close()
    if played < SILENCE_SAMPLES:
        report.add(
            "audio",
            "PROBLEM",
            f"{device.name} opened but played {played * 1000 // 48_000} ms of "
            f"100 ms of silence in {AUDIO_BOUND_S:g} s",
            fix,
        )
    else:
        report.add("audio", "ok", f"{device.name} opened and played 100 ms of silence")


# -- terminal --------------------------------------------------------------------------


def terminal_size() -> tuple[int, int] | None:
    """The terminal's size: of a standard stream, else ``/dev/tty``, else COLUMNS/LINES."""
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            size = os.get_terminal_size(stream.fileno())
            return size.columns, size.lines
    with contextlib.suppress(OSError):
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
        try:
            size = os.get_terminal_size(fd)
            return size.columns, size.lines
        finally:
            os.close(fd)
    with contextlib.suppress(KeyError, ValueError):
        return int(os.environ["COLUMNS"]), int(os.environ["LINES"])
    return None


def colours(environ: dict[str, str]) -> str:
    term = environ.get("TERM", "")
    if environ.get("NO_COLOR"):
        return "NO_COLOR is set: no colours (roles and focus still show by labels and borders)"
    if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "true colour (COLORTERM)"
    if "256color" in term:
        return "256 colours"
    if term == "linux":
        return "16 colours (the Linux console: --theme ansi-dark suits it)"
    return "16 colours or fewer (COLORTERM unset): --theme ansi-dark may read better"


def check_terminal(report: Report, environ: dict[str, str] | None = None) -> None:
    env = dict(os.environ if environ is None else environ)
    term = env.get("TERM", "")
    size = terminal_size()
    if not term:
        report.add(
            "terminal",
            "PROBLEM",
            "TERM is not set: the dashboard cannot tell what the terminal can do",
            "export TERM=xterm-256color (or your terminal's own name)",
        )
    elif term == "dumb":
        report.add(
            "terminal",
            "PROBLEM",
            "TERM=dumb: a terminal that cannot move the cursor cannot show the dashboard",
            "run it in a real terminal emulator, or export TERM=xterm-256color",
        )
    elif size is None:
        report.add(
            "terminal",
            "PROBLEM",
            f"TERM={term}, but this is not running in a terminal (size unknown)",
            "run anyreach-tui in a terminal window (headless: anyreach-tui tail)",
        )
    elif size[0] < MIN_COLUMNS or size[1] < MIN_LINES:
        report.add(
            "terminal",
            "PROBLEM",
            f"TERM={term}, {colours(env)}; {size[0]}x{size[1]} is smaller than "
            f"{MIN_COLUMNS}x{MIN_LINES}",
            "make the window larger (or the font smaller); one zoomed pane needs less",
        )
    else:
        report.add("terminal", "ok", f"TERM={term}, {colours(env)}, {size[0]}x{size[1]}")
    if any(env.get(name) for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
        report.add(
            "terminal",
            "note",
            "over SSH: audio would play on this (the remote) machine, not where you sit; "
            "use --no-audio here, or run anyreach-tui on your own machine",
        )


# -- the command -----------------------------------------------------------------------


async def diagnose(args: argparse.Namespace) -> Report:
    report = Report()
    settings = check_configuration(args, report)
    if settings is None:
        configure_logging()
        for name in ("API", "LiveKit room", "audio"):
            report.add(name, "skipped", "needs a usable configuration")
    else:
        configure_logging(getattr(logging, settings.log.level), settings.log.file)
        if settings.api_key is not None:
            await check_api_key_room(settings, report)
        else:
            for name in ("API", "LiveKit room"):
                report.add(name, "skipped", "needs an API key")
        check_audio(settings, report)
    check_terminal(report)
    return report


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run ``anyreach-tui doctor``; as the real command the process ends here (``leave``)."""
    out = stdout or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # bad arguments (2), or --help (0)
        return ExitCode.BAD_CONFIG if exit_.code else ExitCode.OK
    report = asyncio.run(diagnose(args))
    out.write(report.render())
    out.flush()
    code = report.exit_code
    if stdout is None:
        leave(code)  # LiveKit's native runtime may still be tearing the room down
    return int(code)


if __name__ == "__main__":
    main()

"""``anyreach-tui [--config PATH] [CONVERSATION_ID ...]``: the dashboard on live data.

The composition root of the dashboard: reads the configuration (file <
``ANYREACH_*`` environment < flags; keymap and theme checked against the UI's
names) and refuses a bad one with status 2 before the UI starts, then wires the
API client, the audio router, the monitor and the app.  Discovery attaches
active calls by itself; ids given here (or ``pinned`` in the config) are pinned
panes.  Logs go to a file, never the terminal.  SIGHUP (an SSH drop, a closed
terminal) and SIGTERM end every session and exit cleanly within 3.5 s, like
``q`` (``tui.commands.ending``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from tui.anyreach import AnyreachClient
from tui.app.app import DashboardApp, binding_ids, theme_names
from tui.audio import AudioRouter, open_output_device
from tui.commands.ending import (
    SIGNAL_END_GRACE_S,
    UI_SIGNALS,
    Ending,
    leave,
    terminal_alive,
    terminal_restorer,
)
from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.config import Settings, add_config_arguments, settings_or_report
from tui.core import paths
from tui.core.heap import freeze_startup_heap
from tui.core.logs import configure_logging
from tui.listen.media import favour_media_latency
from tui.monitor.alerts import AlertMatcher
from tui.monitor.audit import AuditTrail
from tui.monitor.model import Dashboard
from tui.monitor.monitor import Monitor
from tui.monitor.store import TranscriptStore

if TYPE_CHECKING:
    from textual.pilot import Pilot

log = logging.getLogger(__name__)

EXIT_CODES = (ExitCode.OK, ExitCode.FAILURE, ExitCode.BAD_CONFIG)
STARVE_ENV = "ANYREACH_TUI_TEST_STARVE_MS"  # see starve_hook: a test hook
STARVE_PERIOD_S = 0.5
# After the sessions ended, how long a lost-terminal exit lets their teardowns report.
SETTLE_S = 0.1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui",
        description=(
            "Silently monitor live Anyreach calls.  Active calls appear by themselves\n"
            "(discovery); listening is off until you press space.\n\n"
            "other commands: demo, simulate, tail, export, devices "
            "(anyreach-tui COMMAND --help)"
        ),
        epilog=(
            f"log file: {paths.log_file()} (log.file)\n"
            f"transcripts: {paths.transcripts_dir()} (transcripts.dir)\n"
            "API key: api_key in the config file (chmod 600) or ANYREACH_API_KEY;\n"
            "there is no flag for it, so it never shows in the process list.\n\n"
            + exit_codes_help(EXIT_CODES)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "conversation_ids",
        nargs="*",
        metavar="CONVERSATION_ID",
        help="conversations to pin: always shown, never retired",
    )
    add_config_arguments(parser)
    return parser


def keymap_from(settings: Settings) -> dict[str, str]:
    """Textual's keymap (binding id -> "key,key") from the ``[keys]`` section."""
    return {
        binding_id: keys if isinstance(keys, str) else ",".join(keys)
        for binding_id, keys in settings.keys.items()
    }


@dataclass
class DashboardParts:
    """What ``build_dashboard`` wired: the app, the monitor it runs, the audio router."""

    app: DashboardApp
    monitor: Monitor
    router: AudioRouter
    audit: AuditTrail | None = None

    def close_audit(self) -> None:
        """End the interval being heard ("quit") and release the audit file; never raises."""
        if self.audit is not None:
            try:
                self.audit.close("quit")
            except Exception:
                log.exception("closing the audit trail failed")

    def close_audio(self) -> None:
        """Stop PortAudio and its watchdog thread (gives fd 2 back); never raises."""
        with contextlib.suppress(Exception):
            self.router.close()
            self.router.device.close()


def build_dashboard(settings: Settings, pinned: Sequence[str] = ()) -> DashboardParts:
    """Wire client, store, alerts, audio, monitor and app from ``settings``."""
    assert settings.api_key is not None
    client = AnyreachClient(settings.api_url, settings.api_key.get_secret_value(), settings.org_id)
    dashboard = Dashboard(wallboard=settings.ui.wallboard)
    # Before the monitor subscribes: observers hear of a change in the order they
    # subscribed, so a hearing's start line is written before the router plays it.
    audit = AuditTrail(dashboard, settings.audit.file, enabled=settings.audit.enabled)
    no_audio = settings.audio.no_audio or settings.ui.wallboard
    router = AudioRouter(open_output_device(settings.audio.device, no_audio=no_audio))
    transcripts = settings.transcripts
    monitor = Monitor(
        dashboard,
        client,
        router,
        pinned=[*settings.pinned, *pinned],
        discovery=settings.discovery.enabled,
        interval_s=settings.discovery.interval_s,
        max_panes=settings.discovery.max_panes,
        retire_after_s=settings.discovery.retire_after_s,
        store=TranscriptStore(
            transcripts.dir, enabled=transcripts.enabled, fsync=transcripts.fsync
        ),
        alerts=AlertMatcher(settings.alerts.keywords) if settings.alerts.keywords else None,
        focus_on_alert=settings.alerts.focus_on_alert,
        health=settings.health.thresholds(),
    )
    app = DashboardApp(
        dashboard,
        monitor,
        keymap=keymap_from(settings),
        bell=settings.alerts.bell,
        theme=settings.ui.theme,
        notice=router.notice,
        conversation_url=settings.links.conversation_url,
    )
    router.on_notice(lambda text: show_notice_from_thread(app, text))
    return DashboardParts(app, monitor, router, audit)


def show_notice_from_thread(app: DashboardApp, text: str) -> None:
    """Device notices come from the audio watchdog thread: hand them to the UI's loop."""
    if not app.is_running:
        return  # the build-time notice is shown at start; after quitting nobody looks
    with contextlib.suppress(RuntimeError):  # it stopped in between
        app.call_from_thread(app.set_notice, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dashboard; the process ends here (``ending.leave``)."""
    leave(run(sys.argv[1:] if argv is None else list(argv), sys.stderr))


def run(argv: Sequence[str], stderr: TextIO) -> int:
    """Run the dashboard in this process and return its exit status (the demo calls this)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # bad arguments, or --help
        return int(exit_.code or 0)
    # Prints the permission warning too; keymap and theme are checked here, once.
    settings = settings_or_report(args, stderr, binding_ids=binding_ids(), themes=theme_names())
    if settings is None:
        return ExitCode.BAD_CONFIG
    if settings.api_key is None:
        where = settings.config_path or "the config file"
        print(
            f"anyreach-tui: no API key: set api_key in {where} or ANYREACH_API_KEY "
            "(or try `anyreach-tui demo`)",
            file=stderr,
        )
        return ExitCode.BAD_CONFIG
    # Before the audio device opens: PortAudio and LiveKit log from the first moment.
    log_file = configure_logging(getattr(logging, settings.log.level), settings.log.file)
    log.info("anyreach-tui starting; log file %s", log_file)
    parts = build_dashboard(settings, args.conversation_ids)
    app = parts.app
    log.info("start-up heap frozen: %d objects (tui.core.heap)", freeze_startup_heap())
    favour_media_latency()  # the heard call's frames and the device wait less for the GIL

    async def end_on_signal() -> None:
        # The signal handler hands this to the loop in whatever context the main thread
        # happened to be in; Textual needs its own (active_app): without it its shutdown
        # stalled until the deadline, or failed (LookupError) into a slow interpreter exit.
        with app._context():
            await app.end_sessions(SIGNAL_END_GRACE_S)
            if not terminal_alive():
                # Nothing to restore, and Textual's teardown would hang on it.  A session
                # just ended notes that its teardown is over a loop turn later: allow
                # that, so the exit line counts only the sessions really abandoned.
                await settle(parts.monitor, SETTLE_S)
                ending.leave_now()
            # The terminal is there: let Textual restore it (cooked mode, main screen) in
            # whatever time is left; the deadline started with the signal still bounds it.
            app.exit(0)

    restore_terminal = terminal_restorer()  # before Textual changes the terminal's mode

    def last_words() -> None:  # a forced exit: Textual did not restore the terminal
        parts.close_audit()
        log_exit(parts, ending)
        restore_terminal()

    ending = Ending(end_on_signal, signals=UI_SIGNALS, last_words=last_words)
    code = 0
    try:
        with ending:
            code = int(app.run(auto_pilot=starve_hook()) or 0)
    except OSError as error:  # the terminal went away under Textual (EIO)
        log.warning("terminal lost: %s", error)
    except Exception:
        # Say so, but still end through ``leave``: an exception left to the interpreter
        # would run its own shutdown (LiveKit's runtime, seconds), past any deadline.
        log.exception("the dashboard failed")
        traceback.print_exc(file=stderr)
        code = ExitCode.FAILURE
    finally:
        parts.close_audit()
        log_exit(parts, ending)
        parts.close_audio()
    return code


async def settle(monitor: Monitor, within: float) -> None:
    """Until no session is still open, or ``within`` seconds."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while monitor.still_open and loop.time() < until:  # noqa: ASYNC110  (the sessions' state)
        await asyncio.sleep(0.01)


def starve_hook() -> Callable[[Pilot[object]], Coroutine[Any, Any, None]] | None:
    """TEST HOOK (tests/integration/test_teardown.py): with ANYREACH_TUI_TEST_STARVE_MS
    set (e.g. "400"), once the app is mounted a loop callback blocks the event loop
    with ``time.sleep`` for that many ms every 0.5 s, to prove the exit holds on a
    starved loop; unset (always, outside tests) it returns None and nothing runs."""
    value = os.environ.get(STARVE_ENV)
    if not value:
        return None
    block_s = int(value) / 1000

    async def start_starving(_pilot: Pilot[object]) -> None:
        loop = asyncio.get_running_loop()
        log.warning("test hook: starving the event loop %s ms every %g s", value, STARVE_PERIOD_S)
        next_at = loop.time() + STARVE_PERIOD_S

        def burst() -> None:
            nonlocal next_at
            time.sleep(block_s)
            next_at += STARVE_PERIOD_S
            loop.call_at(max(next_at, loop.time()), burst)

        loop.call_at(next_at, burst)

    return start_starving


def log_exit(parts: DashboardParts, ending: Ending) -> None:
    still_open = parts.monitor.still_open
    log.info(
        "exiting (signal %s); sessions not ended: %d%s",
        ending.signal_name,
        len(still_open),
        f": {', '.join(still_open)}" if still_open else "",
    )


if __name__ == "__main__":
    main()

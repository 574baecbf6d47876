"""``anyreach-tui [--config PATH] [CONVERSATION_ID ...]``: the dashboard on live data.

Reads the configuration (file < ``ANYREACH_*`` environment < flags) and refuses a
bad one with status 2 before the UI starts.  Discovery attaches active calls by
itself; ids given here (or ``pinned`` in the config) are pinned panes.  Logs go
to a file, never the terminal.  SIGHUP (an SSH drop, a closed terminal) and
SIGTERM end every session within 3.5 s and exit cleanly, like ``q``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from tui.app.app import DashboardApp
from tui.config import (
    EXIT_BAD_CONFIG,
    Settings,
    add_config_arguments,
    settings_or_report,
)
from tui.core import paths
from tui.monitor.monitor import Monitor
from tui.monitor.model import Dashboard

log = logging.getLogger(__name__)

# After SIGHUP/SIGTERM sessions get this long to end; Textual then restores the
# terminal (if there still is one) until the deadline below.
SIGNAL_END_GRACE_S = 2.5
# After a signal the process is gone by then, whatever the terminal does: when the
# terminal has been closed, Textual's teardown can hang on it forever.
EXIT_DEADLINE_S = 3.2
EXIT_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


class LiveDashboardApp(DashboardApp):
    """The dashboard with the live monitor, config key bindings, the bell and signals."""

    def __init__(
        self,
        dashboard: Dashboard,
        monitor: Monitor,
        *,
        keymap: dict[str, str] | None = None,
        bell_enabled: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(dashboard, monitor, **kwargs)  # type: ignore[arg-type]
        self._keymap = keymap or {}
        self.bell_enabled = bell_enabled
        self.exit_signal: int | None = None

    def on_mount(self) -> None:
        # Textual runs DashboardApp.on_mount too (handlers run for each class of the MRO):
        # calling super() here would push a second screen.
        if self._keymap:
            self.set_keymap(self._keymap)
        loop = asyncio.get_running_loop()
        for signum in EXIT_SIGNALS:
            loop.add_signal_handler(signum, self._on_exit_signal, signum)

    def _on_exit_signal(self, signum: int) -> None:
        # The terminal may be gone (SIGHUP): end the sessions without waiting for it.
        log.info("received %s: ending every session", signal.Signals(signum).name)
        if self.exit_signal is not None:
            return  # already ending
        watchdog = threading.Timer(EXIT_DEADLINE_S, self._exit_now)  # a backstop
        watchdog.daemon = True
        watchdog.start()
        self.exit_signal = signum
        self.run_worker(self._quit_on_signal(), group="shutdown", exit_on_error=False)

    async def _quit_on_signal(self) -> None:
        if self.monitor is not None:
            await self.monitor.aclose(SIGNAL_END_GRACE_S)
        if not _terminal_alive():
            self._exit_now()  # nothing to restore, and Textual's teardown would hang on it
        # The terminal is there: let Textual restore it (cooked mode, main screen) in
        # whatever time is left; the watchdog started with the signal still bounds it.
        self.exit(0)

    def _exit_now(self) -> None:
        """The watchdog: sessions have had their grace; leave without the terminal."""
        log.info("leaving without waiting for the terminal")
        log_exit(self)
        _finish(0)

    def bell(self) -> None:
        if self.bell_enabled and not self.dashboard.wallboard:
            super().bell()


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
            "there is no flag for it, so it never shows in the process list."
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


def binding_ids() -> list[str]:
    """Every remappable binding id of the dashboard, in the order of its bindings."""
    from textual.binding import Binding

    from tui.app.app import DashboardScreen

    return [b.id for b in DashboardScreen.BINDINGS if isinstance(b, Binding) and b.id]


def unknown_binding_ids(settings: Settings) -> str | None:
    """A message naming each ``[keys]`` entry that is no binding id, with its line."""
    from tui.config.loader import find_key_line

    known = set(binding_ids())
    problems = []
    text = None
    if settings.config_path is not None:
        text = settings.config_path.read_text(errors="replace")
    for binding_id in settings.keys:
        if binding_id in known:
            continue
        line = find_key_line(text, ("keys", binding_id)) if text else None
        where = f" ({settings.config_path}, line {line})" if line else ""
        problems.append(f'keys."{binding_id}"{where}: unknown binding id')
    if not problems:
        return None
    return "; ".join(problems) + "; known ids: " + ", ".join(sorted(known))


def unknown_theme(settings: Settings) -> str | None:
    """A message when ``ui.theme`` names no Textual theme (it would fail after start)."""
    from textual.theme import BUILTIN_THEMES

    from tui.config.loader import find_key_line

    theme = settings.ui.theme
    if not theme or theme in BUILTIN_THEMES:
        return None
    where = ""
    if settings.config_path is not None:
        line = find_key_line(settings.config_path.read_text(errors="replace"), ("ui", "theme"))
        if line:
            where = f" ({settings.config_path}, line {line})"
    return f"ui.theme{where}: unknown theme {theme!r}; one of: " + ", ".join(sorted(BUILTIN_THEMES))


def build_app(settings: Settings, pinned: Sequence[str]) -> tuple[LiveDashboardApp, Any]:
    """Wire client, store, alerts, audio, live monitor and app (returns app and router)."""
    from tui.anyreach import AnyreachClient
    from tui.audio import AudioRouter, open_output_device
    from tui.monitor.alerts import AlertMatcher
    from tui.monitor.store import TranscriptStore

    assert settings.api_key is not None
    client = AnyreachClient(settings.api_url, settings.api_key.get_secret_value(), settings.org_id)
    dashboard = Dashboard(wallboard=settings.ui.wallboard)
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
    )
    app = LiveDashboardApp(
        dashboard,
        monitor,
        keymap=keymap_from(settings),
        bell_enabled=settings.alerts.bell,
        theme=settings.ui.theme,
        notice=router.notice,
    )
    router.on_notice(lambda text: show_notice_from_thread(app, text))
    return app, router


def show_notice_from_thread(app: DashboardApp, text: str) -> None:
    """Device notices come from the audio watchdog thread: hand them to the UI's loop."""
    if not app.is_running:
        return  # the build-time notice is shown at start; after quitting nobody looks
    with contextlib.suppress(RuntimeError):  # it stopped in between
        app.call_from_thread(app.set_notice, text)


def main(argv: Sequence[str] | None = None, *, stderr: TextIO | None = None) -> int:
    """Run the dashboard; the process ends here (see ``_finish``)."""
    code = _main(sys.argv[1:] if argv is None else list(argv), stderr or sys.stderr)
    _finish(code)
    return code  # not reached


def _main(argv: list[str], stderr: TextIO) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # bad arguments, or --help
        return int(exit_.code or 0)
    settings = settings_or_report(args, stderr)  # prints the permission warning too
    if settings is None:
        return EXIT_BAD_CONFIG
    for problem in (unknown_binding_ids(settings), unknown_theme(settings)):
        if problem:
            print(f"anyreach-tui: {problem}", file=stderr)
            return EXIT_BAD_CONFIG
    if settings.api_key is None:
        where = settings.config_path or "the config file"
        print(
            f"anyreach-tui: no API key: set api_key in {where} or ANYREACH_API_KEY "
            "(or try `anyreach-tui demo`)",
            file=stderr,
        )
        return EXIT_BAD_CONFIG
    # Before the audio device opens: PortAudio and LiveKit log from the first moment.
    from tui.core.logs import configure_logging

    log_file = configure_logging(getattr(logging, settings.log.level), settings.log.file)
    log.info("anyreach-tui starting; log file %s", log_file)
    app, router = build_app(settings, args.conversation_ids)
    code = 0
    try:
        code = int(app.run() or 0)
    except OSError as error:  # the terminal went away under Textual (EIO)
        log.warning("terminal lost: %s", error)
    finally:
        log_exit(app)
        with contextlib.suppress(Exception):
            router.close()
            router.device.close()  # stops PortAudio and its watchdog, gives fd 2 back
    return code


def _terminal_alive() -> bool:
    """Whether the controlling terminal is still there (it is not after a hang-up)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def log_exit(app: LiveDashboardApp) -> None:
    monitor = app.monitor
    still_open = monitor.still_open if isinstance(monitor, Monitor) else []
    log.info("exiting (signal %s); sessions not ended: %d", app.exit_signal, len(still_open))


def _finish(code: int) -> None:
    """Flush and leave with ``os._exit``.

    LiveKit's native runtime can still be tearing a room down while the
    interpreter shuts down, and then panics, replacing a clean exit status with
    SIGABRT; every session has already ended (or timed out) at this point.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()

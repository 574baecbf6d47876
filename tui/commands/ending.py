"""How every long-running command ends: signals, a lost terminal, a bounded teardown.

- **Signals.**  SIGHUP (an SSH drop, a closed terminal) and SIGTERM, and SIGINT
  for a headless command, are handled with ``signal.signal``: Python runs the
  handler in the main thread at the next bytecode, even when the asyncio loop is
  too busy to run a callback (``loop.add_signal_handler`` would wait for it).
  The handler starts a watchdog thread with a hard deadline, then hands the
  graceful end (a coroutine the command supplies: end the sessions, close the
  UI) to the loop with ``call_soon_threadsafe``.
- **The deadline.**  ``EXIT_DEADLINE_S`` after the signal the process is gone,
  whatever the terminal or the native layer is doing: a Textual teardown can
  hang forever on a terminal that has been closed.
- **A lost terminal.**  ``terminal_alive`` tells whether ``/dev/tty`` is still
  there; without it there is nothing to restore, so a UI command leaves at once.
- **The exit guard.**  ``leave`` flushes logging and the standard streams and
  ends the process with ``os._exit``: LiveKit's native runtime can still be
  tearing a room down during interpreter shutdown and then panics, turning a
  clean exit status into SIGABRT.  Every session has ended (or timed out) by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any, NoReturn

log = logging.getLogger(__name__)

# After SIGHUP/SIGTERM sessions get this long to end; Textual then restores the
# terminal (if there still is one) until the deadline below.
SIGNAL_END_GRACE_S = 2.5
# After a signal the process is gone by then, whatever the terminal does.
EXIT_DEADLINE_S = 3.2
# A UI command gets Ctrl-C as a key; a headless one gets it as SIGINT.
UI_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGHUP, signal.SIGTERM)
HEADLESS_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], Any] | int | None


def terminal_alive() -> bool:
    """Whether the controlling terminal is still there (it is not after a hang-up)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def leave(code: int) -> NoReturn:
    """Flush logging and the standard streams, then end the process with ``os._exit``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class Ending:
    """The end of one run of a command, from outside (a signal) or at its deadline.

    ``graceful`` is the command's own end, awaited on its event loop once a
    signal arrives (the dashboard: end the sessions, then exit the app);
    ``last_words`` runs just before a forced exit (a log line, say).  Use it as
    a context manager around the run, in the main thread::

        with Ending(graceful, last_words=log_exit) as ending:
            code = app.run()
    """

    def __init__(
        self,
        graceful: Callable[[], Awaitable[object]],
        *,
        signals: Sequence[signal.Signals] = UI_SIGNALS,
        deadline: float = EXIT_DEADLINE_S,
        exit_code: int = 0,
        last_words: Callable[[], None] | None = None,
    ) -> None:
        self._graceful = graceful
        self._signals = tuple(signals)
        self.deadline = deadline
        self.exit_code = exit_code
        self._last_words = last_words
        self._previous: dict[signal.Signals, _Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self.signum: signal.Signals | None = None  # the signal that started the end

    @property
    def signal_name(self) -> str | None:
        return self.signum.name if self.signum is not None else None

    def install(self) -> None:
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """Give the signals back (a watchdog already started keeps running)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def __enter__(self) -> Ending:
        self.install()
        return self

    def __exit__(self, *_: object) -> None:
        self.uninstall()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # The main thread, between two bytecodes of whatever it was running.
        if self.signum is not None:
            return  # already ending
        self.signum = signal.Signals(signum)
        log.info("received %s: ending every session", self.signum.name)
        watchdog = threading.Thread(target=self._watchdog, name="exit-deadline", daemon=True)
        watchdog.start()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # before the loop started or after it stopped: nothing to end
            self.leave_now()
        loop.call_soon_threadsafe(self._start_graceful)

    def _watchdog(self) -> None:
        threading.Event().wait(self.deadline)
        log.info("exit deadline (%.1f s after %s) reached", self.deadline, self.signal_name)
        self.leave_now()

    def _start_graceful(self) -> None:
        self._task = asyncio.ensure_future(self._run_graceful())

    async def _run_graceful(self) -> None:
        try:
            await self._graceful()
        except Exception:
            log.exception("ending after %s failed; the deadline still holds", self.signal_name)

    def leave_now(self) -> NoReturn:
        """Leave at once with ``exit_code``, without waiting for the terminal or the loop."""
        log.info("leaving without waiting for the terminal")
        if self._last_words is not None:
            with contextlib.suppress(Exception):
                self._last_words()
        leave(self.exit_code)

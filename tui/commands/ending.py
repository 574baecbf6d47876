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
  hang forever on a terminal that has been closed, and on a starved loop it
  gets only what is left of the deadline.  The forced exit itself cannot hang:
  its last log line and the flushes get ``FORCED_FLUSH_S`` in a thread of their
  own (a lock held by the stuck main thread, a terminal that stopped reading),
  then ``os._exit`` runs regardless.
- **A lost terminal.**  ``terminal_alive`` tells whether ``/dev/tty`` is still
  there; without it there is nothing to restore, so a UI command leaves at once.
- **The backstop.**  The watchdog is Python and needs the GIL to wake; a
  ``faulthandler`` timer (a C thread) ends the process ``BACKSTOP_S`` after the
  deadline if it has not, with every thread's stack in the log.
- **The exit guard.**  ``leave`` flushes logging and the standard streams and
  ends the process with ``os._exit``: LiveKit's native runtime can still be
  tearing a room down during interpreter shutdown and then panics, turning a
  clean exit status into SIGABRT.  Every session has ended (or timed out) by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import termios
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

log = logging.getLogger(__name__)

# After SIGHUP/SIGTERM sessions get this long to end; Textual then restores the
# terminal (if there still is one) until the deadline below.
SIGNAL_END_GRACE_S = 2.5
# After a signal the process is gone by then, whatever the terminal does: with the
# watchdog's own lateness on a loaded machine, FORCED_FLUSH_S and the kernel's
# teardown, still within the promised 3.5 s (measured: 3.1-3.3 s on a starved loop).
EXIT_DEADLINE_S = 3.0
# A forced exit waits at most this long for its last words and the flushes.
FORCED_FLUSH_S = 0.15
# The watchdog is a Python thread: it needs the GIL to wake, which a busy process
# (native callbacks from many threads) can keep from it for most of a second.  This
# long after the deadline faulthandler's own C thread, which needs no GIL, writes
# every thread's stack to the log and ends the process (status 1).
BACKSTOP_S = 0.2
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


# What a full-screen UI turns on and a forced exit turns off again: mouse reports,
# bracketed paste, focus events, the Kitty keyboard protocol; line wrap and the
# cursor back; the main screen.
_TERMINAL_RESET = (
    b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1015l\x1b[?1006l"
    b"\x1b[?2004l\x1b[?1004l\x1b[<u\x1b[?7h\x1b[?1049l\x1b[?25h"
)


def terminal_restorer() -> Callable[[], None]:
    """Save the terminal's mode now (before the UI starts); the returned function puts
    it back at once, for an exit that cannot wait for the UI's own teardown.  It never
    blocks (a terminal that stopped reading loses the escape codes) and never raises."""
    saved: list[Any] | None = None
    with contextlib.suppress(Exception):
        if os.isatty(sys.__stdin__.fileno()):  # type: ignore[union-attr]
            saved = termios.tcgetattr(sys.__stdin__.fileno())  # type: ignore[union-attr]

    def restore() -> None:
        if saved is None:
            return
        with contextlib.suppress(OSError):
            fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                with contextlib.suppress(OSError, termios.error):
                    os.write(fd, _TERMINAL_RESET)
                with contextlib.suppress(termios.error):
                    termios.tcsetattr(fd, termios.TCSANOW, saved)
            finally:
                os.close(fd)

    return restore


def _arm_backstop(after: float) -> None:
    """``faulthandler``'s watchdog: dump every thread's stack and ``_exit(1)`` after
    ``after`` seconds unless the process is gone by then.  Never raises."""
    with contextlib.suppress(Exception):
        global _backstop_file
        if _backstop_file is None:
            # Its own file object: the logging handler's is closed by the exit's flush.
            path = next(
                (
                    h.baseFilename
                    for h in logging.getLogger().handlers
                    if isinstance(h, logging.FileHandler)
                ),
                os.devnull,
            )
            _backstop_file = open(path, "a")  # kept open: the timer writes to it at the end
        faulthandler.dump_traceback_later(after, exit=True, file=_backstop_file)


_backstop_file: TextIO | None = None


def _flush_all(last_words: Callable[[], None] | None = None) -> None:
    if last_words is not None:
        with contextlib.suppress(Exception):
            last_words()
    with contextlib.suppress(Exception):
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def leave(
    code: int, *, last_words: Callable[[], None] | None = None, within: float | None = None
) -> NoReturn:
    """Run ``last_words``, flush logging and the standard streams, then ``os._exit``.

    With ``within`` (a forced exit) that work runs in a daemon thread and gets at
    most ``within`` seconds: nothing can hold the exit.
    """
    if within is None:
        _flush_all(last_words)
    else:
        flusher = threading.Thread(
            target=_flush_all, args=(last_words,), name="exit-flush", daemon=True
        )
        flusher.start()
        flusher.join(within)
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
        _arm_backstop(self.deadline + BACKSTOP_S)
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
        self.leave_now(f"exit deadline ({self.deadline:.1f} s after {self.signal_name}) reached")

    def _start_graceful(self) -> None:
        self._task = asyncio.ensure_future(self._run_graceful())

    async def _run_graceful(self) -> None:
        try:
            await self._graceful()
        except Exception:
            log.exception("ending after %s failed; the deadline still holds", self.signal_name)

    def leave_now(self, why: str | None = None) -> NoReturn:
        """Leave at once with ``exit_code``, without waiting for the terminal or the loop."""

        def last_words() -> None:
            if why is not None:
                log.info("%s", why)
            log.info("leaving without waiting for the terminal")
            if self._last_words is not None:
                self._last_words()

        leave(self.exit_code, last_words=last_words, within=FORCED_FLUSH_S)

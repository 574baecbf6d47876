"""Keep PortAudio's ALSA/JACK chatter off the terminal.

Opening PortAudio probes JACK and every ALSA device, and those libraries print
straight to file descriptor 2 ("ALSA lib ...", "jack server is not running").
A terminal UI draws on that terminal, so while PortAudio is in use (an open
device holds it for its whole life) fd 2 points at the log file (or
/dev/null), and ALSA and JACK get error handlers that send their messages to
``logging`` instead.

Python's own stderr must not follow fd 2 there: Textual draws the screen on
``sys.__stderr__``, and ``tail`` tells the user what went wrong on
``sys.stderr``.  So before fd 2 is moved for the first time, both are pointed
at a private duplicate of the original descriptor (the terminal), which no
redirect ever touches.  Only native code writing to fd 2 itself ends up in
the log file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tui.core.logs import configured_log_file

log = logging.getLogger("tui.audio.native")

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
# The variadic tail is ignored: on the C ABIs we run on the caller cleans it up.
_ALSA_HANDLER_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_JACK_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_char_p)

# Kept alive for the life of the process: the C libraries hold raw pointers to them.
_installed: list[object] = []


def _alsa_message(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    where = f"{(file or b'?').decode(errors='replace')}:{line}"
    text = (fmt or b"").decode(errors="replace")
    log.debug(
        "ALSA %s (%s) err=%d %s", where, (function or b"").decode(errors="replace"), err, text
    )


def _jack_message(message: bytes | None) -> None:
    log.debug("JACK %s", (message or b"").decode(errors="replace"))


def install_native_error_handlers() -> None:
    """Route ALSA's and JACK's error printing to logging (once per process)."""
    if _installed:
        return
    alsa_name = ctypes.util.find_library("asound")
    if alsa_name:
        alsa = ctypes.CDLL(alsa_name)
        handler = _ALSA_HANDLER_TYPE(_alsa_message)
        alsa.snd_lib_error_set_handler(handler)
        _installed.append(handler)
    jack_name = ctypes.util.find_library("jack")
    if jack_name:
        jack = ctypes.CDLL(jack_name)
        for setter in ("jack_set_error_function", "jack_set_info_function"):
            handler = _JACK_HANDLER_TYPE(_jack_message)
            getattr(jack, setter)(handler)
            _installed.append(handler)
    _installed.append(True)


def _keep_python_stderr_on_terminal() -> None:
    """Give Python's stderr its own descriptor for what fd 2 is now (the terminal).

    Called before the first redirect of fd 2.  Textual reads ``sys.__stderr__``
    when it builds its driver, and writes every frame of the screen to it; were
    that fd 2, the dashboard would draw into the log file while audio is open.
    """
    for name in ("__stderr__", "stderr"):
        stream = getattr(sys, name)
        if _writes_to_fd2(stream):
            setattr(sys, name, _private_terminal_stream(stream))


def _writes_to_fd2(stream: object) -> bool:
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return False
    try:
        return bool(fileno() == 2)
    except (OSError, ValueError):  # closed, or not backed by a descriptor (pytest's capture)
        return False


_terminal_streams: dict[int, TextIO] = {}


def _private_terminal_stream(like: TextIO) -> TextIO:
    """One duplicate of fd 2 per process, with the encoding of the stream it replaces."""
    if 2 not in _terminal_streams:
        _terminal_streams[2] = os.fdopen(
            os.dup(2),
            "w",
            buffering=1,
            encoding=getattr(like, "encoding", None) or "utf-8",
            errors=getattr(like, "errors", None) or "backslashreplace",
        )
    return _terminal_streams[2]


class _Fd2Redirect:
    """Points file descriptor 2 at the log file (or /dev/null) while anyone holds it.

    Works on the descriptor, not ``sys.stderr``, because the noise comes from C
    code: ALSA and JACK while PortAudio opens, and PortAudio's own diagnostics
    ("Expression ... failed") from its audio thread when a device dies, which
    no handler can catch.  Reference-counted so nested and concurrent holders
    (an open device, a reopen thread, ``devices`` listing) restore it exactly once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: int | None = None

    def acquire(self) -> None:
        with self._lock:
            if self._holders == 0:
                target = configured_log_file()
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
                sink = os.open(str(target) if target else os.devnull, flags, 0o600)
                sys.stderr.flush()
                _keep_python_stderr_on_terminal()
                self._saved = os.dup(2)
                os.dup2(sink, 2)
                os.close(sink)
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._saved is not None:
                sys.stderr.flush()
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None


native_stderr = _Fd2Redirect()


@contextmanager
def fd2_redirected() -> Iterator[None]:
    native_stderr.acquire()
    try:
        yield
    finally:
        native_stderr.release()


@contextmanager
def quiet_native_audio() -> Iterator[None]:
    """Both measures together: what every PortAudio init/open/close runs under."""
    install_native_error_handlers()
    with fd2_redirected():
        yield

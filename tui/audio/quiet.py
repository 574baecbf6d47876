"""Keep PortAudio's ALSA/JACK chatter off the terminal.

Opening PortAudio probes JACK and every ALSA device, and those libraries print
straight to file descriptor 2 ("ALSA lib ...", "jack server is not running").
A terminal UI draws on that terminal, so while PortAudio opens we point fd 2 at
the log file (or /dev/null), and we give ALSA and JACK error handlers that send
their messages to ``logging`` instead of stderr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tui.audio.logfile import configured_log_file

log = logging.getLogger("tui.audio.native")

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
# The variadic tail is ignored: on the C ABIs we run on the caller cleans it up.
_ALSA_HANDLER_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_JACK_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_char_p)

# Kept alive for the life of the process: the C libraries hold raw pointers to them.
_installed: list[object] = []
_fd2_lock = threading.Lock()


def _alsa_message(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    where = f"{(file or b'?').decode(errors='replace')}:{line}"
    text = (fmt or b"").decode(errors="replace")
    log.debug("ALSA %s (%s) err=%d %s", where, (function or b"").decode(errors="replace"),
              err, text)


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


@contextmanager
def fd2_redirected() -> Iterator[None]:
    """Point file descriptor 2 at the log file (or /dev/null) for the block.

    Works on the descriptor, not ``sys.stderr``, because the noise comes from C
    code.  A lock serialises nested or concurrent users (e.g. a reconnect
    thread) so fd 2 is always restored to the real stderr.
    """
    with _fd2_lock:
        target = configured_log_file()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        sink = os.open(str(target) if target else os.devnull, flags, 0o600)
        saved = os.dup(2)
        try:
            os.dup2(sink, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(sink)


@contextmanager
def quiet_native_audio() -> Iterator[None]:
    """Both measures together: what every PortAudio init/open/close runs under."""
    install_native_error_handlers()
    with fd2_redirected():
        yield

"""The one logging set-up: every log record (ours and libraries') to the log file.

A terminal UI owns the terminal: a library warning printed on stderr would be
drawn over the dashboard, so logs go to a file (``tui.core.paths.log_file``).
The file's handler redacts secrets (``tui.core.redact``) from every record it
writes, whichever logger it came from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tui.core.paths import log_file
from tui.core.redact import RedactingFilter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path() -> Path:
    """The default log file (``$XDG_STATE_HOME/anyreach-tui/anyreach-tui.log``)."""
    return log_file()


def configure_logging(level: int = logging.INFO, path: Path | None = None) -> Path:
    """Send all logging to the log file (``path`` or the default) and nowhere else.

    Handlers that write to a terminal stream are removed from the root logger;
    because the root logger then has a handler, Python's last-resort stderr
    handler is never used either.  Calling it again is harmless.  Returns the file.
    """
    target = path or log_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == target:
            _redacting(handler)
            root.setLevel(level)
            return target
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            root.removeHandler(handler)
    file_handler = logging.FileHandler(target, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    _redacting(file_handler)
    root.addHandler(file_handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return target


def configured_log_file() -> Path | None:
    """The log file the root logger writes to, if ``configure_logging`` ran."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def _redacting(handler: logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())

"""Where the app's log file lives, and routing every library log there.

A terminal UI owns the terminal: a library warning printed on stderr would be
drawn over the dashboard, so logs go to a file under ``$XDG_STATE_HOME``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

APP_DIR_NAME = "anyreach-tui"
LOG_FILE_NAME = "anyreach-tui.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def state_dir() -> Path:
    """``$XDG_STATE_HOME/anyreach-tui`` (default ``~/.local/state/anyreach-tui``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP_DIR_NAME


def log_path() -> Path:
    return state_dir() / LOG_FILE_NAME


def configure_logging(level: int = logging.INFO, path: Path | None = None) -> Path:
    """Send all logging (ours and libraries') to the log file and nowhere else.

    Handlers that write to a terminal stream are removed from the root logger;
    because the root logger then has a handler, Python's last-resort stderr
    handler is never used either.  Calling it again is harmless.
    """
    target = path or log_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == target:
            root.setLevel(level)
            return target
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            root.removeHandler(handler)
    file_handler = logging.FileHandler(target, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(_FORMAT))
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

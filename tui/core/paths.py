"""Where anyreach-tui keeps its files: the one place that reads the XDG variables.

The XDG Base Directory specification: ``$XDG_CONFIG_HOME`` (default
``~/.config``), ``$XDG_DATA_HOME`` (``~/.local/share``), ``$XDG_STATE_HOME``
(``~/.local/state``) and ``$XDG_CACHE_HOME`` (``~/.cache``).  A relative value
is invalid and is ignored, as the specification says.  Every function reads the
environment when it is called, so a changed environment (the demo, tests) is seen.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR_NAME = "anyreach-tui"
CONFIG_FILE_NAME = "config.toml"
LOG_FILE_NAME = "anyreach-tui.log"
DEMO_STACK_LOG_NAME = "demo-stack.log"
AUDIT_FILE_NAME = "audit.jsonl"


def xdg_home(variable: str, fallback: str) -> Path:
    """``$variable`` if it is an absolute path, else ``~/fallback``."""
    value = os.environ.get(variable, "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/anyreach-tui``."""
    return xdg_home("XDG_CONFIG_HOME", ".config") / APP_DIR_NAME


def config_file() -> Path:
    """The default config file, ``$XDG_CONFIG_HOME/anyreach-tui/config.toml``."""
    return config_dir() / CONFIG_FILE_NAME


def data_dir() -> Path:
    """``$XDG_DATA_HOME/anyreach-tui``."""
    return xdg_home("XDG_DATA_HOME", ".local/share") / APP_DIR_NAME


def transcripts_dir() -> Path:
    """Where settled transcript lines are saved by default."""
    return data_dir() / "transcripts"


def state_dir() -> Path:
    """``$XDG_STATE_HOME/anyreach-tui``: the log files."""
    return xdg_home("XDG_STATE_HOME", ".local/state") / APP_DIR_NAME


def log_file() -> Path:
    """The default log file, ``$XDG_STATE_HOME/anyreach-tui/anyreach-tui.log``."""
    return state_dir() / LOG_FILE_NAME


def demo_stack_log() -> Path:
    """The demo stack's log (livekit-server, emulator, simulated calls), beside the log file."""
    return state_dir() / DEMO_STACK_LOG_NAME


def audit_file() -> Path:
    """Who heard which call, when: ``$XDG_STATE_HOME/anyreach-tui/audit.jsonl``."""
    return state_dir() / AUDIT_FILE_NAME


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/anyreach-tui``: things that can be rebuilt (livekit-server)."""
    return xdg_home("XDG_CACHE_HOME", ".cache") / APP_DIR_NAME

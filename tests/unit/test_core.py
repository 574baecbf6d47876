"""tui.core: the XDG paths (one place, spec-correct) and the one logging set-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.core import paths
from tui.core.logs import configure_logging, configured_log_file
from tui.core.redact import REDACTED, redact_secrets

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsaXN0ZW5lciJ9.c2lnbmF0dXJlLXZhbHVl"


def test_paths_follow_the_xdg_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    assert paths.config_file() == tmp_path / "xdg_config_home" / "anyreach-tui" / "config.toml"
    assert paths.transcripts_dir() == tmp_path / "xdg_data_home" / "anyreach-tui" / "transcripts"
    state = tmp_path / "xdg_state_home" / "anyreach-tui"
    assert paths.log_file() == state / "anyreach-tui.log"
    assert paths.demo_stack_log() == state / "demo-stack.log"
    assert paths.cache_dir() == tmp_path / "xdg_cache_home" / "anyreach-tui"


@pytest.mark.parametrize("value", ["", "relative/state"])
def test_an_unset_or_relative_xdg_value_falls_back_to_home(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spec: "If an implementation encounters a relative path ... it should ignore it."
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", value)
    monkeypatch.setenv("XDG_CONFIG_HOME", value)
    assert paths.log_file() == tmp_path / ".local/state/anyreach-tui/anyreach-tui.log"
    assert paths.config_file() == tmp_path / ".config/anyreach-tui/config.toml"


def test_redaction_of_tokens_in_text() -> None:
    assert redact_secrets(f"invalid token: {JWT}, error") == f"invalid token: {REDACTED}, error"
    assert "secret" not in redact_secrets("wss://h/rtc?access_token=secret&x=1")


@pytest.fixture
def clean_root() -> Iterator[logging.Logger]:
    """The root logger as it was, after the test configured it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def test_the_log_file_redacts_records_of_child_loggers_and_tracebacks(
    tmp_path: Path, clean_root: logging.Logger
) -> None:
    target = tmp_path / "state" / "app.log"
    assert configure_logging(logging.DEBUG, target) == target
    assert configure_logging(logging.DEBUG, target) == target  # a second call is harmless
    ours = [
        h
        for h in clean_root.handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == target
    ]
    assert len(ours) == 1  # not added twice
    # A child logger: a filter on the "livekit" logger would never see this record.
    logging.getLogger("livekit.rtc.room").warning("connect failed: invalid token: %s", JWT)
    try:
        raise RuntimeError(f"signal failure ?access_token={JWT}")
    except RuntimeError:
        logging.getLogger("tui.some.module").exception("join failed")
    for handler in clean_root.handlers:
        handler.flush()
    text = target.read_text()
    assert "connect failed: invalid token: [redacted]" in text
    assert "RuntimeError: signal failure ?access_token=[redacted]" in text
    assert "eyJ" not in text
    assert not any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        for h in clean_root.handlers
    )


def test_configured_log_file_is_the_root_logger_file(
    tmp_path: Path, clean_root: logging.Logger
) -> None:
    for handler in list(clean_root.handlers):  # pytest's own capture handlers, for this test
        if isinstance(handler, logging.FileHandler):
            clean_root.removeHandler(handler)
    assert configured_log_file() is None
    target = configure_logging(logging.INFO, tmp_path / "app.log")
    assert configured_log_file() == target

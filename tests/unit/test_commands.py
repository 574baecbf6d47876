"""The entry points: one dispatcher, each command in tui/commands, exits from ExitCode."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tui.commands import main as dispatcher
from tui.commands.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_is_a_module_of_tui_commands_with_a_main() -> None:
    for name, (module_name, _) in dispatcher.SUBCOMMANDS.items():
        assert module_name == f"tui.commands.{name}"
        assert callable(importlib.import_module(module_name).main)
    assert callable(importlib.import_module(dispatcher.DASHBOARD_MODULE).main)


@pytest.mark.timeout(60)
def test_the_console_script_entry_point_is_the_dispatcher() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui.commands.main", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0
    assert "demo " in result.stdout and "exit status:" in result.stdout
    assert 'anyreach-tui = "tui.commands.main:main"' in (ROOT / "pyproject.toml").read_text()


def test_demo_refuses_no_calls_as_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.commands import demo

    assert demo.run(["--calls", "0"]) == ExitCode.BAD_CONFIG
    assert "--calls must be 1 or more" in capsys.readouterr().err

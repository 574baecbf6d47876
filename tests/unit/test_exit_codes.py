"""One table of exit statuses: the enum, every command's --help and the README agree."""

from __future__ import annotations

import re
from pathlib import Path

from tui.commands.exit_codes import ExitCode, exit_codes_help, readme_rows

ROOT = Path(__file__).resolve().parents[2]


def test_the_codes_are_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILURE": 1,
        "BAD_CONFIG": 2,
        "AUTH": 3,
        "NOT_FOUND": 4,
        "NOT_ACTIVE": 5,
        "API_UNAVAILABLE": 6,
        "NO_ROOM": 7,
        "INTERRUPTED": 130,
    }
    assert all(code.description and "\n" not in code.description for code in ExitCode)


def test_the_help_table_lists_each_code_with_its_description() -> None:
    table = exit_codes_help()
    assert table.splitlines()[0] == "exit status:"
    for code in ExitCode:
        assert re.search(rf"^  {int(code)} +{re.escape(code.description)}$", table, re.M)
    only = exit_codes_help([ExitCode.BAD_CONFIG, ExitCode.OK])
    assert [line.split()[0] for line in only.splitlines()[1:]] == ["0", "2"]


def test_the_readme_table_is_the_enum() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert rows == readme_rows()

"""The scale benchmark (scripts/bench_scale.py) runs end to end at N = 2, peer off.

So that it cannot rot.  Its figures depend on the machine and its load: the test
checks that the header names the machine and the date, and that the table has
every column with a number in each cell the dashboard and ``tail --all`` measure,
never what the numbers are.
"""

from __future__ import annotations

import re

import pytest

from tests.fixtures.scripts import run_script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

COLUMNS = [
    "calls",
    "process",
    "CPU %",
    "PSS MiB",
    "PSS/call MiB",
    "apply p50 ms",
    "apply p95 ms",
    "paint p95 ms",
    "lag p95 ms",
    "lag max ms",
    "switch p50 ms",
    "switch p95 ms",
    "peer CPU %",
    "peer PSS MiB",
    "peer/ours CPU",
    "peer/ours PSS",
]
DASHBOARD_MEASURES = COLUMNS[2:12]
TAIL_MEASURES = ["CPU %", "PSS MiB", "PSS/call MiB"]
PEER_COLUMNS = COLUMNS[12:]
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table(output: str) -> tuple[list[str], list[dict[str, str]]]:
    lines = [line for line in output.splitlines() if line.startswith("|")]
    assert len(lines) >= 2, f"no table in:\n{output}"
    header = cells(lines[0])
    return header, [dict(zip(header, cells(line), strict=True)) for line in lines[2:]]


def test_bench_scale_prints_every_column_at_two_calls() -> None:
    out = run_script(
        "bench_scale.py", "--calls", "2", "--seconds", "6", "--switches", "4", timeout=420
    )
    assert re.search(r"^machine: \d+ cores, .+", out, re.MULTILINE), out
    assert re.search(r"^date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", out, re.MULTILINE), out

    header, rows = table(out)
    assert header == COLUMNS
    by_process = {row["process"]: row for row in rows}
    assert sorted(by_process) == ["dashboard", "tail --all"], rows
    for row in rows:
        assert row["calls"] == "2"
        assert all(row[column] == "-" for column in PEER_COLUMNS), row  # no --peer
    dashboard, tail = by_process["dashboard"], by_process["tail --all"]
    for column in DASHBOARD_MEASURES:
        assert NUMBER.fullmatch(dashboard[column]), f"dashboard {column}: {dashboard[column]!r}"
    for column in TAIL_MEASURES:
        assert NUMBER.fullmatch(tail[column]), f"tail {column}: {tail[column]!r}"

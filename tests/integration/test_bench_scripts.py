"""The smaller benchmarks run end to end, briefly, so that they cannot rot.

One did: bench_switch still called a router method that had been renamed.  Each test
checks that the script measured what it says (every switch found in the recording,
every figure printed), never what the figures are.  bench_scale has its own test.
"""

from __future__ import annotations

import re

import pytest

from tests.fixtures.scripts import run_script

pytestmark = pytest.mark.timeout(120)

NUMBER = r"\d+(\.\d+)?"


def test_bench_switch_finds_every_switch_in_the_recording() -> None:
    out = run_script("bench_switch.py", "--switches", "4")
    figures = re.findall(r"^set_heard\([ab]\): first samples +(\d+\.\d) ms", out, re.MULTILINE)
    assert len(figures) == 4, out
    assert "never heard" not in out
    assert re.search(r"^switch delay over 4 switches: median \d+\.\d ms", out, re.MULTILINE), out


def test_bench_repaints_prints_the_repaint_rate_and_the_loop_lag() -> None:
    out = run_script("bench_repaints.py", "--panes", "4", "--seconds", "2")
    assert re.search(rf"^transcript repaints per pane: max {NUMBER}/s", out, re.MULTILINE), out
    assert re.search(rf"^UI loop lag during the burst: median {NUMBER} ms", out, re.MULTILINE)


def test_bench_sessions_finds_both_switches_in_the_recording() -> None:
    out = run_script("bench_sessions.py", "--sessions", "2", "--seconds", "3", "--switches", "2")
    found = re.search(r"^switch -> new band in the recording: .* \(2 of 2\)$", out, re.MULTILINE)
    assert found, out
    assert re.search(r"^unheard sessions showing speaking: \d of 1$", out, re.MULTILINE), out


def test_bench_gc_prints_a_row_per_history_length() -> None:
    out = run_script("bench_gc.py", "--panes", "4", "--segments", "0,50")
    rows = re.findall(rf"^\| (\d+) \| \d+ \| {NUMBER} \|$", out, re.MULTILINE)
    assert [row[0] for row in rows] == ["0", "50"], out
    assert re.search(r"the start-up heap, \d+ objects, is frozen first", out), out

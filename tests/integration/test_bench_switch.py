"""The router's switch benchmark (scripts/bench_switch.py) runs end to end, briefly.

So that it cannot rot (it did once: it still called a router method that had been
renamed).  It plays through a private PulseAudio server and records it; the test
checks that every switch was found in the recording and that a figure is printed for
each, never what the figures are.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_switch.py"


def test_bench_switch_finds_every_switch_in_the_recording() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--switches", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-4000:]}"
    out = done.stdout
    figures = re.findall(r"^set_heard\([ab]\): first samples +(\d+\.\d) ms", out, re.MULTILINE)
    assert len(figures) == 4, out
    assert "never heard" not in out
    assert re.search(r"^switch delay over 4 switches: median \d+\.\d ms", out, re.MULTILINE), out

"""``kill -9`` while a call is heard leaves its start line, shown as interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.config import ConfigHome

ROOT = Path(__file__).resolve().parents[2]

# A dashboard model with the trail the composition root builds, one call heard, then
# nothing: the process waits to be killed, so nothing else gets a chance to write.
CHILD = textwrap.dedent(
    """
    import sys, time
    from tui.core import paths
    from tui.monitor.audit import AuditTrail
    from tui.monitor.model import Dashboard

    dashboard = Dashboard()
    trail = AuditTrail(dashboard, paths.audit_file())
    dashboard.add_call("conv_killed").set_state("connected")
    dashboard.set_listening(True)
    print("ready", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.timeout(90)
@pytest.mark.slow
def test_kill_9_mid_hearing_leaves_the_start_line_and_audit_shows_it_interrupted(
    config_home: ConfigHome,
) -> None:
    env = config_home.env()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        ready = child.stdout.readline().strip()
        assert ready == "ready", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    path = config_home.state_dir / "audit.jsonl"
    (start,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert start["event"] == "start" and start["conversation_id"] == "conv_killed"
    assert start["pid"] == child.pid and start["user"] and start["host"]

    def audit(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "tui.commands.main", "audit", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    table = audit().splitlines()
    assert len(table) == 2
    assert "conv_killed" in table[1] and "(interrupted)" in table[1]
    (record,) = [json.loads(line) for line in audit("--json").splitlines()]
    assert record["status"] == "interrupted" and record["end"] is None
    assert record["start"] == start["ts"] and record["interval"] == start["interval"]

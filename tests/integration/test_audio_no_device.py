"""Without a usable sound device the dashboard still runs: writes are accepted and kept
bounded, one notice explains it, and PortAudio prints nothing on the terminal.

Each case runs in a fresh subprocess so its file descriptor 2 can be captured:
that is where ALSA and JACK would print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys, time
from tui.audio import AudioRouter, open_output_device
from tui.core.logs import configure_logging

log_file = configure_logging()
spec, no_audio = json.loads(sys.argv[1])
device = open_output_device(spec, no_audio=no_audio)
router = AudioRouter(device)
later_notices = []
router.on_notice(later_notices.append)
outputs = [router.output_for(sid) for sid in ("a", "b")]
router.set_heard(["a"])
frame = (b"\x10\x00\xf0\xff" * 240)
for i in range(60):              # 600 ms of two calls writing 10 ms frames
    for output in outputs:
        output.write(frame)
    time.sleep(0.01)
# Nothing pulled the buffers: pulling now (as a device would) plays the heard call's
# newest 80 ms at most, then silence.
played = [any(router.render(480)) for _ in range(12)]
router.set_heard(["b"])
for output in outputs:
    output.flush()
router.close()
device.close()
print(json.dumps({
    "device": type(device).__name__, "notice": router.notice, "later": later_notices,
    "played": played, "log": log_file.read_text(),
}))
"""

NOISY = "import pyaudio; pyaudio.PyAudio().terminate()"


def run(code: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def no_server_env(tmp_path: Path) -> dict[str, str]:
    """A runtime directory with no sound server in it (and no autospawn)."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_CLIENTCONFIG": str(conf)}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("case", "spec", "no_audio", "notice_start"),
    [
        ("no_audio_flag", None, True, "Audio off (--no-audio)"),
        ("no_sound_server", None, False, "No audio device"),
        ("unknown_device_name", "no-such-speaker", False, "No audio device"),
    ],
)
def test_sessions_keep_working_with_one_notice_and_a_clean_terminal(
    case: str,
    spec: str | None,
    no_audio: bool,
    notice_start: str,
    request: pytest.FixtureRequest,
    no_server_env: dict[str, str],
    tmp_path: Path,
) -> None:
    if case == "unknown_device_name":
        env = dict(request.getfixturevalue("pulse_server").env)
    else:
        env = no_server_env
    env["XDG_STATE_HOME"] = str(tmp_path / "state")

    if not no_audio:
        # The same environment without our measures is noisy, so a clean stderr below
        # is the measures' doing.
        assert run(NOISY, [], env).stderr, "expected PortAudio to print here unguarded"

    result = run(SCRIPT, [json.dumps([spec, no_audio])], env)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stderr == b"", result.stderr.decode(errors="replace")
    report = json.loads(result.stdout)
    assert report["device"] == "NullDevice"
    assert report["notice"].startswith(notice_start)
    assert report["notice"].endswith("playing nothing")
    assert report["later"] == []  # the notice is not repeated while sessions write
    assert report["log"].count(report["notice"]) == 1
    # The heard call's audio was kept, bounded to the router's 80 ms limit (8 pulls of 10 ms).
    assert report["played"] == [True] * 8 + [False] * 4
    assert (tmp_path / "state" / "anyreach-tui" / "anyreach-tui.log").exists()

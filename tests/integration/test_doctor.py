"""``anyreach-tui doctor`` as a real process against the emulator, livekit-server, PulseAudio."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path

import pytest

from tests.fixtures.audio import PulseServer
from tests.fixtures.calls import StartCall
from tests.fixtures.config import ConfigHome
from tui.commands import doctor
from tui.commands.exit_codes import ExitCode
from tui.demo.calls import CallOptions
from tui.demo.emulator import SCOPE_READ, ApiEmulator
from tui.demo.livekit_server import LiveKitServer

ROOT = Path(__file__).resolve().parents[2]
# A terminal as the dashboard wants it; a subprocess has none, so its size comes from here.
GOOD_TERMINAL = {
    "TERM": "xterm-256color",
    "COLORTERM": "truecolor",
    "COLUMNS": "120",
    "LINES": "40",
}
SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


async def run_doctor(
    config_home: ConfigHome, emulator: ApiEmulator, *args: str, api_key: str | None = None
) -> tuple[int, str]:
    env = config_home.env(
        ANYREACH_API_URL=emulator.url,
        ANYREACH_API_KEY=api_key or emulator.admin_key,
        **GOOD_TERMINAL,
    )
    for name in SSH_VARIABLES:
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui.commands.main",
        "doctor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode()


NAMES = ("configuration", "API key", "API", "LiveKit room", "audio", "terminal")
ROW = re.compile(rf"^(ok|PROBLEM|skipped|note) +({'|'.join(NAMES)}) {{2,}}(.*)$")


def rows(output: str) -> dict[str, tuple[str, str]]:
    """check name -> (status, what it found), from doctor's lines (the first of each)."""
    found: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        match = ROW.match(line)
        if match and match.group(2) not in found:
            found[match.group(2)] = (match.group(1), match.group(3))
    return found


def fix_after(output: str, name: str) -> str:
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^PROBLEM +{re.escape(name)} {{2,}}", line):
            follow = lines[i + 1] if i + 1 < len(lines) else ""
            assert "how to fix:" in follow, output
            return follow.split("how to fix:", 1)[1].strip()
    raise AssertionError(f"no problem for {name}:\n{output}")


@pytest.mark.timeout(180)
@pytest.mark.slow
async def test_everything_passes_with_the_admin_key_a_live_call_and_a_sound_server(
    config_home: ConfigHome,
    livekit_server: LiveKitServer,
    simulated_call: StartCall,
    pulse_server: PulseServer,
) -> None:
    async with ApiEmulator(
        livekit_server.url, livekit_server.api_key, livekit_server.api_secret
    ) as emulator:
        conversation = emulator.create_conversation(status="in_progress", room_name="doc-room")
        await simulated_call(
            livekit_server, "doc-room", CallOptions(mode="tone", loop=True, time_scale=0.3)
        )
        code, output = await run_doctor(config_home, emulator)
        minted = [m.conversation_id for m in emulator.minted]

    assert code == ExitCode.OK, output
    found = rows(output)
    assert {name: status for name, (status, _) in found.items()} == {
        "configuration": "ok",
        "API": "ok",
        "API key": "ok",
        "LiveKit room": "ok",
        "audio": "ok",
        "terminal": "ok",
    }, output
    assert "1 live call" in found["API"][1]
    assert conversation.id in found["API key"][1] and "hidden, subscribe-only" in output
    assert "joined doc-room" in found["LiveKit room"][1]
    assert "played 100 ms of silence" in found["audio"][1]
    assert "xterm-256color" in found["terminal"][1] and "120x40" in found["terminal"][1]
    assert output.rstrip().endswith("All checks passed.")
    assert minted == [conversation.id]  # one token, for the one live call
    assert emulator.admin_key not in output and "eyJ" not in output  # no key, no token


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_a_key_without_the_listening_scope_fails_in_words_with_status_3(
    config_home: ConfigHome, api_emulator: ApiEmulator
) -> None:
    api_emulator.create_conversation(status="in_progress", room_name="r1")
    key = api_emulator.add_key(scopes=(SCOPE_READ,))  # may list, may not mint
    code, output = await run_doctor(config_home, api_emulator, "--no-audio", api_key=key)

    assert code == ExitCode.AUTH, output
    found = rows(output)
    assert found["API"][0] == "ok"
    status, words = found["API key"]
    assert status == "PROBLEM" and "could not mint a listener token" in words and "403" in words
    assert "conversations:read_sensitive or conversations:manage" in fix_after(output, "API key")
    assert found["LiveKit room"][0] == "skipped"
    assert found["audio"] == ("skipped", "audio is off (--no-audio): no device is opened")
    assert key not in output


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_a_rejected_key_and_an_unreachable_api_fail_with_their_statuses(
    config_home: ConfigHome, api_emulator: ApiEmulator
) -> None:
    code, output = await run_doctor(config_home, api_emulator, "--no-audio", api_key="ak_wrong")
    assert code == ExitCode.AUTH, output
    assert rows(output)["API key"][0] == "PROBLEM" and "rejected (401)" in output
    assert "ak_wrong" not in output

    url = api_emulator.url
    await api_emulator.stop()  # nothing answers at that address any more
    code, output = await run_doctor(config_home, api_emulator, "--no-audio")
    assert code == ExitCode.API_UNAVAILABLE, output
    status, words = rows(output)["API"]
    assert status == "PROBLEM" and url in words and "does not answer" in words
    assert "api_url" in fix_after(output, "API")


@pytest.mark.timeout(180)
@pytest.mark.slow
async def test_a_stopped_livekit_server_fails_the_room_check_with_status_7(
    config_home: ConfigHome, livekit_server: LiveKitServer
) -> None:
    async with ApiEmulator(
        livekit_server.url, livekit_server.api_key, livekit_server.api_secret
    ) as emulator:
        emulator.create_conversation(status="in_progress", room_name="gone-room")
        livekit_server.stop()  # the API still says the call is live and mints for it
        started = asyncio.get_running_loop().time()
        code, output = await run_doctor(config_home, emulator, "--no-audio")
        took = asyncio.get_running_loop().time() - started

    assert code == ExitCode.NO_ROOM, output
    found = rows(output)
    assert found["API key"][0] == "ok"
    status, words = found["LiveKit room"]
    assert status == "PROBLEM" and "could not join gone-room" in words
    assert livekit_server.url in words
    assert "firewall" in fix_after(output, "LiveKit room")
    assert took < 60, output  # bounded by the session's own 15 s connect


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_no_audio_device_fails_the_audio_check_with_status_1(
    config_home: ConfigHome, api_emulator: ApiEmulator, pulse_server: PulseServer
) -> None:
    code, output = await run_doctor(config_home, api_emulator, "--device", "no-such-device")
    assert code == ExitCode.FAILURE, output
    found = rows(output)
    assert found["LiveKit room"] == ("skipped", "no live call to test the room with")
    status, words = found["audio"]
    assert status == "PROBLEM" and "no-such-device" in words
    assert "anyreach-tui devices" in fix_after(output, "audio")

    # No sound server at all: PortAudio finds nothing to play to.
    pulse_server.stop()
    code, output = await run_doctor(config_home, api_emulator)
    assert code == ExitCode.FAILURE, output
    status, words = rows(output)["audio"]
    assert status == "PROBLEM" and "No audio device" in words, output


# -- in-process: the configuration and the terminal --------------------------------------


def run_in_process(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = doctor.main(list(argv), stdout=out)
    return code, out.getvalue()


@pytest.mark.timeout(60)
def test_a_config_file_others_can_read_holding_the_key_is_a_problem(
    config_home: ConfigHome,
) -> None:
    path = config_home.write_config(
        'api_key = "ak_secret123"\napi_url = "http://127.0.0.1:9"\n', mode=0o644
    )
    code, output = run_in_process("--config", str(path), "--no-audio")
    assert code == ExitCode.BAD_CONFIG, output
    status, words = rows(output)["configuration"]
    assert status == "PROBLEM" and "other users can read it (mode 644)" in words
    assert fix_after(output, "configuration") == f"chmod 600 {path}"
    assert "ak_secret123" not in output


@pytest.mark.timeout(60)
def test_a_bad_config_file_is_named_with_its_key_and_line(config_home: ConfigHome) -> None:
    path = config_home.write_config('[discovery]\ninterval_s = "fast"\n')
    code, output = run_in_process("--config", str(path))
    assert code == ExitCode.BAD_CONFIG, output
    status, words = rows(output)["configuration"]
    assert status == "PROBLEM"
    assert f"discovery.interval_s ({path}, line 2)" in words and "'fast'" in words
    assert rows(output)["API"] == ("skipped", "needs a usable configuration")


@pytest.mark.timeout(60)
def test_no_config_file_is_fine_but_no_key_is_a_problem(config_home: ConfigHome) -> None:
    code, output = run_in_process("--no-audio")
    assert code == ExitCode.BAD_CONFIG
    assert rows(output)["configuration"][0] == "ok"
    assert "no config file at" in rows(output)["configuration"][1]
    assert rows(output)["API key"] == ("PROBLEM", "no API key is set")
    assert "ANYREACH_API_KEY" in fix_after(output, "API key")


def terminal(environ: dict[str, str], size: tuple[int, int] | None) -> list[doctor.Check]:
    report = doctor.Report()
    original = doctor.terminal_size
    doctor.terminal_size = lambda: size  # type: ignore[assignment]
    try:
        doctor.check_terminal(report, environ)
    finally:
        doctor.terminal_size = original  # type: ignore[assignment]
    return report.checks


def test_the_terminal_check() -> None:
    (good,) = terminal({"TERM": "xterm-256color", "COLORTERM": "truecolor"}, (100, 30))
    assert good.status == "ok" and "true colour" in good.found and "100x30" in good.found
    (small,) = terminal({"TERM": "xterm"}, (79, 24))
    assert small.failed and "smaller than 80x24" in small.found and small.fix
    (unset,) = terminal({}, (100, 30))
    assert unset.failed and "TERM is not set" in unset.found
    (dumb,) = terminal({"TERM": "dumb"}, (100, 30))
    assert dumb.failed and "TERM=dumb" in dumb.found
    (none,) = terminal({"TERM": "xterm"}, None)
    assert none.failed and "not running in a terminal" in none.found
    (mono,) = terminal({"TERM": "xterm-256color", "NO_COLOR": "1"}, (80, 24))
    assert mono.status == "ok" and "NO_COLOR" in mono.found
    (console,) = terminal({"TERM": "linux"}, (80, 25))
    assert "ansi-dark" in console.found
    ok, ssh = terminal({"TERM": "xterm", "SSH_CONNECTION": "1 2 3 4"}, (80, 24))
    assert ok.status == "ok" and ssh.status == "note" and not ssh.failed
    assert "remote" in ssh.found and "--no-audio" in ssh.found


def test_the_exit_status_is_the_first_problems() -> None:
    report = doctor.Report()
    report.add("API", "ok", "fine")
    report.add("terminal", "note", "over SSH")
    assert report.exit_code == ExitCode.OK
    report.add("API key", "PROBLEM", "403", "scope", ExitCode.AUTH)
    report.add("audio", "PROBLEM", "none", "devices")
    assert report.exit_code == ExitCode.AUTH
    assert report.render().rstrip().endswith("2 problems found (exit status 3).")


def test_doctor_is_a_command_of_the_dispatcher() -> None:
    from tui.commands import main as dispatcher

    assert dispatcher.SUBCOMMANDS["doctor"][0] == "tui.commands.doctor"
    assert dispatcher.SUBCOMMANDS["audit"][0] == "tui.commands.audit"

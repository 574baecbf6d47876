"""``anyreach-tui demo``: the whole product on a local stack, no Anyreach account needed.

The stack (livekit-server, the API emulator and the simulated calls, all in
``tui.demo``) runs in a child process, ``anyreach-tui simulate``: its bots encode
and publish audio in real time, and keeping them out of the dashboard's
interpreter keeps the UI and the audio callback free of their GIL pressure.  The
dashboard is then started on the emulator's URL and per-run key, exactly as it
would be on the real API.

Quitting the dashboard (``q``, Ctrl-C) stops the child, which stops everything
it started; the child also dies with us if we are killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tui.commands.ending import leave
from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.core.paths import demo_stack_log
from tui.core.redact import REDACTED
from tui.demo.server_install import ServerInstallError, ensure_livekit_server

STACK_START_TIMEOUT = 60.0  # first start may synthesise speech before calls appear
STOP_GRACE = 4.0  # the whole demo must be gone within 5 s of quitting
_PR_SET_PDEATHSIG = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui demo",
        description="Run the dashboard on a local LiveKit server, the Anyreach API emulator "
        "and simulated calls that come and go. Listening is off until you press space. "
        "q or Ctrl-C stops everything.",
        epilog=exit_codes_help([ExitCode.OK, ExitCode.FAILURE, ExitCode.BAD_CONFIG]),
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=5,
        metavar="N",
        help="simulated calls live at once (default: 5)",
    )
    parser.add_argument(
        "--no-audio", action="store_true", help="never open an audio device (SSH, CI)"
    )
    parser.add_argument("--device", default=None, help="audio output device (name or index)")
    parser.add_argument("--wallboard", action="store_true", help="start in wallboard mode")
    parser.add_argument("--theme", default=None, help="colour theme, e.g. ansi-dark")
    parser.add_argument(
        "--tone", action="store_true", help="agents play tones instead of speech (audio checks)"
    )
    return parser


class StackStartError(RuntimeError):
    """``anyreach-tui simulate`` did not say where its API is (it failed or took too long)."""


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM when the demo process dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class StackProcess:
    """``anyreach-tui simulate`` as a child process, with its api_url and api_key."""

    def __init__(self, calls: int, *, tone: bool, log: IO[bytes]) -> None:
        command = [sys.executable, "-m", "tui.commands.main", "simulate", "--calls", str(calls)]
        if tone:
            command.append("--tone")
        self.log = log
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,  # Ctrl-C in the terminal is the dashboard's to handle
            preexec_fn=_die_with_parent,
        )
        self.api_url = ""
        self.api_key = ""

    def read_endpoint(self, timeout: float = STACK_START_TIMEOUT) -> None:
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout, self.stop)
        timer.start()
        try:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith("api_url: "):
                    self.api_url = line.removeprefix("api_url: ")
                elif line.startswith("api_key: "):
                    self.api_key = line.removeprefix("api_key: ")
                    # A key, even a local one, is never written to a log.
                    raw = f"api_key: {REDACTED}\n".encode()
                self.log.write(raw)
                if self.api_url and self.api_key:
                    break
        finally:
            timer.cancel()
        if not (self.api_url and self.api_key):
            raise StackStartError(f"the local stack did not start; see {self.log.name}")
        # Keep draining stdout so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError, OSError):
                self.log.write(raw)
                self.log.flush()

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(2)


def _log_path() -> Path:
    path = demo_stack_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; the process ends here (``ending.leave``), like the dashboard."""
    # Without the interpreter's teardown: LiveKit's native runtime can panic there
    # and turn a clean exit into SIGABRT.
    leave(run(list(argv or [])))


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.calls < 1:
        print("anyreach-tui demo: --calls must be 1 or more", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    try:
        ensure_livekit_server()  # builds once, with progress, before the screen clears
    except ServerInstallError as exc:
        print(exc, file=sys.stderr)
        return ExitCode.FAILURE
    log_file = _log_path()
    print(f"Starting the local stack ({args.calls} calls); its log: {log_file}", flush=True)
    code: int = ExitCode.FAILURE
    with open(log_file, "ab") as log:
        stack = StackProcess(args.calls, tone=args.tone, log=log)
        try:
            stack.read_endpoint()
            code = _run_dashboard(stack, args)
        except StackStartError as error:
            print(f"anyreach-tui demo: {error}", file=sys.stderr)
        finally:
            stack.stop()
    return code


def _run_dashboard(stack: StackProcess, args: argparse.Namespace) -> int:
    # The emulator's key is local and random per run; it reaches the dashboard the
    # way a real key should, through the environment, never argv.  An empty config
    # file keeps a user's real settings (api_url, org_id) out of the demo.
    os.environ["ANYREACH_API_URL"] = stack.api_url
    os.environ["ANYREACH_API_KEY"] = stack.api_key
    os.environ.pop("ANYREACH_ORG_ID", None)
    from tui.commands import dashboard  # Textual and livekit: only once the stack is up

    with tempfile.TemporaryDirectory(prefix="anyreach-demo-") as folder:
        config = Path(folder) / "config.toml"
        config.write_text("# demo: settings come from the local stack\n")
        dashboard_argv = ["--config", str(config)]
        if args.no_audio:
            dashboard_argv.append("--no-audio")
        if args.device is not None:
            dashboard_argv += ["--device", str(args.device)]
        if args.wallboard:
            dashboard_argv.append("--wallboard")
        if args.theme:
            dashboard_argv += ["--theme", args.theme]
        return dashboard.run(dashboard_argv, sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

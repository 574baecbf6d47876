"""Run a real ``livekit-server --dev`` on free loopback ports.

Each instance picks its own signal, RTC TCP and RTC UDP ports so several can
run side by side (tests run in parallel with a developer's demo).  The process
gets its own process group and is killed as a group on stop, at interpreter
exit, and when the context manager unwinds after a failing test: no orphans.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tui.demo.server_install import ensure_livekit_server

# The server gets SIGTERM if the process (strictly: the thread) that started it dies
# without stopping it: a test run killed by a timeout or a kill -9 leaves no server.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"  # livekit-server --dev's well-known local secret


class LiveKitServerError(RuntimeError):
    """The server did not start or stopped unexpectedly."""


class _PortTaken(LiveKitServerError):
    """The server exited because one of its ports was bound by another process."""


_FIRST_START_ATTEMPTS = 3


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out to outgoing
# connections can be taken between picking it and the server binding it (or between
# kill() and start()), and livekit-server binds its RTC TCP port on every address.
_PORT_RANGE = (20000, 32767)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port outside the ephemeral range that is free on every address right now."""
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        try:
            if socket.has_ipv6:
                with socket.socket(socket.AF_INET6, kind) as sock:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    sock.bind(("::", port))  # dual stack: free on IPv4 and IPv6 alike
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    raise LiveKitServerError("no free port found")


@dataclass
class Ports:
    signal: int
    rtc_tcp: int
    rtc_udp: int

    @classmethod
    def pick(cls) -> Ports:
        signal = free_port()
        rtc_tcp = free_port()
        while rtc_tcp == signal:  # two random picks can meet; one process cannot bind both
            rtc_tcp = free_port()
        return cls(signal, rtc_tcp, free_port(socket.SOCK_DGRAM))


@dataclass
class LiveKitServer:
    """One ``livekit-server --dev`` process bound to loopback."""

    ports: Ports = field(default_factory=Ports.pick)
    binary: Path | None = None
    log_path: Path | None = None
    api_key: str = DEV_API_KEY
    api_secret: str = DEV_API_SECRET
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ports.signal}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.signal}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _config_body(self) -> str:
        # UDP mux on one port and a TCP fallback port, both per instance; no
        # external IP discovery (loopback only, no internet).
        return (
            f"port: {self.ports.signal}\n"
            "rtc:\n"
            f"  tcp_port: {self.ports.rtc_tcp}\n"
            f"  udp_port: {self.ports.rtc_udp}\n"
            "  use_external_ip: false\n"
            "  enable_loopback_candidate: true\n"
            # Keep media on loopback too: without these the UDP mux also listens
            # on every other interface address of the machine.
            "  interfaces:\n"
            "    includes: [lo]\n"
            "  ips:\n"
            "    includes: [127.0.0.1/8]\n"
            "logging:\n"
            "  level: info\n"
        )

    def start(self, timeout: float = 20.0) -> LiveKitServer:
        if self._proc is not None and self._proc.poll() is None:
            return self
        for _ in range(_FIRST_START_ATTEMPTS - 1):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                # A port free when picked was bound by someone else before the server
                # bound it. Nobody has seen this server's URL yet on a first start, so
                # new ports are safe; a restart keeps its ports (clients reconnect to them).
                if self._started:
                    raise
                self.ports = Ports.pick()
        return self._start_once(timeout)

    def _start_once(self, timeout: float) -> LiveKitServer:
        binary = self.binary or ensure_livekit_server()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="livekit-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        log = open(self.log_path, "ab")  # the child process owns it
        attempt_log_start = log.tell()
        try:
            self._proc = subprocess.Popen(
                [
                    *_DIE_WITH_PARENT,
                    str(binary),
                    "--dev",
                    "--bind",
                    "127.0.0.1",
                    "--node-ip",
                    "127.0.0.1",
                    "--config-body",
                    self._config_body(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        _LIVE.add(self)
        self._wait_ready(timeout, attempt_log_start)
        self._started = True
        return self

    def _wait_ready(self, timeout: float, attempt_log_start: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                port_taken = "address already in use" in self._log_since(attempt_log_start)
                raise (_PortTaken if port_taken else LiveKitServerError)(
                    f"livekit-server exited with {self._proc.returncode}; log: {self.log_path}\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(self.http_url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise LiveKitServerError(f"livekit-server did not answer within {timeout}s")

    def _log_since(self, offset: int) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash would; ``start()`` brings it back on the same ports."""
        if self._proc is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5)
        self._proc = None

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(min(1.0, timeout))
        except subprocess.TimeoutExpired:
            # A SIGTERM that arrives just after start can leave its graceful shutdown
            # hanging ("exit requested ... force: false"); a second one forces it.
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(max(0.0, timeout - 1.0))
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait(5)
        self._proc = None
        _LIVE.discard(self)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> LiveKitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __hash__(self) -> int:
        return id(self)


_LIVE: set[LiveKitServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=2)

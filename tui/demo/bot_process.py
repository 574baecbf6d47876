"""Run simulated calls in a separate OS process.

Measuring a listener (CPU, latency) in the same process as the bots would
measure both; :class:`BotProcess` keeps them apart::

    with BotProcess(server.url, server.api_key, server.api_secret,
                    [CallSpec("room-1", CallOptions(mode="tone"))]) as bots:
        bots.wait_ready()
        ...
        bots.wait_for(lambda m: m["event"] == "ended")

The child is ``python -m tui.demo.bot_process``.  It reads one JSON spec line on
stdin (secrets travel there, never on the command line) and reports JSON lines
on stdout: ``ready``, the calls' events (``agent_joined``, ``caller_joined``,
``agent_left``, ``ended``), every ``segment`` the bots published (each field of
``SentSegment``, ``published_at`` too), ``done`` when every call is over,
``error``.  Closing its stdin (or SIGTERM) makes it stop the calls and exit.  Its
logging goes to stderr, which the parent sends to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.demo.bots import SentSegment
from tui.demo.calls import CallOptions, SimulatedCall

log = logging.getLogger(__name__)

Message = dict[str, Any]


class BotProcessError(RuntimeError):
    """The bot process failed to start or reported an error."""


@dataclass(frozen=True)
class CallSpec:
    room_name: str
    options: CallOptions = field(default_factory=CallOptions)
    caller_identity: str = "+15551230001"

    def to_json(self) -> Message:
        return {
            "room": self.room_name,
            "caller_identity": self.caller_identity,
            "options": dataclasses.asdict(self.options),
        }

    @classmethod
    def from_json(cls, data: Message) -> CallSpec:
        return cls(
            room_name=str(data["room"]),
            options=CallOptions(**data.get("options", {})),
            caller_identity=str(data.get("caller_identity", "+15551230001")),
        )


class BotProcess:
    """Parent side: starts the child, collects its reports, stops it (no orphans)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        calls: Sequence[CallSpec],
        *,
        log_path: Path | None = None,
    ) -> None:
        self._spec = {
            "url": url,
            "api_key": api_key,
            "api_secret": api_secret,
            "calls": [call.to_json() for call in calls],
        }
        self.log_path = log_path
        self.messages: list[Message] = []
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # the spec holds the API secret: never shown
        return f"<BotProcess pid={self.pid} calls={len(self._spec['calls'])}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> BotProcess:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="anyreach-bots-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        with open(self.log_path, "ab") as log_file:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tui.demo.bot_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,  # its own group: killed as a whole
            )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(self._spec).encode() + b"\n")
        self._proc.stdin.flush()
        self._reader = threading.Thread(target=self._read_reports, daemon=True)
        self._reader.start()
        return self

    def _read_reports(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                self.messages.append(message)
            self._inbox.put(message)
        self._inbox.put(None)  # the child's stdout closed: it is exiting

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 30.0) -> Message:
        """The first report (already received or coming) that matches ``predicate``."""
        with self._lock:
            for message in self.messages:
                if predicate(message):
                    return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the bot process did not report in time")
            try:
                report = self._inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if report is None:
                raise BotProcessError(f"the bot process exited; log: {self.log_path}")
            if report.get("event") == "error":
                raise BotProcessError(str(report.get("message")))
            if predicate(report):
                return report

    def wait_ready(self, timeout: float = 30.0) -> Message:
        """Until every call has both bots in its room."""
        return self.wait_for(lambda message: message.get("event") == "ready", timeout)

    async def wait_ready_async(self) -> Message:
        """:meth:`wait_ready` for async code (30 s), without blocking the loop."""
        return await asyncio.to_thread(self.wait_ready)

    @property
    def sent_segments(self) -> list[tuple[str, SentSegment]]:
        """(room, segment) for every transcription update the bots reported."""
        with self._lock:
            return [
                (
                    m["room"],
                    SentSegment(
                        m["segment_id"],
                        m["role"],
                        m["text"],
                        m["final"],
                        m["channel"],
                        m["published_at"],
                    ),
                )
                for m in self.messages
                if m.get("event") == "segment"
            ]

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the child to end its calls (stdin closed), then make sure it is gone."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- child side ------------------------------------------------------------------------


def _report(message: Message) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass  # the parent is gone; the stdin EOF will stop us


async def _run(spec: Message) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def on_stdin() -> None:
        # the parent closing our stdin (or dying) is the stop request
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)

    def segment_reporter(room: str) -> Callable[[SentSegment], None]:
        return lambda segment: _report({"event": "segment", "room": room, **segment._asdict()})

    calls = [
        SimulatedCall(
            spec["url"],
            spec["api_key"],
            spec["api_secret"],
            call.room_name,
            call.options,
            caller_identity=call.caller_identity,
            on_event=lambda name, c: _report({"event": name, "room": c.room_name}),
            on_segment=segment_reporter(call.room_name),
        )
        for call in map(CallSpec.from_json, spec["calls"])
    ]
    try:
        await asyncio.gather(*(call.start() for call in calls))
        _report({"event": "ready", "rooms": [call.room_name for call in calls]})
        all_ended = asyncio.ensure_future(asyncio.gather(*(c.wait_ended() for c in calls)))
        stop_wait = asyncio.ensure_future(stop.wait())
        waiters: set[asyncio.Future[Any]] = {all_ended, stop_wait}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if all_ended.done():
            _report({"event": "done"})
            await stop_wait  # stay until told, so the parent decides when rooms empty
        all_ended.cancel()
    except Exception as exc:
        log.exception("bot process failed")
        _report({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        await asyncio.gather(*(call.stop() for call in calls), return_exceptions=True)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    line = sys.stdin.readline()
    try:
        spec = json.loads(line)
    except ValueError:
        log.error("expected one JSON spec line on stdin")
        return 2
    asyncio.run(_run(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())

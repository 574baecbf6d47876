"""The audit trail: who heard which call, from when to when, and why it stopped.

`AuditTrail` is one more observer of the `Dashboard`.  The calls being heard are
the model's ``placements``: the focused call while listening is on, and the
calls in the mix beside it (none over, none at 0 %).  Each heard call has its
own interval: when the heard set changes, the intervals of the calls that left
it are closed and one is opened for each call that joined, so a supervisor
moving focus with listening on across three calls leaves exactly three
intervals, and two calls heard at once in a mix leave two that overlap.

Every interval is two lines of ``audit.jsonl``, joined by the interval's id:

- ``{"event": "start", "interval", "ts", "conversation_id", "user", "host", "pid",
  "process"}`` when hearing begins, and
- ``{"event": "end", "interval", "ts", "conversation_id", "reason"}`` when it ends
  (``reason``: one of ``REASONS``).

Each line is handed to the kernel with one ``os.write`` on an ``O_APPEND``
descriptor at the moment the model says the call is heard.  The trail subscribes
to the model before the monitor does (the composition root builds it first), and
observers are told in the order they subscribed, so the start line is written
before the monitor tells the audio router, i.e. before any of the call's audio
plays, and it survives ``kill -9``.  A start without its end is an interval that
was interrupted (the process died), or, while that process still runs, one still
in progress: `read_audit` pairs the lines and says which.

UI-free; the only I/O is the one file.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from tui.core.jsonlines import json_line, utc_timestamp
from tui.monitor.model import Change, Clock, Dashboard

log = logging.getLogger(__name__)

FOCUS_MOVED = "focus moved"
LISTENING_OFF = "listening off"
PANE_CLOSED = "pane closed"
CALL_ENDED = "call ended"
WALLBOARD_ON = "wallboard on"
VOLUME_ZERO = "volume 0"
LEFT_MIX = "left the mix"
QUIT = "quit"
REASONS = (
    FOCUS_MOVED,
    LISTENING_OFF,
    PANE_CLOSED,
    CALL_ENDED,
    WALLBOARD_ON,
    VOLUME_ZERO,
    LEFT_MIX,
    QUIT,
)
# The changes after which the heard calls may be others (or none).
_WATCHED = frozenset({"focus", "listening", "calls", "call", "wallboard", "mix"})
MAX_PENDING_LINES = 10_000  # kept while the disk refuses, then the oldest go

IntervalStatus = Literal["ended", "interrupted", "in progress"]


@dataclass(frozen=True)
class Hearer:
    """Who is listening: the OS user on a host, in one process."""

    user: str
    host: str
    pid: int
    process: str | None  # tells this process from a later one with the same pid

    @classmethod
    def current(cls) -> Hearer:
        pid = os.getpid()
        return cls(os_user(), socket.gethostname(), pid, process_token(pid))


def os_user() -> str:
    """The login name (``getpass``: $LOGNAME, $USER..., then the password database)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container, say)
        return f"uid {os.getuid()}"


def process_token(pid: int) -> str | None:
    """``boot id:pid:start time`` of a running process (Linux), else None.

    A pid is reused after its process dies; the boot id and the start time in
    clock ticks since boot are not, so equal tokens mean the same process.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 is the start time; the command name (field 2) may hold spaces, so
    # count from after its closing parenthesis (field 3 is the first one there).
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):  # a zombie has died already
        return None
    return f"{boot}:{pid}:{fields[19]}"


@dataclass
class _Open:
    interval: str
    conversation_id: str


class AuditTrail:
    """Appends a start line when a call becomes heard and an end line when it stops.

    ``enabled=False`` watches nothing and writes nothing.  ``close(reason)`` ends
    the open intervals (the dashboard says ``"quit"``) and stops watching.
    """

    def __init__(
        self,
        dashboard: Dashboard,
        path: Path,
        *,
        enabled: bool = True,
        clock: Clock | None = None,
        hearer: Hearer | None = None,
    ) -> None:
        self.dashboard = dashboard
        self.path = Path(path).expanduser()
        self.enabled = enabled
        self._clock = clock or dashboard.clock
        self._hearer = hearer or Hearer.current()
        self._open: dict[str, _Open] = {}  # by conversation, in the order they opened
        self._fd: int | None = None
        self._needs_newline = False
        self._pending: list[bytes] = []
        self._unsubscribe: Callable[[], None] | None = None
        # The loop changes the model; a forced exit closes the trail from another thread.
        self._lock = threading.Lock()
        if enabled:
            self._unsubscribe = dashboard.subscribe(self._on_change)
            self._sync()  # listening may already be on

    @property
    def open_conversations(self) -> list[str]:
        """The calls heard now, as far as the trail is concerned, in the order they opened."""
        return list(self._open)

    def close(self, reason: str = QUIT) -> None:
        """End the open intervals with ``reason`` and stop watching; idempotent."""
        with self._lock:
            self._close(reason)

    def _close(self, reason: str) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for conversation_id in list(self._open):
            self._end(conversation_id, reason)
        if self._pending:
            try:
                self._write_pending()  # a last try for lines the disk refused
            except OSError as error:
                log.error("%d audit line(s) lost (%s): %s", len(self._pending), self.path, error)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- the model changed -------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind in _WATCHED:
            with self._lock:
                if self._unsubscribe is not None:  # not closed meanwhile
                    self._sync(change.kind)

    def _sync(self, change_kind: str | None = None) -> None:
        # What the router is told to play, from the same property: one rule for both.
        heard = self.dashboard.placements
        for conversation_id in [cid for cid in self._open if cid not in heard]:
            self._end(conversation_id, self._reason(conversation_id, change_kind))
        for conversation_id in heard:
            if conversation_id not in self._open:
                self._start(conversation_id)

    def _reason(self, conversation_id: str, change_kind: str | None) -> str:
        call = self.dashboard.get(conversation_id)
        if call is None:
            return PANE_CLOSED
        if call.ended:
            return CALL_ENDED
        if self.dashboard.wallboard:
            return WALLBOARD_ON
        if not self.dashboard.listening:
            return LISTENING_OFF
        if self.dashboard.volume(conversation_id) == 0:
            return VOLUME_ZERO
        if change_kind == "mix":  # taken out of the mix (by id) while another is focused
            return LEFT_MIX
        # Neither focused nor in the mix: the focused call left the mix when M was
        # pressed on it, and stops being heard when focus moves off it.
        return FOCUS_MOVED

    # -- the file ----------------------------------------------------------------------

    def _start(self, conversation_id: str) -> None:
        interval = uuid.uuid4().hex
        self._open[conversation_id] = _Open(interval, conversation_id)
        hearer = self._hearer
        self._append(
            {
                "event": "start",
                "interval": interval,
                "ts": utc_timestamp(self._clock()),
                "conversation_id": conversation_id,
                "user": hearer.user,
                "host": hearer.host,
                "pid": hearer.pid,
                "process": hearer.process,
            }
        )

    def _end(self, conversation_id: str, reason: str) -> None:
        opened = self._open.pop(conversation_id)
        self._append(
            {
                "event": "end",
                "interval": opened.interval,
                "ts": utc_timestamp(self._clock()),
                "conversation_id": opened.conversation_id,
                "reason": reason,
            }
        )

    def _append(self, record: dict[str, Any]) -> None:
        self._pending.append((json_line(record) + "\n").encode("utf-8"))
        if len(self._pending) > MAX_PENDING_LINES:
            del self._pending[0]
        try:
            self._write_pending()
        except OSError as error:
            # Never fail whoever changed the model (a key press): say so, keep the
            # line, and write it before the next one once the disk takes it.
            log.error("audit trail %s: cannot write (%s); line kept", self.path, error)

    def _write_pending(self) -> None:
        fd = self._descriptor()
        while self._pending:
            data = (b"\n" if self._needs_newline else b"") + self._pending[0]
            view = memoryview(data)
            try:
                while view:  # one write for a line; more only if the kernel took part of it
                    view = view[os.write(fd, view) :]
            except OSError:
                if len(view) < len(data):  # a fragment is there: start on a new line
                    self._needs_newline = True
                raise
            self._needs_newline = False
            del self._pending[0]

    def _descriptor(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # 0o600: who listened to which call is nobody else's business.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            size = os.fstat(fd).st_size
            if size:
                with self.path.open("rb") as file:
                    file.seek(size - 1)
                    self._needs_newline = file.read(1) != b"\n"
            self._fd = fd
        return self._fd


# -- reading it back ---------------------------------------------------------------------


@dataclass(frozen=True)
class HeardInterval:
    """One interval of hearing, its two lines paired."""

    interval: str
    conversation_id: str
    user: str
    host: str
    start: datetime
    end: datetime | None  # None: no end line
    reason: str | None
    status: IntervalStatus

    @property
    def duration(self) -> timedelta | None:
        return self.end - self.start if self.end is not None else None

    def to_record(self) -> dict[str, Any]:
        """The interval as one JSON object (``anyreach-tui audit --json``)."""
        duration = self.duration
        return {
            "interval": self.interval,
            "user": self.user,
            "host": self.host,
            "conversation_id": self.conversation_id,
            "start": utc_timestamp(self.start),
            "end": utc_timestamp(self.end) if self.end is not None else None,
            "duration_s": round(duration.total_seconds(), 3) if duration is not None else None,
            "reason": self.reason,
            "status": self.status,
        }


def read_audit(path: Path) -> list[HeardInterval]:
    """The intervals in ``path``, by start time; a missing file has none.

    A start without an end is ``"in progress"`` while the process that wrote it
    still runs on this host, else ``"interrupted"``.  Lines that are not complete
    JSON (cut by a power loss) and ends without a start are skipped.
    """
    starts: dict[str, dict[str, Any]] = {}
    ends: dict[str, dict[str, Any]] = {}
    for record in _records(path):
        interval = record.get("interval")
        if not isinstance(interval, str):
            continue
        if record.get("event") == "start":
            starts.setdefault(interval, record)
        elif record.get("event") == "end":
            ends.setdefault(interval, record)
    here = socket.gethostname()
    intervals = []
    for interval, start in starts.items():
        started = _parse_ts(start.get("ts"))
        if started is None:
            continue
        end = ends.get(interval)
        ended = _parse_ts(end.get("ts")) if end is not None else None
        status: IntervalStatus = "ended"
        if end is None or ended is None:
            running = start.get("host") == here and _still_running(start)
            status = "in progress" if running else "interrupted"
        intervals.append(
            HeardInterval(
                interval=interval,
                conversation_id=str(start.get("conversation_id", "")),
                user=str(start.get("user", "")),
                host=str(start.get("host", "")),
                start=started,
                end=ended,
                reason=str(end["reason"]) if end is not None and "reason" in end else None,
                status=status,
            )
        )
    return sorted(intervals, key=lambda i: i.start)


def _still_running(start: dict[str, Any]) -> bool:
    pid, token = start.get("pid"), start.get("process")
    return isinstance(pid, int) and token is not None and process_token(pid) == token


def _records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return
    with file:
        for raw in file:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


__all__ = [
    "CALL_ENDED",
    "FOCUS_MOVED",
    "LISTENING_OFF",
    "PANE_CLOSED",
    "QUIT",
    "REASONS",
    "VOLUME_ZERO",
    "WALLBOARD_ON",
    "AuditTrail",
    "HeardInterval",
    "Hearer",
    "os_user",
    "process_token",
    "read_audit",
]

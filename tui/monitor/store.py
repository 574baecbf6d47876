"""Transcripts on disk: one JSON-lines file per conversation, one line per settled segment.

Each line is handed to the kernel with a single ``os.write`` on an
``O_APPEND`` descriptor the moment its segment settles, so a crash or
``kill -9`` of the app loses no settled line (``fsync=True`` also survives a
power cut, at the cost of a disk flush per line).  A segment id is written at
most once per conversation: a reconnect replays segments, and a restarted app
reads the ids already in the file before appending.

Beside the segments, a file holds event lines (``append_event``): an ``"event"``
key and no ``"id"``, e.g. ``{"event": "health", "flag": "slow", "value": 4.2,
"ts": ...}``, so an export shows when a flag was raised.  ``read_transcript``
skips them; ``read_events`` returns them.

When the disk refuses a line (full, read-only) the line is kept, in order, and
written before the next one as soon as the disk takes it again: a full disk
delays lines, it does not lose them (up to ``MAX_PENDING_LINES`` per call).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tui.core.jsonlines import json_line, utc_timestamp

log = logging.getLogger(__name__)

FILE_SUFFIX = ".jsonl"
MAX_PENDING_LINES = 10_000  # per conversation, while the disk refuses: ~1 MB
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME_LENGTH = 100


class SettledSegment(Protocol):
    """What the store needs of a segment (``tui.listen.Transcript`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class StoredSegment:
    """One line of a transcript file."""

    id: str
    role: str
    text: str
    ts: str
    conversation_id: str

    def to_json(self) -> str:
        return json_line(
            {
                "id": self.id,
                "conversation_id": self.conversation_id,
                "role": self.role,
                "text": self.text,
                "ts": self.ts,
            }
        )


def transcript_file_name(conversation_id: str) -> str:
    """A file name that is safe for any id and never collides for two different ids.

    Ids made only of letters, digits, ``.``, ``_`` and ``-`` (every real one)
    keep their name; anything else is replaced and a short hash of the
    original id is added, so ``a/b`` and ``a_b`` stay apart and ``..`` cannot
    climb out of the folder.
    """
    if not conversation_id:
        raise ValueError("empty conversation id")
    safe = _UNSAFE_CHARACTERS.sub("_", conversation_id).lstrip(".")[:_MAX_NAME_LENGTH]
    if safe != conversation_id:
        digest = hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe or 'conversation'}-{digest}"
    return safe + FILE_SUFFIX


def read_transcript(path: Path) -> list[StoredSegment]:
    """The segments saved in ``path``, in order, each id once.

    A line that is not complete JSON (cut by a power loss) is skipped, not fatal.
    """
    segments: list[StoredSegment] = []
    seen: set[str] = set()
    for record in _records(path):
        segment_id = str(record["id"])
        if segment_id in seen:
            continue
        seen.add(segment_id)
        segments.append(
            StoredSegment(
                id=segment_id,
                role=str(record.get("role", "")),
                text=str(record.get("text", "")),
                ts=str(record.get("ts", "")),
                conversation_id=str(record.get("conversation_id", "")),
            )
        )
    return segments


def read_events(path: Path) -> list[dict[str, Any]]:
    """The event lines saved in ``path`` (``append_event``), in order."""
    return list(_records(path, events=True))


def _records(path: Path, *, events: bool = False) -> Iterator[dict[str, Any]]:
    """Segment records (with an ``id``), or with ``events`` the event lines."""
    with path.open("rb") as file:
        for raw in file:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if events:
                if isinstance(record.get("event"), str):
                    yield record
            elif "id" in record and "event" not in record:
                yield record


class _OpenTranscript:
    """The append descriptor and the ids already written, for one conversation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: set[str] = set()
        # A file cut mid-line must not glue our first line onto that fragment.
        self.needs_newline = False
        # Lines the disk refused, oldest first, with their segment ids: written first.
        self.pending: list[tuple[str, bytes]] = []
        if path.exists():
            self.ids = {str(record["id"]) for record in _records(path)}
            with path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                if size:
                    file.seek(-1, os.SEEK_END)
                    self.needs_newline = file.read(1) != b"\n"
        # 0o600: transcripts are what callers said; other users must not read them.
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


class TranscriptStore:
    """Appends settled segments to ``<directory>/<conversation>.jsonl``.

    ``enabled=False`` keeps the same interface and writes nothing.  ``append``
    raises ``OSError`` when the disk refuses (full, read-only): the caller
    decides how to tell the user; the line is kept and written by a later
    ``append`` (or ``close``) once the disk takes it.  Safe to call from several
    threads.
    """

    def __init__(self, directory: Path, *, enabled: bool = True, fsync: bool = False) -> None:
        self.directory = Path(directory).expanduser()
        self.enabled = enabled
        self.fsync = fsync
        self._open: dict[str, _OpenTranscript] = {}
        self._lock = threading.Lock()

    def path_for(self, conversation_id: str) -> Path:
        return self.directory / transcript_file_name(conversation_id)

    def append(
        self, conversation_id: str, segment: SettledSegment, *, settled_at: datetime | None = None
    ) -> bool:
        """Write one settled segment now.  False when not written (seen before, or disabled).

        A segment whose ``final`` attribute is False is still interim and is refused.
        """
        if not self.enabled or getattr(segment, "final", True) is False:
            return False
        with self._lock:
            transcript = self._transcript(conversation_id)
            segment_id = str(segment.id)
            if segment_id in transcript.ids or any(
                pending_id == segment_id for pending_id, _ in transcript.pending
            ):
                return False
            line = StoredSegment(
                segment_id,
                segment.role,
                segment.text,
                utc_timestamp(settled_at),
                conversation_id,
            ).to_json()
            transcript.pending.append((segment_id, (line + "\n").encode("utf-8")))
            if len(transcript.pending) > MAX_PENDING_LINES:
                del transcript.pending[0]  # the disk has refused for hours: keep the newest
            self._write_pending(transcript)  # raises OSError while the disk refuses
            return True

    def append_event(
        self, conversation_id: str, event: str, fields: dict[str, Any], *, at: datetime | None
    ) -> bool:
        """Write one event line now: ``{"event": event, **fields, "ts": at}``.

        Kept and retried like a segment when the disk refuses (raises ``OSError``).
        """
        if not self.enabled:
            return False
        record = {
            "event": event,
            "conversation_id": conversation_id,
            **fields,
            "ts": utc_timestamp(at),
        }
        with self._lock:
            transcript = self._transcript(conversation_id)
            # No segment id: "" is never one, so it marks nothing as written.
            transcript.pending.append(("", (json_line(record) + "\n").encode("utf-8")))
            if len(transcript.pending) > MAX_PENDING_LINES:
                del transcript.pending[0]
            self._write_pending(transcript)
            return True

    def _write_pending(self, transcript: _OpenTranscript) -> None:
        while transcript.pending:
            segment_id, line = transcript.pending[0]
            data = (b"\n" if transcript.needs_newline else b"") + line
            try:
                self._write_all(transcript.fd, data)
            except OSError:
                # Part of the line may be on disk: the next attempt starts on a new
                # line, and readers skip the fragment.
                transcript.needs_newline = True
                raise
            transcript.needs_newline = False
            if segment_id:
                transcript.ids.add(segment_id)
            del transcript.pending[0]
            if self.fsync:
                os.fsync(transcript.fd)

    def has(self, conversation_id: str, segment_id: str) -> bool:
        """Whether that segment is already saved (reads the file on first use)."""
        if not self.enabled:
            return False
        with self._lock:
            return segment_id in self._transcript(conversation_id).ids

    def close(self, conversation_id: str) -> None:
        """Release the file of a conversation that has retired (a last try for kept lines)."""
        with self._lock:
            transcript = self._open.pop(conversation_id, None)
            if transcript is not None:
                try:
                    self._write_pending(transcript)
                except OSError as error:
                    log.error(
                        "%d transcript line(s) of %s could not be saved: %s",
                        len(transcript.pending),
                        conversation_id,
                        error,
                    )
                os.close(transcript.fd)

    def close_all(self) -> None:
        for conversation_id in list(self._open):
            self.close(conversation_id)

    def __enter__(self) -> TranscriptStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close_all()

    def _transcript(self, conversation_id: str) -> _OpenTranscript:
        transcript = self._open.get(conversation_id)
        if transcript is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            transcript = _OpenTranscript(self.path_for(conversation_id))
            self._open[conversation_id] = transcript
        return transcript

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        # One write for a normal line; the loop only matters if the kernel
        # accepts part of a huge line (it keeps O_APPEND lines contiguous).
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

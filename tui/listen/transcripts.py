"""Turn LiveKit transcription traffic into transcript events (pure logic, no I/O).

Two channels carry transcription (see docs/livekit-notes.md):

* ``lk.transcription`` text streams, the source of truth.  Every stream names its
  segment in ``lk.segment_id``.  Agent speech is one stream per segment whose
  chunks are appended; caller speech is a new short stream per update carrying
  the whole text so far.  Both cases reduce to one rule: a segment's text is the
  text accumulated by its newest stream.  A segment is settled when a stream
  ends with ``lk.transcription_final`` = "true" (header or trailer) or breaks.
* Legacy transcription packets, a fallback for agents that send nothing else.
  Current agents send them too (to rooms with old clients) under *different*
  segment ids for the same words, so a legacy segment is held back briefly and
  dropped as soon as any stream arrives; once one has, legacy packets are
  ignored for good.

Every segment yields interim events while its text changes and exactly one
final event.  Methods return the events to emit, in order; the session owns
timing (it calls :meth:`due` at :meth:`next_deadline`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

ATTR_SEGMENT_ID = "lk.segment_id"
ATTR_FINAL = "lk.transcription_final"
TOPIC_TRANSCRIPTION = "lk.transcription"
DEFAULT_LEGACY_HOLD = 1.5  # seconds: long enough for the stream twin of a legacy packet to show

Role = Literal["agent", "user"]


@dataclass(frozen=True)
class Transcript:
    id: str
    role: Role
    text: str
    final: bool


@dataclass(frozen=True)
class LegacySegment:
    id: str
    text: str
    final: bool


class ChunkDecoder:
    """Text of one stream's chunks: plain text, or agents' ``json_format`` lines.

    With ``json_format`` every chunk is a JSON object with a ``text`` field plus a
    newline; a line may in principle be split across chunks, so partial lines
    are buffered until their newline (or the end of the stream).
    """

    def __init__(self) -> None:
        self._json: bool | None = None  # decided by the first non-blank chunk
        self._pending = ""

    def feed(self, chunk: str) -> str:
        if self._json is None:
            if not chunk.strip():
                return chunk
            self._json = chunk.lstrip().startswith("{") and _json_text(chunk) is not None
        if not self._json:
            return chunk
        self._pending += chunk
        *lines, self._pending = self._pending.split("\n")
        return "".join(_json_text(line) or "" for line in lines)

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        return (_json_text(rest) or "") if self._json else ""


def _json_text(line: str) -> str | None:
    """The ``text`` of one JSON line, None if it is not such a line."""
    candidate = line.strip()
    if not candidate:
        return None
    try:
        value = json.loads(candidate.split("\n", 1)[0])
    except ValueError:
        return None
    text = value.get("text") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


@dataclass
class _Segment:
    id: str
    role: Role
    speaker: str
    text: str = ""
    shown: bool = False  # an event was emitted for it
    current_stream: str | None = None
    stream_open: bool = False


@dataclass
class _Stream:
    stream_id: str
    segment_id: str
    final_in_header: bool
    keyed: bool  # carried lk.segment_id: otherwise the stream is a whole segment
    decoder: ChunkDecoder = field(default_factory=ChunkDecoder)
    text: str = ""


@dataclass
class _LegacyState:
    segment: _Segment
    hold_until: float
    final: bool = False

    @property
    def held(self) -> bool:
        return self.hold_until >= 0


class SegmentAssembler:
    def __init__(self, legacy_hold: float = DEFAULT_LEGACY_HOLD) -> None:
        self._legacy_hold = legacy_hold
        self._segments: dict[str, _Segment] = {}
        self._streams: dict[str, _Stream] = {}
        self._legacy: dict[str, _LegacyState] = {}
        self._finished: set[str] = set()  # segment ids already given their final event
        self._streams_seen = False

    # ---- text streams -------------------------------------------------------------
    def stream_opened(
        self, stream_id: str, attributes: Mapping[str, str] | None, role: Role, speaker: str
    ) -> list[Transcript]:
        attrs = attributes or {}
        out = self._switch_to_streams() if not self._streams_seen else []
        segment_id = attrs.get(ATTR_SEGMENT_ID) or stream_id
        stream = _Stream(
            stream_id=stream_id,
            segment_id=segment_id,
            final_in_header=_is_true(attrs.get(ATTR_FINAL)),
            keyed=ATTR_SEGMENT_ID in attrs,
        )
        self._streams[stream_id] = stream
        if segment_id in self._finished:
            return out
        segment = self._segments.get(segment_id)
        if segment is None:
            segment = self._segments[segment_id] = _Segment(segment_id, role, speaker)
        # The newest stream of a segment wins: caller updates each carry the full text.
        segment.current_stream = stream_id
        segment.stream_open = True
        return out

    def stream_chunk(self, stream_id: str, chunk: str) -> list[Transcript]:
        stream = self._streams.get(stream_id)
        if stream is None:
            return []
        stream.text += stream.decoder.feed(chunk)
        segment = self._current_segment_of(stream)
        if segment is None or stream.final_in_header or not stream.text:
            return []  # a final stream is shown once, whole, when it ends
        return self._interim(segment, stream.text)

    def stream_closed(
        self, stream_id: str, attributes: Mapping[str, str] | None, *, broken: bool
    ) -> list[Transcript]:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return []
        stream.text += stream.decoder.finish()
        segment = self._current_segment_of(stream)
        if segment is None:
            return []
        segment.stream_open = False
        final = (
            broken
            or stream.final_in_header
            or _is_true((attributes or {}).get(ATTR_FINAL))
            or not stream.keyed
        )
        # A broken stream that delivered nothing keeps the segment's last text.
        text = stream.text or segment.text
        if final:
            return self._final(segment, text)
        return self._interim(segment, text) if text else []

    def _current_segment_of(self, stream: _Stream) -> _Segment | None:
        segment = self._segments.get(stream.segment_id)
        if segment is None or segment.current_stream != stream.stream_id:
            return None  # settled already, or superseded by a newer stream
        return segment

    # ---- legacy packets -----------------------------------------------------------
    def legacy(
        self, speaker: str, role: Role, segments: Iterable[LegacySegment], now: float
    ) -> list[Transcript]:
        if self._streams_seen:
            return []
        out: list[Transcript] = []
        for incoming in segments:
            if incoming.id in self._finished:
                continue
            state = self._legacy.get(incoming.id)
            if state is None:
                state = self._legacy[incoming.id] = _LegacyState(
                    _Segment(incoming.id, role, speaker), hold_until=now + self._legacy_hold
                )
            if state.held:
                state.segment.text = incoming.text
                state.final = state.final or incoming.final
            elif incoming.final:
                out += self._final(state.segment, incoming.text)
            else:
                out += self._interim(state.segment, incoming.text)
        return out

    def next_deadline(self) -> float | None:
        holds = [s.hold_until for s in self._legacy.values() if s.held]
        return min(holds) if holds else None

    def due(self, now: float) -> list[Transcript]:
        """Release legacy segments whose hold has expired with no stream in sight."""
        out: list[Transcript] = []
        for state in list(self._legacy.values()):
            if state.held and state.hold_until <= now:
                out += self._release(state)
        return out

    def _release(self, state: _LegacyState) -> list[Transcript]:
        state.hold_until = -1.0
        if state.final:
            return self._final(state.segment, state.segment.text)
        text = state.segment.text
        return self._interim(state.segment, text) if text else []

    def _switch_to_streams(self) -> list[Transcript]:
        """The first stream arrived: legacy packets are duplicates from now on."""
        self._streams_seen = True
        out: list[Transcript] = []
        for state in list(self._legacy.values()):
            # Held ones were never shown: drop them.  One already shown (it outlived
            # its hold) still gets its single final so nothing is left dangling.
            if not state.held and state.segment.shown:
                out += self._final(state.segment, state.segment.text)
        self._legacy.clear()
        return out

    # ---- endings ------------------------------------------------------------------
    def speaker_left(self, speaker: str) -> list[Transcript]:
        """Settle the speaker's segments; those with a stream still open settle when it ends."""
        out: list[Transcript] = []
        for segment in list(self._segments.values()):
            if segment.speaker == speaker and not segment.stream_open:
                out += self._final(segment, segment.text)
        for state in list(self._legacy.values()):
            if state.segment.speaker == speaker:
                state.final = True
                out += (
                    self._release(state)
                    if state.held
                    else self._final(state.segment, state.segment.text)
                )
        return out

    def finish_all(self) -> list[Transcript]:
        """Settle everything still open (the session is over)."""
        out: list[Transcript] = []
        for state in list(self._legacy.values()):
            state.final = True
            out += (
                self._release(state)
                if state.held
                else self._final(state.segment, state.segment.text)
            )
        for segment in list(self._segments.values()):
            out += self._final(segment, segment.text)
        self._streams.clear()
        return out

    # ---- emission -----------------------------------------------------------------
    def _interim(self, segment: _Segment, text: str) -> list[Transcript]:
        if text == segment.text and segment.shown:
            return []
        segment.text = text
        segment.shown = True
        return [Transcript(segment.id, segment.role, text, final=False)]

    def _final(self, segment: _Segment, text: str) -> list[Transcript]:
        if segment.id in self._finished:
            return []
        self._finished.add(segment.id)
        self._segments.pop(segment.id, None)
        self._legacy.pop(segment.id, None)
        if not text and not segment.shown:
            return []  # nothing was ever said: nothing to settle
        return [Transcript(segment.id, segment.role, text, final=True)]


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"

"""A saved transcript as Markdown (for people) or JSON lines (for programs), UI-free.

``anyreach-tui export`` (``tui.commands.export``) reads the file and writes the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tui.core.jsonlines import json_line
from tui.monitor.store import StoredSegment

# The transcript file's event lines (``TranscriptStore.append_event``) are not
# segments: ``read_transcript`` skips them, so an export holds what was said; pass
# ``events`` (``read_events``) to have the health flags shown where they happened.
HEALTH_WORDS = {"slow": "SLOW", "dead_air": "DEAD AIR", "talk_over": "TALK-OVER", "loop": "LOOP"}

ROLE_NAMES = {"agent": "Agent", "user": "Caller"}
# Characters that would turn spoken words into Markdown structure or HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def render_jsonl(
    segments: Sequence[StoredSegment], events: Sequence[Mapping[str, Any]] = ()
) -> str:
    lines = [(s.ts, s.to_json()) for s in segments]
    lines += [(str(e.get("ts", "")), json_line(dict(e))) for e in events]
    if events:
        lines.sort(key=lambda line: line[0])  # stable: equal times keep segments first
    return "".join(line + "\n" for _, line in lines)


def _event_words(event: Mapping[str, Any]) -> str:
    if event.get("event") != "health":
        return escape_markdown(str(event.get("event", "")))
    flag = str(event.get("flag", ""))
    words = HEALTH_WORDS.get(flag, escape_markdown(flag))
    value = event.get("value")
    if isinstance(value, int | float) and flag in ("slow", "dead_air"):
        words += f" {value:.1f}s"
    elif isinstance(value, int | float) and flag == "talk_over":
        words += f" ×{int(value)}"
    return words


def render_markdown(
    conversation_id: str,
    segments: Sequence[StoredSegment],
    events: Sequence[Mapping[str, Any]] = (),
) -> str:
    lines = [f"# Conversation {escape_markdown(conversation_id)}", ""]
    if segments:
        lines += [f"{len(segments)} segments, {segments[0].ts} to {segments[-1].ts} (UTC).", ""]
    entries: list[tuple[str, str]] = []
    for segment in segments:
        speaker = ROLE_NAMES.get(segment.role, escape_markdown(segment.role.capitalize()))
        entries.append(
            (segment.ts, f"**{speaker}** `{_clock(segment.ts)}`: {escape_markdown(segment.text)}")
        )
    for event in events:
        ts = str(event.get("ts", ""))
        entries.append((ts, f"_⚠ {_event_words(event)}_ `{_clock(ts)}`"))
    if events:
        entries.sort(key=lambda entry: entry[0])
    for _, line in entries:
        lines += [line, ""]
    return "\n".join(lines)


def _clock(ts: str) -> str:
    return ts[11:19] if len(ts) >= 19 else ts


def escape_markdown(text: str) -> str:
    """Transcript text is data: shown literally, one paragraph per segment."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))

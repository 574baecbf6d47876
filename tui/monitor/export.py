"""A saved transcript as Markdown (for people) or JSON lines (for programs), UI-free.

``anyreach-tui export`` (``tui.commands.export``) reads the file and writes the result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tui.monitor.store import StoredSegment

ROLE_NAMES = {"agent": "Agent", "user": "Caller"}
# Characters that would turn spoken words into Markdown structure or HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def render_jsonl(segments: Sequence[StoredSegment]) -> str:
    return "".join(segment.to_json() + "\n" for segment in segments)


def render_markdown(conversation_id: str, segments: Sequence[StoredSegment]) -> str:
    lines = [f"# Conversation {escape_markdown(conversation_id)}", ""]
    if segments:
        lines += [f"{len(segments)} segments, {segments[0].ts} to {segments[-1].ts} (UTC).", ""]
    for segment in segments:
        speaker = ROLE_NAMES.get(segment.role, escape_markdown(segment.role.capitalize()))
        clock = segment.ts[11:19] if len(segment.ts) >= 19 else segment.ts
        lines += [f"**{speaker}** `{clock}`: {escape_markdown(segment.text)}", ""]
    return "\n".join(lines)


def escape_markdown(text: str) -> str:
    """Transcript text is data: shown literally, one paragraph per segment."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))

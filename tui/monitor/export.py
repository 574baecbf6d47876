"""``anyreach-tui export CONVERSATION_ID --format md|jsonl [--output PATH]``.

Writes a saved transcript (see ``tui.monitor.store``) as Markdown for people
or as JSON lines for programs, to stdout or a file.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tui.config import EXIT_BAD_CONFIG, add_config_arguments, settings_or_report
from tui.monitor.store import StoredSegment, TranscriptStore, read_transcript

EXIT_OK = 0
EXIT_NO_TRANSCRIPT = 4
EXIT_WRITE_FAILED = 1

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui export",
        description="Write a saved transcript as Markdown or JSON lines.",
        epilog=(
            "Transcripts are read from [transcripts] dir in the config "
            "(default $XDG_DATA_HOME/anyreach-tui/transcripts).  Exit status: 0 written, "
            f"1 could not write the output, {EXIT_BAD_CONFIG} bad configuration or arguments, "
            f"{EXIT_NO_TRANSCRIPT} no saved transcript for that conversation."
        ),
    )
    parser.add_argument("conversation_id", metavar="CONVERSATION_ID")
    parser.add_argument(
        "--format", choices=("md", "jsonl"), default="md", help="md (Markdown, default) or jsonl"
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        metavar="PATH",
        help="file to write (default: standard output)",
    )
    add_config_arguments(parser, ("--transcripts-dir",))
    return parser


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    settings = settings_or_report(args, stderr)
    if settings is None:
        return EXIT_BAD_CONFIG
    path = TranscriptStore(settings.transcripts.dir).path_for(args.conversation_id)
    if not path.exists():
        print(
            f"anyreach-tui export: no saved transcript for {args.conversation_id!r} "
            f"(looked for {path})",
            file=stderr,
        )
        return EXIT_NO_TRANSCRIPT
    segments = read_transcript(path)
    if args.format == "md":
        document = render_markdown(args.conversation_id, segments)
    else:
        document = render_jsonl(segments)
    if args.output is None:
        stdout.write(document)
        stdout.flush()
        return EXIT_OK
    try:
        args.output.expanduser().write_text(document, encoding="utf-8")
    except OSError as error:
        print(f"anyreach-tui export: cannot write {args.output}: {error}", file=stderr)
        return EXIT_WRITE_FAILED
    print(f"wrote {len(segments)} segments to {args.output}", file=stderr)
    return EXIT_OK

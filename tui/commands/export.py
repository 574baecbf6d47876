"""``anyreach-tui export CONVERSATION_ID --format md|jsonl [--output PATH]``.

Writes a saved transcript (see ``tui.monitor.store``) as Markdown for people or
as JSON lines for programs (``tui.monitor.export`` renders it), to stdout or a file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.config import add_config_arguments, settings_or_report
from tui.monitor.export import render_jsonl, render_markdown
from tui.monitor.store import TranscriptStore, read_events, read_transcript

EXIT_CODES = (ExitCode.OK, ExitCode.FAILURE, ExitCode.BAD_CONFIG, ExitCode.NOT_FOUND)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui export",
        description="Write a saved transcript as Markdown or JSON lines.",
        epilog=(
            "Transcripts are read from [transcripts] dir in the config\n"
            "(default $XDG_DATA_HOME/anyreach-tui/transcripts).\n\n" + exit_codes_help(EXIT_CODES)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        return ExitCode.BAD_CONFIG
    path = TranscriptStore(settings.transcripts.dir).path_for(args.conversation_id)
    if not path.exists():
        print(
            f"anyreach-tui export: no saved transcript for {args.conversation_id!r} "
            f"(looked for {path})",
            file=stderr,
        )
        return ExitCode.NOT_FOUND
    segments = read_transcript(path)
    events = read_events(path)  # health flags, where they happened
    if args.format == "md":
        document = render_markdown(args.conversation_id, segments, events)
    else:
        document = render_jsonl(segments, events)
    if args.output is None:
        stdout.write(document)
        stdout.flush()
        return ExitCode.OK
    try:
        args.output.expanduser().write_text(document, encoding="utf-8")
    except OSError as error:
        print(f"anyreach-tui export: cannot write {args.output}: {error}", file=stderr)
        return ExitCode.FAILURE
    print(f"wrote {len(segments)} segments to {args.output}", file=stderr)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

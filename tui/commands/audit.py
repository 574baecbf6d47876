"""``anyreach-tui audit [--since DATE] [--conversation ID] [--json]``: who heard which call.

Reads the audit trail the dashboard appends to (``[audit] file``, default
``$XDG_STATE_HOME/anyreach-tui/audit.jsonl``; see ``tui.monitor.audit``), pairs
each interval's start and end lines, and prints one row per interval: a table
in local time, or one JSON object per line (UTC) with ``--json``.  A start
with no end is shown as interrupted (the dashboard was killed), or in progress
while the dashboard that wrote it still runs on this machine.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TextIO

from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.config import add_config_arguments, settings_or_report
from tui.core.jsonlines import json_line
from tui.monitor.audit import REASONS, HeardInterval, read_audit
from tui.monitor.text import safe_text

EXIT_CODES = (ExitCode.OK, ExitCode.BAD_CONFIG)
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
COLUMNS = ("USER", "HOST", "CONVERSATION", "START", "END", "DURATION", "REASON")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or time (local unless it says its zone), or ``30m`` / ``12h`` / ``7d`` ago."""
    now = now or datetime.now().astimezone()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date: {text!r} (use 2026-11-25, 2026-11-25T14:30, or 30m, 12h, 7d)"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()  # naive: local time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui audit",
        description=(
            "Print the audit trail: every interval in which a call was heard (each call\n"
            "of a mix has its own), who heard it (OS user, host), when, and why it\n"
            f"stopped: {', '.join(REASONS)}.\n"
            'A start with no end shows "(interrupted)": the dashboard was killed while\n'
            "the call was heard."
        ),
        epilog=(
            "The trail is [audit] file in the config\n"
            "(default $XDG_STATE_HOME/anyreach-tui/audit.jsonl).\n\n" + exit_codes_help(EXIT_CODES)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        default=None,
        metavar="DATE",
        help="only intervals that started or ended at or after DATE "
        "(2026-11-25, 2026-11-25T14:30 in local time, or 30m, 12h, 7d ago)",
    )
    parser.add_argument("--conversation", default=None, metavar="ID", help="only this conversation")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per interval (times in UTC)"
    )
    add_config_arguments(parser, ())
    return parser


def select(
    intervals: Sequence[HeardInterval], since: datetime | None, conversation: str | None
) -> list[HeardInterval]:
    chosen = []
    for interval in intervals:
        if conversation is not None and interval.conversation_id != conversation:
            continue
        if since is not None and interval.start < since:
            if interval.end is None or interval.end < since:
                continue
        chosen.append(interval)
    return chosen


def format_duration(duration: timedelta | None) -> str:
    if duration is None:
        return "-"
    seconds = max(0, round(duration.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02}m{seconds:02}s"
    if minutes:
        return f"{minutes}m{seconds:02}s"
    return f"{seconds}s"


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(intervals: Sequence[HeardInterval]) -> str:
    """The intervals as a plain-text table (every cell safe to show on a terminal)."""
    zone = datetime.now().astimezone().tzname() or "local"
    header = list(COLUMNS)
    header[3], header[4] = f"START ({zone})", f"END ({zone})"
    rows = [header]
    for interval in intervals:
        end = _local(interval.end) if interval.end is not None else f"({interval.status})"
        cells = [
            interval.user,
            interval.host,
            interval.conversation_id,
            _local(interval.start),
            end,
            format_duration(interval.duration),
            interval.reason or "-",
        ]
        rows.append([safe_text(cell, 200).replace("\n", " ") for cell in cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # bad arguments (2), or --help (0)
        return ExitCode.BAD_CONFIG if exit_.code else ExitCode.OK
    settings = settings_or_report(args, stderr)
    if settings is None:
        return ExitCode.BAD_CONFIG
    path = settings.audit.file
    intervals = select(read_audit(path), args.since, args.conversation)
    if args.json:
        for interval in intervals:
            stdout.write(json_line(interval.to_record()) + "\n")
    elif intervals:
        stdout.write(table(intervals))
    else:
        print(
            f"No call heard{' in that range' if args.since or args.conversation else ''} "
            f"(audit trail: {path}).",
            file=stdout,
        )
    stdout.flush()
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

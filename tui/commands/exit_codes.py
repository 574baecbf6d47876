"""The exit statuses of every ``anyreach-tui`` command: one table for code, ``--help``, README."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """An exit status and the one line that says what it means."""

    description: str

    def __new__(cls, value: int, description: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    OK = 0, "success (tail: the call ended normally; with --all, stopped by Ctrl-C or SIGTERM)"
    FAILURE = 1, "failure: the demo could not start, an export could not be written, no device"
    BAD_CONFIG = 2, "bad configuration or arguments (including no API key)"
    AUTH = 3, "authentication or scope: the API answered 401 or 403"
    NOT_FOUND = (
        4,
        "not found: no such conversation, or its room does not exist yet (404); "
        "export: no saved transcript",
    )
    NOT_ACTIVE = 5, "not active: the call is over or has not started (409)"
    API_UNAVAILABLE = 6, "the Anyreach API is unavailable (network, 5xx, timeouts)"
    NO_ROOM = 7, "could not connect to the call's LiveKit room"
    INTERRUPTED = 130, "interrupted (Ctrl-C, SIGTERM, SIGHUP) while following one call"


def exit_codes_help(codes: Iterable[ExitCode] = ExitCode) -> str:
    """The ``exit status:`` table for a ``--help`` epilog (every code, or those given)."""
    shown = sorted(codes)
    width = max(len(str(int(code))) for code in shown)
    lines = ["exit status:"]
    lines += [f"  {int(code):<{width}}  {code.description}" for code in shown]
    return "\n".join(lines)


def readme_rows() -> list[str]:
    """The README's exit-status table, as Markdown rows (checked by a test)."""
    return [f"| {int(code)} | {code.description} |" for code in ExitCode]

"""Make untrusted transcript text safe to put on a terminal, without any UI library.

Transcript text comes from the call (speech-to-text of what a stranger said, or an
agent's output) and is therefore data: an escape sequence or a control character in
it must show as text and never act on the terminal.  The UI layer additionally
renders it with ``rich.text.Text`` (never markup), so ``[bold]`` stays literal there.
"""

from __future__ import annotations

import re

# A single displayed segment is cut here: a 100 KB "sentence" would otherwise cost
# seconds of wrapping on every repaint and bury every other line of the pane.
MAX_DISPLAY_CHARS = 2_000
TRUNCATION_MARK = " … [cut]"

# C0 controls except newline, DEL, C1 controls, and the bidirectional overrides and
# isolates that can make a line display in a different order than it is stored.
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        # Unicode "control pictures" (U+2400..U+241F): ESC shows as ␛, CR as ␍.
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\u{code:04x}"


def safe_text(text: str, max_chars: int = MAX_DISPLAY_CHARS) -> str:
    """Return ``text`` with every control character made visible and its length bounded.

    Newlines are kept (they only start a new line); tabs become a visible mark too,
    since a tab's width depends on the terminal.
    """
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARK
    return _UNSAFE.sub(_visible, text)

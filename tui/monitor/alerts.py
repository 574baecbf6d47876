"""Keyword alerts: which words in a transcript line should catch a supervisor's eye.

Pure logic, no UI.  A keyword is either a word or phrase (``cancel``,
``speak to a manager``) or a regular expression written between slashes
(``/refund(s|ed)?/``).  Both match whole words only and ignore case, so
``cancel`` fires on "Cancel it" but not on "cancellation"; write
``/cancel\\w*/`` to catch every form.  The matcher returns character spans so
the UI can highlight exactly the words that fired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_KEYWORDS: tuple[str, ...] = ("cancel", "supervisor", "complaint")

# Lookarounds rather than \b: \b misbehaves when a keyword starts or ends with a
# non-word character ("c++", "$100"), while "no word character on either side"
# means the same thing for every keyword.
_WORD_START = r"(?<!\w)"
_WORD_END = r"(?!\w)"


class AlertPatternError(ValueError):
    """A keyword that cannot be used: empty, or a regular expression that does not compile."""


@dataclass(frozen=True)
class AlertMatch:
    """One keyword found in a text: ``text[start:end]`` is what matched."""

    keyword: str
    start: int
    end: int
    matched: str


def is_regex_keyword(keyword: str) -> bool:
    return len(keyword) >= 2 and keyword.startswith("/") and keyword.endswith("/")


def compile_keyword(keyword: str) -> re.Pattern[str]:
    """The whole-word, case-insensitive pattern for one keyword."""
    if is_regex_keyword(keyword):
        body = keyword[1:-1]
        if not body.strip():
            raise AlertPatternError(f"empty regular expression {keyword!r}")
        try:
            re.compile(body)
        except re.error as error:
            raise AlertPatternError(f"bad regular expression {keyword!r}: {error}") from None
    else:
        words = keyword.split()
        if not words:
            raise AlertPatternError("empty keyword")
        # A phrase matches across any run of whitespace ("speak  to\na manager").
        body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(f"{_WORD_START}(?:{body}){_WORD_END}", re.IGNORECASE)


class AlertMatcher:
    """Finds the configured keywords in transcript text."""

    def __init__(self, keywords: Iterable[str] = DEFAULT_KEYWORDS) -> None:
        self.keywords: tuple[str, ...] = tuple(keywords)
        self._patterns = [(keyword, compile_keyword(keyword)) for keyword in self.keywords]

    def find(self, text: str) -> list[AlertMatch]:
        """Every match of every keyword, ordered by position (then by longest first)."""
        found = [
            AlertMatch(keyword, m.start(), m.end(), m.group(0))
            for keyword, pattern in self._patterns
            for m in pattern.finditer(text)
            if m.end() > m.start()  # a regex that can match nothing must not flag every line
        ]
        found.sort(key=lambda match: (match.start, -match.end))
        return found

    def matches(self, text: str) -> bool:
        return bool(self.find(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Non-overlapping ``(start, end)`` ranges to highlight, overlapping matches merged."""
        merged: list[tuple[int, int]] = []
        for match in self.find(text):
            if merged and match.start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], match.end))
            else:
                merged.append((match.start, match.end))
        return merged

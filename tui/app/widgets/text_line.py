"""Putting text on a one-line ``Static`` without paying for work nothing needs."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def show_text(line: Static, text: Text, *, layout: bool) -> None:
    """Put ``text`` on ``line``, doing nothing when it is already there.

    Headers and the status bar are rebuilt on every tick and model change, and a plain
    ``Static.update`` reflows the whole screen each time: at 16 panes that layout work
    was a quarter of the UI loop's time.  ``layout=False`` for lines whose size does not
    depend on their text (a fixed height and a ``1fr`` or full width).
    """
    if line.content == text:  # rich Text compares its plain text and its styles
        return
    line.update(text, layout=layout)

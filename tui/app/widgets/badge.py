"""The state badge of a pane: `Connecting…`, `LIVE`, `Reconnecting…`, `Ended`, an error."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.monitor.model import Badge, BadgeKind
from tui.monitor.text import safe_text

MAX_BADGE_CHARS = 72  # the longest API error words (61) fit whole


class StateBadge(Static):
    """One word (or a short error) whose colour class follows the badge kind."""

    DEFAULT_CSS = """
    StateBadge { width: auto; padding: 0 1; text-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__("", markup=False)
        self._shown: Badge | None = None

    def show_badge(self, badge: Badge) -> None:
        if badge == self._shown:
            return
        self._shown = badge
        for kind in BadgeKind:
            self.set_class(kind is badge.kind, f"-{kind.value}")
        # An error text comes from the network: shown literally and bounded.
        self.update(Text(safe_text(badge.text, MAX_BADGE_CHARS)))

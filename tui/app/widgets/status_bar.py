"""The top line: counts of calls by state, listening state, one-off notices."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.app.widgets.text_line import show_text
from tui.monitor.model import Dashboard
from tui.monitor.text import safe_text


def status_text(dashboard: Dashboard, notice: str | None = None) -> Text:
    counts = dashboard.counts()
    total = len(dashboard.calls)
    # The word LIVE is reserved for pane badges; counts say "connected".
    parts = [f"{total} call{'s' if total != 1 else ''}"]
    if counts["live"]:
        parts.append(f"{counts['live']} connected")
    waiting = counts["connecting"] + counts["reconnecting"] + counts["waiting"]
    if waiting:
        parts.append(f"{waiting} connecting")
    if counts["ended"]:
        parts.append(f"{counts['ended']} ended")
    if counts["error"]:
        parts.append(f"{counts['error']} failed")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("anyreach-tui  ", "bold")
    # What needs the supervisor comes first, so an 80-column terminal still shows it:
    # the banner, how many calls need attention, the latest notice; then the counts.
    if dashboard.banner:
        text.append(safe_text(dashboard.banner, 120), "bold reverse")
        text.append("  ·  ")
    attention = dashboard.needing_attention()
    if attention:  # in words: a monochrome terminal reads it too
        text.append(f"{attention} need{'s' if attention == 1 else ''} attention", "bold reverse")
        text.append("  ·  ")
    if notice:
        text.append(safe_text(notice, 80))
        text.append("  ·  ")
    text.append(" · ".join(parts))
    if dashboard.wallboard:
        text.append("  ·  wallboard (read-only)")
    else:
        text.append("  ·  listening ")
        text.append("on" if dashboard.listening else "off (space)", "bold")
        heard = len(dashboard.placements)
        if heard > 1:  # a mix: how many play at once (the panes say which, and where)
            text.append(f": {heard} calls")
    if dashboard.sort_by_attention:
        text.append("  ·  by attention (s)")
    if dashboard.filter_text:
        text.append("  ·  filter: ")
        text.append(safe_text(dashboard.filter_text, 40))
    return text


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { dock: top; height: 1; background: $panel; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__("", markup=False)

    def show(self, text: Text) -> None:
        # Docked, one line, full width: its size never depends on the words, so no
        # reflow of the screen (it is refreshed on every model flush).
        show_text(self, text, layout=False)

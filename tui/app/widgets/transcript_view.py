"""A call's live transcript: a line-based scroll view re-rendered from the model.

The model keeps the segments; this view wraps them to the current width (so lines
re-wrap when the pane resizes) and caches each segment's lines until the segment or
the width changes, so an interim segment growing word by word costs one segment's
wrap, not the whole history's.  It follows the bottom unless the user scrolled up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.monitor.model import MonitoredCall, Segment
from tui.monitor.text import safe_text

ROLE_LABELS = {"agent": "AGENT ", "user": "CALLER"}


class TranscriptView(ScrollView, can_focus=False):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "transcript--time",
        "transcript--agent",
        "transcript--user",
        "transcript--interim",
        "transcript--alert",
    }

    DEFAULT_CSS = """
    TranscriptView {
        height: 1fr;
        scrollbar-size-vertical: 1;
        /* Always reserve the scrollbar's column so the wrap width never depends on
           whether the scrollbar is showing (it would re-wrap every line). */
        scrollbar-gutter: stable;
        overflow-x: hidden;
        & > .transcript--time { color: $text-muted; }
        & > .transcript--agent { color: $primary; text-style: bold; }
        & > .transcript--user { color: $warning; text-style: bold; }
        & > .transcript--interim { text-style: italic; color: $text-muted; }
        & > .transcript--alert { text-style: bold reverse; color: $error; }
    }
    /* While following the newest line the scrollbar says nothing useful; it shows
       once the user scrolls up (and its thumb can then never lag behind new lines). */
    TranscriptView.-following { scrollbar-visibility: hidden; }
    """

    def __init__(
        self,
        call: MonitoredCall,
        *,
        display_tz: tzinfo | None = None,
        on_new_lines: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__()
        self.call = call
        self.display_tz = display_tz
        self._on_new_lines = on_new_lines
        self._lines: list[Strip] = []
        self._cache: dict[str, tuple[tuple[int, bool, int], list[Strip]]] = {}
        self._built: tuple[int, int] = (-1, -1)  # (transcript revision, width)
        self.has_new_lines = False
        # Follow the newest line until the user scrolls up; scrolling back to the
        # bottom (or `end`) follows again.
        self._follow = True
        self.add_class("-following")

    # -- building lines ------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._built = (-1, -1)

    def on_resize(self) -> None:
        self.rebuild()
        if self._follow:
            self.scroll_end(animate=False, x_axis=False, force=True)

    def _content_width(self) -> int:
        # The gutter is always reserved (scrollbar-gutter: stable), so this is exact
        # even before the scrollbar first appears.
        return max(0, self.size.width - self.styles.scrollbar_size_vertical)

    def rebuild(self) -> None:
        """Bring the lines up to date with the model and repaint what changed on screen.

        An interim segment growing by a word usually changes one row, so only the rows
        that differ are repainted; a new line shifts every row and repaints them all.
        """
        before = self._shown_lines()
        if not self._ensure_lines():
            return
        if self._follow:
            self.scroll_end(animate=False, x_axis=False, force=True)
        after = self._shown_lines()
        if len(after) != len(before):
            self.refresh()
            return
        width = self.size.width
        for row, (old, new) in enumerate(zip(before, after, strict=True)):
            if old != new:
                self.refresh(Region(0, row, width, 1))

    def _shown_lines(self) -> list[Strip]:
        """The wrapped lines on screen now, top to bottom (as render_line draws them)."""
        top = self._top_line()
        return self._lines[top : top + self.size.height]

    def _ensure_lines(self) -> bool:
        """Re-wrap what changed since the last build; return whether anything did.

        Also called from render_line, so a paint can never show lines older than the
        model or wrapped for another width, whatever order resize and refresh come in.
        """
        width = self._content_width()
        transcript = self.call.transcript
        if width <= 0 or self._built == (transcript.revision, width):
            return False
        previous_count = len(self._lines)
        lines: list[Strip] = []
        live_ids = set()
        for segment in transcript.segments:
            live_ids.add(segment.id)
            key = (segment.revision, segment.final, width)
            cached = self._cache.get(segment.id)
            if cached is None or cached[0] != key:
                cached = (key, self._render_segment(segment, width))
                self._cache[segment.id] = cached
            lines.extend(cached[1])
        for stale in set(self._cache) - live_ids:
            del self._cache[stale]
        self._lines = lines
        self._built = (transcript.revision, width)
        if not self._follow or self.virtual_size.width != width:
            self._sync_scroll_range()  # a following view's range waits (module docstring)
        if not self._follow and len(lines) != previous_count:
            self._set_new_lines(True)
        return True

    def _sync_scroll_range(self) -> None:
        """Give the scroll range the lines' true height; a following view stays at the end."""
        size = Size(self._content_width(), len(self._lines))
        if self.virtual_size == size:
            return
        self.virtual_size = size
        if self._follow:  # max_scroll_y reads the new range at once
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)

    def _render_segment(self, segment: Segment, width: int) -> list[Strip]:
        stamp = segment.first_seen.astimezone(self.display_tz).strftime("%H:%M:%S")
        role_style = self.get_component_rich_style(
            "transcript--agent" if segment.role == "agent" else "transcript--user"
        )
        text = Text(no_wrap=False, overflow="fold", end="")
        text.append(stamp + " ", self.get_component_rich_style("transcript--time"))
        text.append(ROLE_LABELS.get(segment.role, segment.role[:6].upper()), role_style)
        text.append(" ")
        # Always a Text object built from plain str: transcript text is never markup.
        body = Text(safe_text(segment.text))
        if not segment.final:
            body.append(" …")
            body.stylize(self.get_component_rich_style("transcript--interim"))
        if segment.alert:
            body.stylize(self.get_component_rich_style("transcript--alert"))
        text.append_text(body)
        console = self.app.console
        options = console.options.update_width(width)
        return [Strip(line) for line in console.render_lines(text, options, pad=False)]

    # -- drawing -----------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        self._ensure_lines()
        index = self._top_line() + y
        width = self.size.width
        style: Style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        return self._lines[index].apply_style(style).crop_extend(0, width, style)

    def _top_line(self) -> int:
        # While following, the newest lines are drawn whatever the scroll offset says:
        # the offset catches up a refresh later, and drawing from it would flash stale
        # (or, after a re-wrap to fewer lines, empty) lines in between.
        bottom = max(0, len(self._lines) - self.size.height)
        if self._follow:
            return bottom
        return min(self.scroll_offset.y, bottom)

    # -- follow / new lines --------------------------------------------------------

    def follow(self) -> None:
        """Jump to the newest line and keep following it."""
        self._set_follow(True)
        self._set_new_lines(False)
        self._sync_scroll_range()
        self.scroll_end(animate=False, x_axis=False, force=True)

    def page_up(self) -> None:
        self._sync_scroll_range()
        self.scroll_page_up(animate=False)

    def page_down(self) -> None:
        self._sync_scroll_range()
        self.scroll_page_down(animate=False)

    def home(self) -> None:
        self._sync_scroll_range()
        self.scroll_home(animate=False)

    def on_mouse_scroll_up(self) -> None:
        # Runs before ScrollView's own handler (Textual dispatches the subclass first),
        # so the wheel scrolls from the true end, not from where the range last was.
        # (Scrolling down from the end changes nothing; scrolling home or down while not
        # following finds the range synced by _set_follow.)
        self._sync_scroll_range()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._set_follow(round(new_value) >= self.max_scroll_y)
        if self.has_new_lines and self._follow:
            self._set_new_lines(False)

    def _set_follow(self, value: bool) -> None:
        if value != self._follow:
            self._follow = value
            self.set_class(value, "-following")
            if not value:  # its scrollbar shows from now on: it must tell the truth
                self._sync_scroll_range()

    def _set_new_lines(self, value: bool) -> None:
        if value != self.has_new_lines:
            self.has_new_lines = value
            if self._on_new_lines is not None:
                self._on_new_lines(value)

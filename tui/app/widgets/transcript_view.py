"""A call's live transcript: a line-based scroll view re-rendered from the model.

The model keeps the segments; this view wraps them to the current width (so lines
re-wrap when the pane resizes).  For every segment it keeps only how many rows it
wraps to (until the segment or the width changes), so an interim segment growing
word by word costs one segment's wrap, not the whole history's.  The wrapped rows
themselves (Textual ``Strip``s, about 40 objects per line for the garbage collector
to walk) are kept only for the segments drawn lately, a few screens' worth: a full
history of 500 lines in 32 panes would otherwise keep 700,000 objects alive and
stop the whole process for half a second at each full collection (bench_gc.py).
It follows the bottom unless the user scrolled up.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
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
# Wrapped rows are kept for this many segments beyond a screen's height: every
# segment on screen (each is at least a row) and the ones just scrolled past.
KEPT_SEGMENTS_BEYOND_SCREEN = 8

# What a segment's wrap depends on: its revision, whether it is final, the width.
WrapKey = tuple[int, bool, int]


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
        # The layout as of the last build: in order, each segment with what it was
        # wrapped for, and the row each starts at.  By id, each segment's row count
        # (what a build reuses until the segment or the width changes).
        self._placed: list[tuple[Segment, WrapKey]] = []
        self._starts: list[int] = []
        self._line_count = 0
        self._row_counts: dict[str, tuple[WrapKey, int]] = {}
        # The wrapped rows of the segments drawn lately, least recently used first.
        self._wrapped: OrderedDict[str, tuple[WrapKey, list[Strip]]] = OrderedDict()
        self._built: tuple[int, int] = (-1, -1)  # (transcript revision, width)
        self.has_new_lines = False
        # Follow the newest line until the user scrolls up; scrolling back to the
        # bottom (or `end`) follows again.
        self._follow = True
        self.add_class("-following")

    # -- building lines ------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._row_counts.clear()
        self._wrapped.clear()
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
        if before is None or after is None or len(after) != len(before):
            self.refresh()
            return
        width = self.size.width
        for row, (old, new) in enumerate(zip(before, after, strict=True)):
            if old != new:
                self.refresh(Region(0, row, width, 1))

    def _shown_lines(self) -> list[Strip] | None:
        """The wrapped lines on screen now, top to bottom (as render_line draws them).

        None when one of them is no longer kept as it was built: what the screen shows
        is then unknown here, and the caller repaints everything.
        """
        top = self._top_line()
        lines = []
        for index in range(top, min(top + self.size.height, self._line_count)):
            line = self._line(index, rewrap=False)
            if line is None:
                return None
            lines.append(line)
        return lines

    def _ensure_lines(self) -> bool:
        """Re-wrap what changed since the last build; return whether anything did.

        Also called from render_line, so a paint can never show lines older than the
        model or wrapped for another width, whatever order resize and refresh come in.
        """
        width = self._content_width()
        transcript = self.call.transcript
        if width <= 0 or self._built == (transcript.revision, width):
            return False
        previous_count = self._line_count
        segments = transcript.segments
        placed: list[tuple[Segment, WrapKey]] = []
        starts: list[int] = []
        row = 0
        for segment in segments:
            key = (segment.revision, segment.final, width)
            placed.append((segment, key))
            starts.append(row)
            counted = self._row_counts.get(segment.id)
            if counted is None or counted[0] != key:
                counted = (key, len(self._wrap(segment, key)))
                self._row_counts[segment.id] = counted
            row += counted[1]
        if len(self._row_counts) > len(segments):
            live = {segment.id for segment in segments}
            for stale in [sid for sid in self._row_counts if sid not in live]:
                del self._row_counts[stale]
                self._wrapped.pop(stale, None)
        self._placed, self._starts, self._line_count = placed, starts, row
        self._built = (transcript.revision, width)
        if not self._follow or self.virtual_size.width != width:
            self._sync_scroll_range()  # a following view's range waits (module docstring)
        if not self._follow and row != previous_count:
            self._set_new_lines(True)
        return True

    def _wrap(self, segment: Segment, key: WrapKey) -> list[Strip]:
        """The segment's rows for ``key``, kept among the lately drawn."""
        kept = self._wrapped.get(segment.id)
        if kept is not None and kept[0] == key:
            self._wrapped.move_to_end(segment.id)
            return kept[1]
        lines = self._render_segment(segment, key[2])
        self._wrapped[segment.id] = (key, lines)
        self._wrapped.move_to_end(segment.id)
        while len(self._wrapped) > self.size.height + KEPT_SEGMENTS_BEYOND_SCREEN:
            self._wrapped.popitem(last=False)
        return lines

    def _line(self, index: int, *, rewrap: bool = True) -> Strip | None:
        """Row ``index`` of the last build; None past the end, or (not ``rewrap``) if
        its segment's rows are no longer kept."""
        if not 0 <= index < self._line_count:
            return None
        position = bisect_right(self._starts, index) - 1
        segment, key = self._placed[position]
        kept = self._wrapped.get(segment.id)
        if kept is not None and kept[0] == key:
            self._wrapped.move_to_end(segment.id)
            lines = kept[1]
        elif not rewrap:
            return None
        else:
            # Scrolled back to rows not kept: wrap again.  The segment may have changed
            # since the build (render_line builds first, so only by a race); its rows
            # then show as they are now, and the next build lays them out again.
            lines = self._wrap(segment, key)
        offset = index - self._starts[position]
        return lines[offset] if offset < len(lines) else None

    def _sync_scroll_range(self) -> None:
        """Give the scroll range the lines' true height; a following view stays at the end."""
        size = Size(self._content_width(), self._line_count)
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
        width = self.size.width
        style: Style = self.rich_style
        line = self._line(self._top_line() + y)
        if line is None:
            return Strip.blank(width, style)
        return line.apply_style(style).crop_extend(0, width, style)

    def _top_line(self) -> int:
        # While following, the newest lines are drawn whatever the scroll offset says:
        # the offset catches up a refresh later, and drawing from it would flash stale
        # (or, after a re-wrap to fewer lines, empty) lines in between.
        bottom = max(0, self._line_count - self.size.height)
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

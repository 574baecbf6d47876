"""The dashboard screen: the grid of call panes, the status line and the keys.

Every key changes the model (focus, listening, filter, zoom, wallboard, calls); the
`Monitor` (tui.monitor.monitor) reacts to the model with sessions and audio.  The
screen observes the model and repaints: header-level changes and transcript bursts
are collected and flushed at most ~20 times a second per pane, and only for visible
panes: a pane's first change after a quiet spell is flushed at once, later ones wait
for that pane's next slot.
"""

from __future__ import annotations

import time
from datetime import tzinfo
from math import inf
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui.app import links
from tui.app.layout import MIN_PANE_HEIGHT, grid_shape
from tui.app.widgets.add_prompt import AddConversationScreen
from tui.app.widgets.call_pane import CallPane
from tui.app.widgets.filter_input import FilterInput
from tui.app.widgets.help_screen import HelpScreen
from tui.app.widgets.status_bar import StatusBar, status_text
from tui.monitor.model import Change, Dashboard

FLUSH_INTERVAL = 0.05  # at most ~20 repaints a second per pane
TICK_INTERVAL = 1.0  # duration timers; not an animation: one step per second
SMALL_WIDTH, SMALL_HEIGHT = 80, 24
# Not on a wallboard: nobody sits at it to hear, type, or receive a browser or a clipboard.
NOT_ON_WALLBOARD = frozenset(
    {
        "toggle_listening",
        "stop_listening",
        "toggle_mix",
        "volume",
        "add",
        "filter",
        "open_link",
        "copy_link",
    }
)


class DashboardScreen(Screen[None]):
    """The grid of call panes, with the dashboard's keys."""

    # Focus lives in the model, not in Textual's focus chain: nothing gets keyboard
    # focus by itself (only the filter input, while it is open).
    AUTO_FOCUS = ""  # empty selector: focus nothing (None would mean "the app's default")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_listening", "Listen", id="audio.toggle"),
        Binding("m", "stop_listening", "Mute", id="audio.mute"),
        Binding("M", "toggle_mix", "Mix the focused call in or out", show=False, id="audio.mix"),
        Binding("plus", "volume(1)", "Focused call louder", show=False, id="audio.louder"),
        Binding("minus", "volume(-1)", "Focused call quieter", show=False, id="audio.quieter"),
        Binding("enter,z", "zoom", "Zoom", id="view.zoom"),
        Binding("escape", "back", "Back", id="view.back"),
        Binding("a", "add", "Add", id="calls.add"),
        Binding("x", "close_pane", "Close", id="calls.close"),
        Binding("o", "open_link", "Open in web app", show=False, id="link.open"),
        Binding("y", "copy_link", "Copy id and link", show=False, id="link.copy"),
        Binding("slash", "filter", "Filter", id="view.filter"),
        Binding("w", "toggle_wallboard", "Wallboard", id="view.wallboard"),
        Binding("s", "attention_order", "Attention order", show=False, id="grid.attention"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("colon", "app.command_palette", "Commands", show=False, id="app.commands"),
        Binding("left,h", "move(-1, 0)", "Focus left", show=False, id="focus.left"),
        Binding("right,l", "move(1, 0)", "Focus right", show=False, id="focus.right"),
        Binding("up,k", "move(0, -1)", "Focus up", show=False, id="focus.up"),
        Binding("down,j", "move(0, 1)", "Focus down", show=False, id="focus.down"),
        Binding("tab", "cycle(1)", "Next pane", show=False, id="focus.next"),
        Binding("shift+tab", "cycle(-1)", "Previous pane", show=False, id="focus.previous"),
        *(
            Binding(str(n), f"focus_pane({n})", f"Focus pane {n}", show=False, id=f"focus.{n}")
            for n in range(1, 10)
        ),
        Binding("pageup", "scroll('page_up')", "Scroll up", show=False, id="scroll.page_up"),
        Binding(
            "pagedown", "scroll('page_down')", "Scroll down", show=False, id="scroll.page_down"
        ),
        Binding("home", "scroll('home')", "Transcript start", show=False, id="scroll.home"),
        Binding("end", "scroll('end')", "Follow newest", show=False, id="scroll.end"),
    ]

    # A one-line notice in the status line (audio device lost or back, "Ending sessions…").
    notice: var[str | None] = var(None)

    def __init__(
        self,
        dashboard: Dashboard,
        *,
        display_tz: tzinfo | None = None,
        notice: str | None = None,
        conversation_url: str = links.DEFAULT_CONVERSATION_URL,
    ) -> None:
        super().__init__()
        self.set_reactive(DashboardScreen.notice, notice)
        self.conversation_url = conversation_url
        self.dashboard = dashboard
        self.display_tz = display_tz
        self.panes: dict[str, CallPane] = {}
        self.columns = 1
        self._dirty: set[str] = set()
        self._flush_pending = False
        self._flushed_at: dict[str, float] = {}  # when each pane was last flushed
        self._last_relayout = -inf  # a filter relayouts on new words: capped the same way
        self._unsubscribe = dashboard.subscribe(self._on_change)
        self._status = StatusBar()
        self._grid = Container(id="grid")
        self._empty = Static(
            "No calls yet. Press a to add a conversation by id.", id="empty", markup=False
        )
        self._filter = FilterInput()

    def compose(self) -> ComposeResult:
        yield self._status
        with VerticalScroll(id="grid-scroll", can_focus=False):
            yield self._grid
        yield self._empty
        yield self._filter
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        for call in self.dashboard.calls:
            self._add_pane(call.conversation_id)
        self.set_class(self.dashboard.wallboard, "-wallboard")
        self.set_interval(TICK_INTERVAL, self._tick)
        self.call_after_refresh(self._relayout)

    def on_unmount(self) -> None:
        self._unsubscribe()

    def on_resize(self) -> None:
        self._relayout()

    # -- model -> screen ------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind == "calls" and change.call_id is not None:
            if change.call_id in self.dashboard:
                self._add_pane(change.call_id)
            else:
                pane = self.panes.pop(change.call_id, None)
                self._flushed_at.pop(change.call_id, None)
                if pane is not None:
                    pane.remove()
            self._relayout()
        elif change.kind in ("call", "transcript", "level") and change.call_id:
            self._dirty.add(change.call_id)
            if change.kind == "transcript" and self.dashboard.filter_text:
                self._dirty.add("*layout")  # new words may match (or unmatch) the filter
            self._schedule_flush()
        elif change.kind == "wallboard":
            self.set_class(self.dashboard.wallboard, "-wallboard")
            self._relayout()
        elif change.kind == "alert":
            self.app.bell()  # once per alerted line; the pane and line stay flagged
        elif change.kind == "banner":
            self._update_status()
        else:  # focus, listening, filter, zoom: cheap, and the user is waiting for them
            self._relayout()

    def _add_pane(self, conversation_id: str) -> None:
        call = self.dashboard.get(conversation_id)
        if call is None or conversation_id in self.panes:
            return
        pane = CallPane(call, display_tz=self.display_tz)
        self.panes[conversation_id] = pane
        self._grid.mount(pane)

    def _schedule_flush(self) -> None:
        """Flush when the soonest slot of a dirty pane comes.

        A cap on each pane's rate, not a delay: a pane quiet for FLUSH_INTERVAL is
        flushed on the next loop turn, and one busy call does not hold back the others'
        lines (a cap on the whole screen made every pane wait for the busiest one).
        """
        if self._flush_pending:
            return
        due = self._next_due()
        if due is None:
            return
        self._flush_pending = True
        wait = due - time.monotonic()
        if wait <= 0:
            self.call_later(self._flush)
        else:
            self.set_timer(wait, self._flush)

    def _next_due(self) -> float | None:
        if "*layout" in self._dirty:
            return self._last_relayout + FLUSH_INTERVAL
        slots = []
        for conversation_id in list(self._dirty):
            pane = self.panes.get(conversation_id)
            if pane is None:
                self._dirty.discard(conversation_id)
            elif pane.display:  # hidden panes stay dirty until they are shown
                slots.append(self._slot(conversation_id))
        return min(slots, default=None)

    def _slot(self, conversation_id: str) -> float:
        """When the pane may be flushed next."""
        return self._flushed_at.get(conversation_id, -inf) + FLUSH_INTERVAL

    def _flush(self) -> None:
        self._flush_pending = False
        now = time.monotonic()
        if "*layout" in self._dirty:
            self._dirty.discard("*layout")
            self._last_relayout = now
            self._relayout()
            self._schedule_flush()
            return
        with self.app.batch_update():
            for conversation_id in list(self._dirty):
                pane = self.panes.get(conversation_id)
                if pane is None:
                    self._dirty.discard(conversation_id)
                elif pane.display and self._slot(conversation_id) <= now:
                    self._dirty.discard(conversation_id)
                    self._flushed_at[conversation_id] = now
                    self._update_pane(pane)
            self._update_status()
        self._schedule_flush()  # the panes whose slot has not come yet

    def _shown_calls(self) -> list[str]:
        visible = [c.conversation_id for c in self.dashboard.visible_calls()]
        if self.dashboard.zoomed and self.dashboard.focused_id in visible:
            return [self.dashboard.focused_id]  # type: ignore[list-item]
        return visible

    def _relayout(self) -> None:
        if not self.is_mounted:
            return
        visible = [c.conversation_id for c in self.dashboard.visible_calls()]
        shown = self._shown_calls()
        scroller = self.query_one("#grid-scroll")
        width, height = scroller.size.width, scroller.size.height
        columns, rows = grid_shape(len(shown), width, height)
        self.columns = 1 if self.dashboard.zoomed else columns
        with self.app.batch_update():
            self.set_class(width < SMALL_WIDTH or self.size.height < SMALL_HEIGHT, "-small")
            self._grid.styles.grid_size_columns = columns
            self._grid.styles.grid_size_rows = rows
            if height and rows * MIN_PANE_HEIGHT > height:
                # Too small for every pane: keep a readable height and let it scroll.
                self._grid.styles.grid_rows = str(MIN_PANE_HEIGHT)
                self._grid.styles.height = rows * MIN_PANE_HEIGHT
            else:
                self._grid.styles.grid_rows = "1fr"
                self._grid.styles.height = "100%"
            self._order_panes(visible)
            for conversation_id, pane in self.panes.items():
                pane.display = conversation_id in shown
                if pane.display:
                    pane.index = visible.index(conversation_id) + 1
                    self._dirty.discard(conversation_id)
                    self._update_pane(pane)
            self._empty.display = not shown
            self._update_status()
        focused = self.panes.get(self.dashboard.focused_id or "")
        if focused is not None and focused.display:
            scroller.scroll_to_widget(focused, animate=False)

    def _order_panes(self, visible: list[str]) -> None:
        """The grid's children in the model's order (attention order moves panes)."""
        order = [self.panes[cid] for cid in visible if cid in self.panes]
        current = [c for c in self._grid.children if c in order]
        if current == order:
            return
        for pane in reversed(order):  # each to the front: the first ends first
            if pane is not self._grid.children[0]:
                self._grid.move_child(pane, before=0)

    def _update_pane(self, pane: CallPane) -> None:
        conversation_id = pane.call.conversation_id
        dashboard = self.dashboard
        pane.update_header(
            index=pane.index,
            focused=conversation_id == dashboard.focused_id,
            heard=conversation_id in dashboard.placements,
            in_mix=conversation_id in dashboard.mix,
            pan=dashboard.pan(conversation_id),
            volume=dashboard.volume(conversation_id),
            speaking=pane.call.speaking(),  # heard or not: the server's speakers
        )
        pane.update_transcript()

    def watch_notice(self) -> None:
        self._update_status()

    def _update_status(self) -> None:
        self._status.show(status_text(self.dashboard, self.notice))

    def _tick(self) -> None:
        with self.app.batch_update():
            for pane in self.panes.values():
                if pane.display:
                    self._update_pane(pane)

    # -- intents -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        read_only = self.dashboard.wallboard
        if action in NOT_ON_WALLBOARD and read_only:
            return False  # the wallboard never plays audio, prompts, opens or copies
        if action == "back" and not (self.dashboard.zoomed or self.dashboard.filter_text):
            return False
        return True

    def action_toggle_listening(self) -> None:
        self.dashboard.toggle_listening()
        self.refresh_bindings()

    def action_stop_listening(self) -> None:
        self.dashboard.set_listening(False)
        self.refresh_bindings()

    def action_toggle_mix(self) -> None:
        """``M``: the focused call joins the mix (heard beside the focused one) or leaves."""
        self.dashboard.toggle_mix()

    def action_volume(self, steps: int) -> None:
        """``+`` / ``-``: the focused call louder or quieter, a step of 10 % each."""
        self.dashboard.change_volume(steps)

    def action_zoom(self) -> None:
        self.dashboard.set_zoom(not self.dashboard.zoomed)
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.dashboard.zoomed:
            self.dashboard.set_zoom(False)
        elif self.dashboard.filter_text:
            self._filter.value = ""
            self.dashboard.set_filter("")
        self.refresh_bindings()

    def action_move(self, dx: int, dy: int) -> None:
        self.dashboard.focus_move(dx, dy, self.columns)

    def action_cycle(self, step: int) -> None:
        self.dashboard.focus_step(step)

    def action_focus_pane(self, number: int) -> None:
        self.dashboard.focus_index(number - 1)

    def action_scroll(self, where: str) -> None:
        pane = self.panes.get(self.dashboard.focused_id or "")
        if pane is None:
            return
        view = pane.transcript
        if where == "page_up":
            view.page_up()
        elif where == "page_down":
            view.page_down()
        elif where == "home":
            view.home()
        else:
            view.follow()

    def action_add(self) -> None:
        def added(conversation_id: str | None) -> None:
            if conversation_id:
                self.dashboard.add_call(conversation_id)
                self.dashboard.focus(conversation_id)

        self.app.push_screen(AddConversationScreen(), added)

    def action_close_pane(self) -> None:
        if self.dashboard.focused_id is not None:
            self.dashboard.remove_call(self.dashboard.focused_id)

    def _focused_link(self) -> tuple[str, str] | None:
        call = self.dashboard.focused
        if call is None:
            self.notify("No call is focused.", severity="warning", markup=False)
            return None
        return call.conversation_id, links.conversation_url(
            self.conversation_url, call.conversation_id
        )

    def _key_of(self, action: str) -> str:
        """The key that runs ``action`` now ([keys] may have remapped it), for messages."""
        for active in self.active_bindings.values():  # with the keymap applied
            if active.binding.action == action:
                return self.app.get_key_display(active.binding)
        return action

    def action_open_link(self) -> None:
        """``o``: the focused conversation in the web app, if a browser can reach the user."""
        link = self._focused_link()
        if link is None:
            return
        url = link[1]
        why_not = links.no_local_browser()
        if why_not is not None:
            self.notify(
                f"No local browser: {why_not}. Press {self._key_of('copy_link')} to copy "
                f"the link: {url}",
                title="Not opened",
                severity="warning",
                markup=False,
            )
            return
        self._open_in_browser(url)

    @work(group="links", exit_on_error=False)
    async def _open_in_browser(self, url: str) -> None:
        if await links.open_in_browser(url):
            self.notify(f"Opened in your browser: {url}", markup=False)
        else:
            self.notify(
                f"No browser could be started here. Press {self._key_of('copy_link')} to "
                f"copy the link: {url}",
                title="Not opened",
                severity="warning",
                markup=False,
            )

    def action_copy_link(self) -> None:
        """``y``: id and link to the clipboard of the user's terminal (OSC 52, base64)."""
        link = self._focused_link()
        if link is None:
            return
        conversation_id, url = link
        text = links.clipboard_text(conversation_id, url)
        self.app.copy_to_clipboard(text)  # Textual writes ESC ] 52 ; c ; <base64> BEL
        if links.plain_id(conversation_id):
            self.notify(f"Sent to your terminal's clipboard (OSC 52): {text}", markup=False)
        else:
            self.notify(
                "Sent the link only (OSC 52): the conversation id holds control "
                f"characters or spaces, so it is not copied as text: {url}",
                severity="warning",
                markup=False,
            )

    def action_filter(self) -> None:
        self._filter.add_class("-open")
        self._filter.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.dashboard.set_filter(event.value)
        self.refresh_bindings()

    @on(CallPane.Selected)
    def _pane_selected(self, message: CallPane.Selected) -> None:
        # Focus lives in the model; a click is an intent like any key.
        self.dashboard.focus(message.conversation_id)

    def action_attention_order(self) -> None:
        """``s``: the grid in attention order (most urgent first) or as the calls came."""
        self.dashboard.toggle_sort_by_attention()

    def action_toggle_wallboard(self) -> None:
        self.dashboard.set_wallboard(not self.dashboard.wallboard)
        self.refresh_bindings()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self))

    async def action_quit(self) -> None:
        await self.app.action_quit()  # the app ends every session first

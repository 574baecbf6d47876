"""The Textual dashboard app: one ``App`` with its screen, keymap, theme and bell.

``DashboardApp(dashboard, monitor)`` renders the `Dashboard` model
(``tui.app.screen``) and, when given a monitor, starts it and ends every session
before it exits.  Without a monitor it only renders the model (tests, benchmarks).
The command that runs it (``tui.commands.dashboard``) builds the parts and
handles signals; nothing here knows about configuration files.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.theme import BUILTIN_THEMES

from tui.app import links
from tui.app.commands import DashboardCommands
from tui.app.screen import DashboardScreen
from tui.monitor.model import Dashboard
from tui.monitor.monitor import Monitor


def binding_ids() -> list[str]:
    """Every remappable binding id of the dashboard (``[keys]``), in the order of its keys."""
    return [b.id for b in DashboardScreen.BINDINGS if isinstance(b, Binding) and b.id]


def theme_names() -> list[str]:
    """The themes ``ui.theme`` may name."""
    return sorted(BUILTIN_THEMES)


class DashboardApp(App[int]):
    """The dashboard on ``dashboard``; ``monitor`` (optional) follows its calls."""

    TITLE = "anyreach-tui"
    CSS_PATH = Path(__file__).with_name("app.tcss")
    COMMANDS = App.COMMANDS | {DashboardCommands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        dashboard: Dashboard,
        monitor: Monitor | None = None,
        *,
        keymap: Mapping[str, str] | None = None,
        bell: bool = True,
        theme: str | None = None,
        display_tz: tzinfo | None = None,
        notice: str | None = None,
        conversation_url: str = links.DEFAULT_CONVERSATION_URL,
    ) -> None:
        super().__init__()
        self.dashboard = dashboard
        self.monitor = monitor
        self.bell_enabled = bell
        self._keymap = dict(keymap or {})
        self._requested_theme = theme
        self._display_tz = display_tz
        self._first_notice = notice
        links.conversation_url(conversation_url, "")  # a template without the id fails now
        self.conversation_url = conversation_url  # [links]: what `o` opens, `y` copies
        self._screen: DashboardScreen | None = None
        self._quitting = False

    @property
    def dashboard_screen(self) -> DashboardScreen:
        """The grid of panes (there from the app's start on)."""
        if self._screen is None:
            raise RuntimeError("the dashboard is not running")
        return self._screen

    def on_mount(self) -> None:
        if self._keymap:
            self.set_keymap(self._keymap)  # binding id -> "key,key" ([keys] in the config)
        if self._requested_theme:
            self.theme = self._requested_theme
        self._screen = DashboardScreen(
            self.dashboard,
            display_tz=self._display_tz,
            notice=self._first_notice,
            conversation_url=self.conversation_url,
        )
        self.push_screen(self._screen)
        if self.monitor is not None:
            self.monitor.start()

    def set_notice(self, notice: str | None) -> None:
        """Show a one-line notice in the status bar (audio device lost or back, quitting)."""
        if self._screen is None:
            self._first_notice = notice
        else:
            self._screen.notice = notice

    def bell(self) -> None:
        """Alerts ring once per line, unless the bell is off or this is a wallboard."""
        if self.bell_enabled and not self.dashboard.wallboard:
            super().bell()

    # Textual runs sync and async actions alike; its own action_help_quit is sync.
    async def action_help_quit(self) -> None:  # type: ignore[override]
        """Ctrl-C quits here (Textual's default only explains ctrl+q): supervisors expect it."""
        await self.action_quit_dashboard()

    async def action_quit(self) -> None:
        """q, ctrl+q and the palette's Quit also end every session first."""
        await self.action_quit_dashboard()

    async def action_quit_dashboard(self) -> None:
        """End every session (bounded by the monitor's 3 s grace), then exit."""
        if self._quitting:
            return
        self._quitting = True
        if self.monitor is not None:
            self.set_notice("Ending sessions…")
            self.run_worker(self._end_sessions_and_exit(), group="shutdown", exit_on_error=False)
        else:
            self.exit(0)

    async def _end_sessions_and_exit(self) -> None:
        try:
            if self.monitor is not None:
                await self.monitor.aclose()
        finally:
            self.exit(0)

    async def end_sessions(self, grace: float) -> None:
        """End every session within about ``grace`` s (a signal's end; the caller exits)."""
        self._quitting = True  # a q pressed meanwhile adds nothing
        if self.monitor is not None:
            await self.monitor.aclose(grace)

"""Command palette (`:` or ctrl+p): the dashboard's actions and "focus call …" by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape

from tui.app.screen import DashboardScreen
from tui.monitor.text import safe_text


class DashboardCommands(Provider):
    """The commands of the screen the palette was opened from, if it is the dashboard."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        screen = self.screen
        if not isinstance(screen, DashboardScreen):
            return []  # opened over the help or the add prompt: their keys are few
        dashboard = screen.dashboard

        def run(action: str) -> Callable[[], object]:
            # Through run_action, so check_action applies (the wallboard is read-only).
            return partial(screen.run_action, action)

        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Listening: toggle", "play the focused call (space)", run("toggle_listening")),
            ("Listening: stop", "silence at once (m)", run("stop_listening")),
            (
                "Mix: add or remove the focused call",
                "heard beside the focused call, to the left or right (M)",
                run("toggle_mix"),
            ),
            ("Volume: focused call louder", "10 % more, up to 150 % (+)", run("volume(1)")),
            ("Volume: focused call quieter", "10 % less, 0 % is not heard (-)", run("volume(-1)")),
            ("Zoom focused call", "one pane full screen (enter)", run("zoom")),
            ("Add conversation by id", "open a pane for a conversation (a)", run("add")),
            ("Close focused pane", "end its session (x)", run("close_pane")),
            (
                "Open in the Anyreach web app",
                "the focused conversation, in a local browser (o)",
                run("open_link"),
            ),
            (
                "Copy conversation id and link",
                "to your terminal's clipboard, over SSH and tmux too (y)",
                run("copy_link"),
            ),
            ("Filter panes", "by caller, agent or words said (/)", run("filter")),
            ("Wallboard mode: toggle", "read-only big screen (w)", run("toggle_wallboard")),
            ("Keys", "show every key (?)", run("help")),
            (
                "Theme: ANSI dark",
                "colours of the terminal itself (Linux console)",
                partial(self._set_theme, "ansi-dark"),
            ),
            ("Quit", "end every session and exit (q)", run("quit")),
        ]
        for call in dashboard.calls:
            label = safe_text(call.info.caller, 60)
            if call.info.agent_name:
                label += " · " + safe_text(call.info.agent_name, 60)
            # LIVE is reserved for pane badges: the palette says "connected".
            state = "connected" if call.is_live else call.badge.text
            commands.append(
                (f"Focus call: {label}", state, partial(dashboard.focus, call.conversation_id))
            )
        return commands

    def _set_theme(self, name: str) -> None:
        self.app.theme = name

    async def discover(self) -> Hits:
        # Callers, agents and errors are data: escaped, never read as markup.
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(escape(name), callback, text=name, help=escape(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(escape(name)),
                    callback,
                    text=name,
                    help=escape(help_text),
                )

"""The `?` help screen: every key of the dashboard, read from the live bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def binding_rows(screen: Screen) -> list[tuple[str, str]]:
    """(keys, description) for each action of ``screen``, keys as currently mapped."""
    by_action: dict[tuple[str, str], list[str]] = {}
    for key, bindings in screen._bindings.key_to_bindings.items():
        for binding in bindings:
            if not binding.description or not binding.id:
                continue
            entry = by_action.setdefault((binding.action, binding.description), [])
            display = screen.app.get_key_display(Binding(key, binding.action))
            if display not in entry:
                entry.append(display)
    return [(" ".join(keys), description) for (_, description), keys in by_action.items()]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "close", "Close help", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: auto; max-width: 90%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    HelpScreen Static { width: auto; }
    """

    def __init__(self, dashboard_screen: Screen) -> None:
        super().__init__()
        self._dashboard_screen = dashboard_screen

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, description in binding_rows(self._dashboard_screen):
            table.add_row(Text(keys), Text(description))
        with VerticalScroll():
            yield Static(Text("anyreach-tui keys", style="bold"), markup=False)
            yield Static(table)
            yield Static(
                Text("Listening is off until you press space. escape or ? closes this."),
                markup=False,
            )

    def action_close(self) -> None:
        self.dismiss(None)

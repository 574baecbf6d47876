"""The `/` filter bar: shows only panes whose caller, agent or transcript match."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input


class FilterInput(Input):
    """Filters as you type; enter keeps the filter, escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", id="filter.clear")
    ]

    DEFAULT_CSS = """
    FilterInput { dock: bottom; display: none; height: 3; }
    FilterInput.-open { display: block; }
    """

    def __init__(self) -> None:
        super().__init__(placeholder="filter by caller, agent or words said", id="filter")

    def action_clear_filter(self) -> None:
        self.value = ""
        self.close()

    def close(self) -> None:
        self.remove_class("-open")
        self.screen.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close()

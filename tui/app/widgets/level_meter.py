"""An audio level meter drawn with block characters (readable without colour)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

FLOOR_DBFS = -60.0
METER_CELLS = 8


def meter_cells(rms_dbfs: float, cells: int = METER_CELLS) -> int:
    """How many of ``cells`` are lit for a level between FLOOR_DBFS and 0 dBFS."""
    fraction = (max(FLOOR_DBFS, min(0.0, rms_dbfs)) - FLOOR_DBFS) / -FLOOR_DBFS
    return round(fraction * cells)


class LevelMeter(Widget):
    DEFAULT_CSS = """
    LevelMeter { width: 8; height: 1; color: $success; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._lit = 0

    def show_level(self, rms_dbfs: float) -> None:
        lit = meter_cells(rms_dbfs)
        if lit != self._lit:
            self._lit = lit
            self.refresh()

    def render(self) -> Text:
        return Text("█" * self._lit + "░" * (METER_CELLS - self._lit), no_wrap=True)

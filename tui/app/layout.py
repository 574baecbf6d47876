"""How many columns and rows of panes fit a terminal (pure arithmetic, unit-testable)."""

from __future__ import annotations

import math

# Terminal cells are about twice as tall as wide, and transcript lines want width, so a
# pane reads best when it is about 3.5 cells wide per cell of height.
TARGET_ASPECT = 3.5
MIN_PANE_WIDTH = 24
MIN_PANE_HEIGHT = 6


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) for ``count`` panes in a ``width`` x ``height`` area.

    Picks the shape whose panes are closest to TARGET_ASPECT, penalising empty cells,
    so 2 panes sit side by side, 4 make a 2x2, 9 a 3x3 on a wide terminal.
    """
    if count <= 1:
        return 1, 1
    width, height = max(1, width), max(1, height)
    max_columns = max(1, min(count, width // MIN_PANE_WIDTH))
    best: tuple[float, int] = (math.inf, 1)
    for columns in range(1, max_columns + 1):
        rows = math.ceil(count / columns)
        aspect = (width / columns) / (height / rows)
        empty = columns * rows - count
        score = abs(math.log(aspect / TARGET_ASPECT)) + empty / count
        if score < best[0]:
            best = (score, columns)
    columns = best[1]
    return columns, math.ceil(count / columns)

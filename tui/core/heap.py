"""The start-up heap, frozen: Python's full collections stop walking what never dies.

A full (generation 2) collection walks every object the collector tracks and holds
the GIL meanwhile, so the UI loop, the audio callback and LiveKit's event threads
all wait.  After start-up most of those objects are modules, classes, functions and
the app's own widgets, alive until exit: on a 2-core box 70,000 of them cost a
45 ms pause each time (scripts/bench_gc.py), longer than the device's queued audio.
``gc.freeze()`` moves them out of the collector's sight; cycles made later are still
collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then freeze whatever is still alive; returns how many were frozen."""
    gc.collect()  # what is garbage now must not be kept forever by the freeze
    gc.freeze()
    return gc.get_freeze_count()

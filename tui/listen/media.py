"""The media thread: one event loop, beside the caller's, where heard audio is decoded.

Why a thread of its own: a heard call's frames come every 10 ms and a focus switch
waits for the new call's first ones, while the UI loop runs Textual's paints and
layouts in chunks of 10-100 ms on a busy wallboard.  On the UI loop each frame waited
behind them (a switch's first frame came 20-110 ms after ``set_heard``, measured in
bench_scale); on its own loop it waits only for the GIL, which Python hands over
every 5 ms.  LiveKit's ``AudioStream`` takes the loop its frames are delivered to, so
the streams live here and nothing else does: rooms, transcripts and events stay on
the caller's loop.

One thread per process, started on first use, shared by every session; a daemon, so
it never holds up an exit (sessions close their streams in their own teardown).

A thread that wants the GIL waits until the holder's switch interval is over: 5 ms by
default, per hand-over, and a frame crosses two (LiveKit's callback thread, this one)
before the audio device's callback takes a third.  A process that plays calls sets
1 ms (``favour_media_latency``).  At 16 calls on 2 cores, the first frame after a
switch came (p50 / max of 20 switches, two runs each, 2026-12-03): on the UI loop
113-128 / 680-930 ms; on the UI loop with 1 ms, 70-79 / 440-550 ms; on this thread
with 1 ms, 15-17 / 42-230 ms (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GIL_SWITCH_INTERVAL_S = 0.001


class MediaThread:
    """An asyncio loop running in a daemon thread; coroutines are handed to it."""

    def __init__(self, name: str = "listen-media") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The thread's loop, started on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the media loop.  Coroutines submitted from one thread
        start in the order they were submitted (each runs up to its first await)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)


_shared = MediaThread()


def media_thread() -> MediaThread:
    """The process's media thread (every session decodes its heard audio there)."""
    return _shared


def favour_media_latency() -> None:
    """Hand the GIL over every 1 ms, not 5: for a process that plays calls (module doc)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

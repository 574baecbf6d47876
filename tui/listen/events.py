"""A small event emitter for the session's public events.

Handlers may be plain functions or coroutine functions.  A failing handler is
logged and never reaches the session or the other handlers.  Coroutine
handlers run as their own tasks so a slow one never delays the caller (the
room's event callback) or another session; each coroutine handler still sees
its events in order, because its next run waits for its previous one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]


class EventEmitter:
    def __init__(self, label: str = "session") -> None:
        self._label = label
        self._handlers: dict[str, list[Handler]] = {}
        # Last pending run per coroutine handler: the next run waits for it (ordering).
        self._tails: dict[Handler, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, event: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Handler) -> None:
        handlers = self._handlers.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            try:
                result = handler(*args)
            except Exception:
                logger.exception("%s: %r handler failed", self._label, event)
                continue
            if inspect.isawaitable(result):
                self._schedule(event, handler, result)

    def _schedule(self, event: str, handler: Handler, awaitable: Any) -> None:
        previous = self._tails.get(handler)
        task = asyncio.get_running_loop().create_task(self._run_after(previous, event, awaitable))
        self._tails[handler] = task
        self._tasks.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if self._tails.get(handler) is done:
                del self._tails[handler]

        task.add_done_callback(forget)

    async def _run_after(
        self, previous: asyncio.Task[None] | None, event: str, awaitable: Any
    ) -> None:
        try:
            if previous is not None and not previous.done():
                # asyncio.wait never raises the previous run's outcome into this one.
                await asyncio.wait([previous])
        except asyncio.CancelledError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never started: no "never awaited" warning
            raise
        try:
            await awaitable
        except Exception:
            logger.exception("%s: %r handler failed", self._label, event)

    @property
    def pending(self) -> int:
        """Coroutine handler runs not finished yet."""
        return len(self._tasks)

    async def drain(self, grace: float) -> None:
        """Let running coroutine handlers finish; cancel those still running after ``grace`` s."""
        if not self._tasks:
            return
        _, still_running = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in still_running:
            task.cancel()
        if still_running:
            logger.warning(
                "%s: cancelled %d slow event handler(s)", self._label, len(still_running)
            )
            await asyncio.wait(still_running)

"""Polls the Anyreach API for active conversations and reports what changed.

UI-free: the dashboard subscribes to :class:`DiscoveryUpdate`s and decides
which panes to attach.  A failing poll never clears what is known: the last
good list is kept and the failure is reported once as a banner text until a
poll succeeds again.  A 401 stops polling for good, since retrying a bad key
cannot help and would only fill the server's logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tui.anyreach import AnyreachError, Conversation, ErrorKind

log = logging.getLogger(__name__)

KEY_REJECTED_BANNER = (
    "API key rejected (401): discovery stopped. Check api_key in the config file or "
    "ANYREACH_API_KEY (a pat_ key also needs org_id)."
)


def failing_banner(error: Exception) -> str:
    """One short line for the banner; the full message goes to the log file."""
    code = getattr(error, "status", None)
    status = f" ({code})" if code else ""
    return f"Discovery failing{status}: showing the last known calls, retrying"


class ActiveConversationSource(Protocol):
    async def active_conversations(self) -> list[Conversation]: ...


@dataclass(frozen=True)
class DiscoveryUpdate:
    """The outcome of one completed poll."""

    poll: int  # how many polls have completed, this one included
    active: Sequence[Conversation]  # newest first; the last good list on failure
    added: Sequence[Conversation] = ()
    gone: Sequence[str] = ()  # ids that are no longer active
    banner: str | None = None  # set while polls fail
    stopped: bool = False  # polling gave up (bad key)
    error: AnyreachError | None = None  # why this poll failed, when the API said


@dataclass
class DiscoveryPoller:
    source: ActiveConversationSource
    interval: float = 5.0
    on_update: Callable[[DiscoveryUpdate], Awaitable[None] | None] | None = None
    polls: int = field(default=0, init=False)  # completed polls, failed ones included
    succeeded: bool = field(default=False, init=False)  # at least one poll got a list
    failing: bool = field(default=False, init=False)  # the last poll failed
    _known: dict[str, Conversation] = field(default_factory=dict, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def poll_once(self) -> DiscoveryUpdate:
        try:
            active = await self.source.active_conversations()
        except AnyreachError as exc:
            self.polls += 1
            self.failing = True
            known = list(self._known.values())
            if exc.kind is ErrorKind.KEY_REJECTED:  # retrying a rejected key cannot help
                log.error("discovery stopped: %s", exc)
                return DiscoveryUpdate(
                    self.polls, known, banner=KEY_REJECTED_BANNER, stopped=True, error=exc
                )
            log.warning("discovery failed: %s", exc)
            return DiscoveryUpdate(self.polls, known, banner=failing_banner(exc), error=exc)
        except Exception as exc:  # e.g. an undecodable body: keep polling, say so once
            self.polls += 1
            self.failing = True
            log.exception("discovery failed unexpectedly")
            return DiscoveryUpdate(
                self.polls, list(self._known.values()), banner=failing_banner(exc)
            )
        self.polls += 1
        self.failing = False
        self.succeeded = True
        current = {c.id: c for c in active}
        added = [c for c in active if c.id not in self._known]
        gone = [cid for cid in self._known if cid not in current]
        self._known = current
        return DiscoveryUpdate(self.polls, active, added, gone)

    async def _run(self) -> None:
        while True:
            update = await self.poll_once()
            if self.on_update is not None:
                try:
                    result: Any = self.on_update(update)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    # A consumer's bug must not end discovery for the rest of the shift.
                    log.exception("handling discovery poll %d failed", update.poll)
            if update.stopped:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="anyreach-discovery")
        return self._task

    def poll_now(self) -> None:
        """Skip the rest of the current wait (e.g. the user pressed refresh)."""
        self._wake.set()

    def is_active(self, conversation_id: str) -> bool | None:
        """Whether the last poll listed it; None while that cannot be known."""
        if not self.succeeded or self.failing:
            return None
        return conversation_id in self._known

    @property
    def stopped(self) -> bool:
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

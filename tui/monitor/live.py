"""A call pane that heals itself: token errors in words, waiting rooms, reconnects.

`LiveCallController` runs one conversation for as long as it is active:

- it mints a listener token and turns each refusal into words on the pane:
  404 while the conversation is still active means its room is not ready yet
  (``Waiting for room…``, retried with backoff), 403 names the scopes the key
  needs, 409 means the call is over (``Ended``), 401 tells the live monitor to
  stop discovery (retrying a rejected key cannot help);
- when its session is lost while the call goes on (the room connection dropped,
  or LiveKit's own resume stalls), it ends that session, mints a *fresh* token
  (the old one may have expired) and joins again with backoff; the transcript
  carries on in the same pane because segments are keyed by id;
- every segment is written to the transcript store the moment it settles, and
  keyword alerts flag the line and the pane once per segment.

UI-free: it only changes the model and calls the hooks it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui.anyreach import (
    AnyreachError,
    ApiUnavailable,
    ConversationNotActive,
    ConversationNotFound,
    Forbidden,
    ListenerGrant,
    Unauthorized,
)
from tui.monitor.alerts import AlertMatcher
from tui.monitor.backoff import Backoff
from tui.monitor.controller import (
    LEVEL_POLL_INTERVAL,
    CallController,
    RouterLike,
    SessionFactory,
    SessionLike,
    TokenSource,
    _default_session_factory,
    describe_api_error,
)
from tui.monitor.model import MonitoredCall
from tui.monitor.store import TranscriptStore

log = logging.getLogger(__name__)

# LiveKit resumes a dropped connection by itself; if it is still "connecting"
# after this long, the session is treated as lost and joined afresh (a new
# token: the old one may have expired while the server was away).
RESUME_STALL_S = 8.0
# With no discovery to ask (disabled, or not polled yet), a 404 is taken as
# "room not ready" for this long before it is shown as "not found".
UNKNOWN_WAIT_S = 30.0
NOT_FOUND_WORDS = "Conversation not found (404)"
RETRY_API_WORDS = "Anyreach API unavailable, retrying…"

IsActive = Callable[[str], bool | None]  # True/False from discovery, None: not known


@dataclass
class LiveHooks:
    """What the live monitor offers each controller (all optional)."""

    store: TranscriptStore | None = None
    alerts: AlertMatcher | None = None
    is_active: IsActive = field(default=lambda _cid: None)
    on_key_rejected: Callable[[str], None] = field(default=lambda _message: None)
    on_alert: Callable[[MonitoredCall], None] = field(default=lambda _call: None)
    on_store_error: Callable[[str], None] = field(default=lambda _message: None)
    backoff: Callable[[], Backoff] = field(default=Backoff)
    resume_stall_s: float = RESUME_STALL_S


@dataclass
class _Attempt:
    """One listen session's life; events of older sessions are ignored by identity."""

    session: SessionLike
    connected: bool = False
    quiet: bool = False  # we are ending it on purpose: its state changes mean nothing
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    agent_left: asyncio.Event = field(default_factory=asyncio.Event)
    stall_timer: asyncio.TimerHandle | None = None


class LiveCallController(CallController):
    def __init__(
        self,
        call: MonitoredCall,
        client: TokenSource | None,
        router: RouterLike | None,
        *,
        hooks: LiveHooks | None = None,
        session_factory: SessionFactory = _default_session_factory,
    ) -> None:
        super().__init__(call, client, router, session_factory=session_factory)
        self.hooks = hooks or LiveHooks()
        self.mints = 0  # tokens obtained (first join and every rejoin)
        self.joins = 0  # sessions that reached "connected"
        self._over = asyncio.Event()  # the call is over (API or agent said so) or we stop
        self._attempt: _Attempt | None = None
        self._alerted: set[str] = set()

    # -- told from outside ------------------------------------------------------------

    def conversation_over(self) -> None:
        """The API no longer lists the conversation as active: the call has ended."""
        self._over.set()
        if self.finished and not self._stopped:
            # The run gave up earlier (403, a final 404...): nothing else will end the
            # pane, and an unretired pane would hold a slot of max_panes for good.
            self.call.mark_ended()

    @property
    def finished(self) -> bool:
        """Its run is over (the call ended, or an error it cannot retry)."""
        return self._task is not None and self._task.done()

    # -- the life of the pane -----------------------------------------------------------

    async def run(self) -> None:
        if self.client is None:
            self.call.set_error("No API configured")
            return
        backoff = self.hooks.backoff()
        try:
            while not self._done():
                grant = await self._grant(backoff)
                if grant is None or self._done():
                    break
                joined = await self._attend(grant)
                if joined:
                    backoff.reset()  # a session that worked starts a fresh series of delays
                if self._done():
                    break
                self.call.set_state("connecting")  # "Reconnecting…" once it was ever LIVE
                await self._pause(backoff.next_delay())
        finally:
            if self._over.is_set() and not self._stopped:
                self.call.mark_ended()

    def _done(self) -> bool:
        return self._stopped or self._over.is_set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._over.wait(), seconds)

    async def _grant(self, backoff: Backoff) -> ListenerGrant | None:
        """A fresh listener token, or None when there is nothing (more) to join."""
        assert self.client is not None
        loop = asyncio.get_running_loop()
        first_404: float | None = None
        while not self._done():
            try:
                grant: ListenerGrant = await self.client.listener_token(self.conversation_id)
            except ConversationNotActive:
                self._over.set()
                return None
            except ConversationNotFound:
                now = loop.time()
                first_404 = now if first_404 is None else first_404
                active = self.hooks.is_active(self.conversation_id)
                if active is False or (active is None and now - first_404 > UNKNOWN_WAIT_S):
                    self.call.set_waiting(False)
                    self.call.set_error(NOT_FOUND_WORDS)
                    return None
                self.call.set_error(None)
                self.call.set_waiting(True)
            except Unauthorized as error:
                self.call.set_error(describe_api_error(error))
                self.hooks.on_key_rejected(error.message)
                return None
            except Forbidden as error:
                self.call.set_error(describe_api_error(error))
                return None
            except ApiUnavailable:
                self.call.set_error(RETRY_API_WORDS)
            except AnyreachError as error:
                self.call.set_error(describe_api_error(error))
                return None
            else:
                self.mints += 1
                self.call.set_waiting(False)
                return grant
            await self._pause(backoff.next_delay())
        return None

    async def _attend(self, grant: ListenerGrant) -> bool:
        """Join with ``grant`` and stay until the session is lost or the call is over.

        Returns whether the session ever connected.
        """
        session = self._open_session(grant)
        attempt = _Attempt(session)
        self._attempt, self.session = attempt, session
        self._wire_attempt(attempt)
        self.call.set_state("connecting")
        try:
            await session.connect()
            await session.start_audio()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: join failed: %s", self.conversation_id, exc)
            if self.call.error is None and not self._stopped:
                self.call.set_error(str(exc) or f"Could not connect ({type(exc).__name__})")
            await self._end_attempt(attempt)
            return False
        attempt.connected = True
        self.joins += 1
        self.call.set_state("connected")  # the session may have said so before we listened
        if self._level_task is None or self._level_task.done():
            self._level_task = asyncio.get_running_loop().create_task(self._poll_level())
        await _first_of(attempt.lost, attempt.agent_left, self._over)
        if attempt.agent_left.is_set():
            self._over.set()
        if not self._stopped:  # stop() ends the session itself, within its grace
            await self._end_attempt(attempt)
        return True

    async def _end_attempt(self, attempt: _Attempt) -> None:
        attempt.quiet = True
        if attempt.stall_timer is not None:
            attempt.stall_timer.cancel()
        # end() is bounded by the session's own end_timeout and never cancelled.
        await attempt.session.end()

    # -- session events -----------------------------------------------------------------

    def _wire_attempt(self, attempt: _Attempt) -> None:
        session, call = attempt.session, self.call

        def current() -> bool:
            return self._attempt is attempt and not attempt.quiet and not self._stopped

        def on_state(state: str) -> None:
            if not current():
                return
            if state == "disconnected" and attempt.connected:
                attempt.lost.set()
                call.set_state("connecting")  # shown as "Reconnecting…", not "Disconnected"
                return
            call.set_state(state)  # type: ignore[arg-type]
            if state == "connecting" and attempt.connected:
                # LiveKit is resuming by itself; give it a while, then start afresh.
                loop = asyncio.get_running_loop()
                attempt.stall_timer = loop.call_later(self.hooks.resume_stall_s, attempt.lost.set)
            elif state == "connected" and attempt.stall_timer is not None:
                attempt.stall_timer.cancel()
                attempt.stall_timer = None

        def on_agent_left(_event: Any = None) -> None:
            # While LiveKit resumes after a server crash it reports everyone as gone
            # though the agent comes back: only a departure seen while connected ends
            # the call (otherwise discovery or the next token request will tell).
            if current() and session.get_state() == "connected":
                attempt.agent_left.set()

        def on_error(error: Any) -> None:
            if current() and not attempt.connected:
                call.set_error(getattr(error, "message", None) or str(error))

        session.on("stateChange", on_state)
        session.on("transcript", self._on_transcript)
        session.on("agentDisconnected", on_agent_left)
        session.on("error", on_error)

    def _on_transcript(self, segment: Any) -> None:
        if self._stopped:
            return
        call, final = self.call, bool(segment.final)
        # On disk before on screen: a line shown as settled is never lost to a crash.
        if final and self.hooks.store is not None:
            try:
                self.hooks.store.append(self.conversation_id, segment)
            except OSError as error:
                log.warning(
                    "could not save a transcript line of %s: %s", self.conversation_id, error
                )
                self.hooks.on_store_error(f"Transcripts not saved: {error.strerror or error}")
        call.add_transcript(segment.id, segment.role, segment.text, final)
        matcher = self.hooks.alerts
        if (
            matcher is not None
            and segment.id not in self._alerted
            and matcher.matches(segment.text)
        ):
            self._alerted.add(segment.id)
            call.flag_alert(segment.id)
            self.hooks.on_alert(call)

    async def _poll_level(self) -> None:
        # Unlike the base class, follow whichever session is current (rejoins replace it).
        while not self._done():
            session = self.session
            level = session.level if session is not None else None
            if level is not None:
                self.call.set_level(level.peak_dbfs, level.rms_dbfs)
            await asyncio.sleep(LEVEL_POLL_INTERVAL)

    async def stop(self, grace: float = 3.0) -> None:
        self._stopped = True
        self._over.set()  # wakes any backoff pause at once
        await super().stop(grace)


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()  # plain Event.wait()s: safe to cancel

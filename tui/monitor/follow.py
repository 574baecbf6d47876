"""The one call follower: the life of one monitored conversation, for every front end.

Given a conversation id and the API client, a :class:`CallFollower` mints a
listener token, opens the listen session, watches it, and when the session is
lost while the call goes on (the room connection dropped, or LiveKit's own
resume stalls) ends it, mints a *fresh* token (the old one may have expired)
and joins again, waiting with the project's one backoff.  It reports what
happens as typed :data:`FollowEvent` values to one callback; the dashboard's
monitor applies them to the model, ``tail`` writes them as JSON lines.
Nothing else in the product opens listen sessions.

When it stops, by one rule (:class:`FollowPolicy`):

- the API says the call is over (409), or whoever runs it says so
  (:meth:`CallFollower.conversation_over`, e.g. discovery no longer lists it),
  or the agent left while we were connected: ``Ended("call_over")``;
- the API refuses for good (401, 403, an unexpected answer, or 404 for a
  conversation not known to be active): ``Ended("refused")``;
- ``patience_s`` went by without a working session while it kept trying
  (API unavailable, room not ready, joins failing): ``Ended("gave_up")``;
  ``None`` means it keeps trying for as long as the call is active;
- ``fail_fast``: the first refusal or failed join ends it at once (a one-shot
  command reports it; a dashboard pane waits and retries instead);
- :meth:`CallFollower.stop`: ``Ended("stopped")``.

Settled transcript segments are delivered once: a rejoin may replay them, and
the first version received is the one that counts (it is the one already
saved to disk and shown).

UI-free, and no I/O of its own beyond the client and the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tui.anyreach import AnyreachError, ErrorKind, ListenerGrant
from tui.core.backoff import Backoff
from tui.listen import (
    AudioLevel,
    AudioOutput,
    SessionError,
    SessionState,
    Transcript,
    check_listener_token,
)

log = logging.getLogger(__name__)

# LiveKit resumes a dropped connection by itself; if it is still "connecting"
# after this long, the session is treated as lost and joined afresh.
RESUME_STALL_S = 8.0
# With nobody to ask whether the call is active (no discovery, or not polled
# yet), a 404 is taken as "room not ready" for this long.
UNKNOWN_WAIT_S = 30.0
# The SDK contract's bounds, passed explicitly to every session the follower opens:
# joining gives up after CONNECT_TIMEOUT_S; ending is forced after END_TIMEOUT_S.
CONNECT_TIMEOUT_S = 15.0
END_TIMEOUT_S = 3.0
# tail gives up rejoining after this long; the dashboard keeps trying while active.
DEFAULT_PATIENCE_S = 60.0


# -- what a follower reports ----------------------------------------------------------


@dataclass(frozen=True)
class StateChanged:
    """The listen session's state (the SDK's ``stateChange``)."""

    state: SessionState


@dataclass(frozen=True)
class WaitingForRoom:
    """The conversation is active but its room is not there yet (404): retrying."""

    waiting: bool


@dataclass(frozen=True)
class TranscriptReceived:
    """A transcript segment (the SDK's ``transcript``); settled ones arrive once."""

    segment: Transcript


@dataclass(frozen=True)
class AgentLeft:
    """The agent left the room (the SDK's ``agentDisconnected``)."""

    participant_identity: str


@dataclass(frozen=True)
class SessionFailed:
    """The session could not join (the SDK's ``error``): words for a person."""

    message: str


@dataclass(frozen=True)
class ApiProblem:
    """The API refused or failed; ``retrying`` says whether the follower goes on."""

    error: AnyreachError
    retrying: bool


@dataclass(frozen=True)
class Recovered:
    """A token was minted again after API problems: whatever they showed is past."""


EndReason = Literal["call_over", "refused", "gave_up", "no_room", "stopped"]


@dataclass(frozen=True)
class Ended:
    """The follower is done; it reports nothing after this."""

    reason: EndReason
    message: str | None = None  # for "refused", "gave_up", "no_room": what to tell a person
    error: AnyreachError | None = None  # for "refused" (and "gave_up" when the API was down)


FollowEvent = (
    StateChanged
    | WaitingForRoom
    | TranscriptReceived
    | AgentLeft
    | SessionFailed
    | ApiProblem
    | Recovered
    | Ended
)


# -- what a follower needs --------------------------------------------------------------


class TokenSource(Protocol):
    async def listener_token(self, conversation_id: str) -> ListenerGrant: ...


class Session(Protocol):
    """The part of ``tui.listen.ListenSession`` the follower uses."""

    def on(self, event: str, fn: Callable[..., Any]) -> Any: ...
    async def connect(self) -> None: ...
    async def start_audio(self) -> None: ...
    async def end(self) -> None: ...
    def get_state(self) -> SessionState: ...
    def set_heard(self, heard: bool) -> None: ...
    @property
    def level(self) -> AudioLevel: ...
    @property
    def speaking(self) -> bool: ...


# A new session for a grant; whoever runs the follower decides where its audio goes.
SessionOpener = Callable[[ListenerGrant], Session]
# The same, given the audio output explicitly (the monitor's per-call output).
ListenFactory = Callable[[ListenerGrant, AudioOutput | None], Session]
IsActive = Callable[[str], bool | None]  # True/False from discovery, None: not known


def listen_session(grant: ListenerGrant, output: AudioOutput | None = None) -> Session:
    """A real ``tui.listen`` session for ``grant``, playing into ``output`` (if any)."""
    from tui.listen import listen  # late: the session layer pulls in livekit's native runtime

    return listen(
        grant.url,
        grant.token,
        output=output,
        connect_timeout=CONNECT_TIMEOUT_S,
        end_timeout=END_TIMEOUT_S,
    )


@dataclass(frozen=True)
class FollowPolicy:
    """When to retry and when to give up (see the module's docstring)."""

    patience_s: float | None = DEFAULT_PATIENCE_S
    fail_fast: bool = False
    resume_stall_s: float = RESUME_STALL_S
    unknown_wait_s: float = UNKNOWN_WAIT_S
    backoff: Callable[[], Backoff] = Backoff


# A call that discovery lists (a dashboard pane, a call of ``tail --all``) is followed for
# as long as it is active, whatever fails meanwhile: discovery saying it is gone ends it.
# A failed first join is retried too: 32 joins at once on 2 cores can take one past the
# connect timeout, and giving up then lost that call for good.
WHILE_LISTED_POLICY = FollowPolicy(patience_s=None)


# -- the follower -------------------------------------------------------------------------


@dataclass
class _Attempt:
    """One listen session's life; events of older sessions are ignored by identity."""

    session: Session
    connected: bool = False
    failure_reported: bool = False  # the session said why it could not join
    quiet: bool = False  # we are ending it on purpose: its events mean nothing
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    agent_left: asyncio.Event = field(default_factory=asyncio.Event)
    stall_timer: asyncio.TimerHandle | None = None


class _GiveUp(Exception):
    def __init__(self, ended: Ended) -> None:
        super().__init__(ended.reason)
        self.ended = ended


class CallFollower:
    """Follows one conversation until the call is over, it is refused, or it is stopped."""

    def __init__(
        self,
        conversation_id: str,
        tokens: TokenSource,
        on_event: Callable[[FollowEvent], None],
        *,
        policy: FollowPolicy | None = None,
        is_active: IsActive = lambda _cid: None,
        open_session: SessionOpener = listen_session,
    ) -> None:
        self.conversation_id = conversation_id
        self._tokens = tokens
        self._emit = on_event
        self.policy = policy or FollowPolicy()
        self._is_active = is_active
        self._open_session = open_session
        self.mints = 0  # tokens obtained (first join and every rejoin)
        self.joins = 0  # sessions that reached "connected"
        self.ended: Ended | None = None
        self._attempt: _Attempt | None = None
        self._settled: set[str] = set()
        self._over = asyncio.Event()  # the call is over, or we stop: wakes every wait
        self._stopped = False
        self._stop_done = asyncio.Event()  # stop() has ended the session (or given up on it)
        self._api_trouble = False
        self._trying_since: float | None = None  # first failure since the last working session
        self._heard: bool | None = None  # set_heard's wish; None: the session's default

    # -- told from outside --------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        """The current listen session (a rejoin replaces it), if any."""
        return self._attempt.session if self._attempt is not None else None

    @property
    def level(self) -> AudioLevel | None:
        session = self.session
        return session.level if session is not None else None

    @property
    def still_open(self) -> bool:
        """Its session has not reached "disconnected" (after ``stop``: it had to be abandoned)."""
        session = self.session
        return session is not None and session.get_state() != "disconnected"

    def set_heard(self, heard: bool) -> None:
        """Decode the call's audio or not (``ListenSession.set_heard``), now and on rejoins."""
        self._heard = heard
        session = self.session
        if session is not None:
            session.set_heard(heard)

    def conversation_over(self) -> None:
        """Whoever runs the follower learnt that the call has ended (e.g. discovery)."""
        self._over.set()

    async def stop(self, grace: float = END_TIMEOUT_S) -> None:
        """End the session, waiting at most ``grace`` seconds; ``run`` then returns."""
        self._stopped = True
        self._over.set()
        session = self.session
        try:
            if session is not None:
                # Never cancel end() (it may be inside room.disconnect()): shield it and
                # stop waiting after the grace.  end() also rejects an in-flight connect().
                await asyncio.wait_for(asyncio.shield(session.end()), timeout=grace)
        except TimeoutError:
            log.warning("%s: session did not end within %.1f s", self.conversation_id, grace)
        finally:
            self._stop_done.set()

    # -- the life of the call ---------------------------------------------------------

    async def run(self) -> Ended:
        """Follow the call; returns (and has reported) how it ended."""
        backoff = self.policy.backoff()
        try:
            while not self._done():
                grant = await self._grant(backoff)
                if grant is None:
                    break
                if await self._attend(grant):
                    backoff.reset()  # a session that worked starts a fresh series
                if self._done():
                    break
                await self._pause(backoff.next_delay())
            ended = Ended("stopped") if self._stopped else Ended("call_over")
        except _GiveUp as give_up:
            ended = give_up.ended
        self._finish(ended)
        return ended

    def _finish(self, ended: Ended) -> None:
        if self.ended is None:
            self.ended = ended
            self._emit(ended)

    def _done(self) -> bool:
        return self._stopped or self._over.is_set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._over.wait(), seconds)

    def _still_trying(self, message: str, error: AnyreachError | None = None) -> None:
        """A failure we retry: unless patience ran out (then give up with ``message``)."""
        if self.policy.patience_s is None:
            return
        now = asyncio.get_running_loop().time()
        if self._trying_since is None:
            self._trying_since = now
        elif now - self._trying_since >= self.policy.patience_s:
            patience = f"{self.policy.patience_s:g} s"
            raise _GiveUp(Ended("gave_up", f"{message} (gave up after {patience})", error))

    async def _grant(self, backoff: Backoff) -> ListenerGrant | None:
        """A fresh listener token, or None when there is nothing (more) to join."""
        loop = asyncio.get_running_loop()
        first_404: float | None = None
        while not self._done():
            try:
                grant = await self._tokens.listener_token(self.conversation_id)
            except AnyreachError as error:
                first_ask = self.mints == 0
                if error.call_over and not (self.policy.fail_fast and first_ask):
                    self._over.set()
                    return None
                if (self.policy.fail_fast and first_ask) or not error.retryable:
                    self._emit(ApiProblem(error, retrying=False))
                    raise _GiveUp(Ended("refused", error.message, error)) from None
                if error.kind is ErrorKind.NOT_FOUND:
                    now = loop.time()
                    first_404 = now if first_404 is None else first_404
                    active = self._is_active(self.conversation_id)
                    unknown_too_long = now - first_404 > self.policy.unknown_wait_s
                    if active is False or (active is None and unknown_too_long):
                        self._emit(WaitingForRoom(False))
                        self._emit(ApiProblem(error, retrying=False))
                        raise _GiveUp(Ended("refused", error.message, error)) from None
                    self._emit(WaitingForRoom(True))
                else:
                    self._api_trouble = True
                    self._emit(ApiProblem(error, retrying=True))
                self._still_trying(error.message, error)
            else:
                self.mints += 1
                if first_404 is not None:
                    self._emit(WaitingForRoom(False))
                if self._api_trouble:
                    self._api_trouble = False
                    self._emit(Recovered())
                # The token guard: never join with a token that could publish or be seen.
                refusal = check_listener_token(grant.token)
                if refusal is not None:
                    self._emit(SessionFailed(refusal))
                    raise _GiveUp(Ended("refused", refusal))
                return grant
            await self._pause(backoff.next_delay())
        return None

    async def _attend(self, grant: ListenerGrant) -> bool:
        """Join with ``grant`` and stay until the session is lost or the call is over.

        Returns whether the session ever connected.
        """
        session = self._open_session(grant)
        if self._heard is not None:
            session.set_heard(self._heard)  # before connect: an unheard one never decodes
        attempt = _Attempt(session)
        self._attempt = attempt
        self._wire(attempt)
        try:
            await session.connect()
            await session.start_audio()  # plays only if the session was given an output
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: join failed: %s", self.conversation_id, exc)
            message = exc.message if isinstance(exc, SessionError) else str(exc)
            message = message or f"Could not connect ({type(exc).__name__})"
            if not attempt.failure_reported and not self._stopped:
                self._emit(SessionFailed(message))  # e.g. a timeout with no "error" event
            await self._end_attempt(attempt)
            if self._stopped:
                return False
            if self.policy.fail_fast and self.joins == 0:
                raise _GiveUp(Ended("no_room", message)) from None
            self._still_trying(message)
            return False
        attempt.connected = True
        self.joins += 1
        self._trying_since = None
        await _first_of(attempt.lost, attempt.agent_left, self._over)
        if attempt.agent_left.is_set():
            self._over.set()
        if self._stopped:
            # stop() ends the session itself, within its grace; its last state is
            # reported before Ended.
            await self._stop_done.wait()
        else:
            await self._end_attempt(attempt)
        return True

    async def _end_attempt(self, attempt: _Attempt) -> None:
        if attempt.stall_timer is not None:
            attempt.stall_timer.cancel()
        # end() is bounded by the session's own end_timeout and never cancelled; its
        # last state ("disconnected") is still reported, then the attempt goes quiet.
        await attempt.session.end()
        attempt.quiet = True

    # -- the session's events ------------------------------------------------------------

    def _wire(self, attempt: _Attempt) -> None:
        session = attempt.session

        def current() -> bool:
            return self._attempt is attempt and not attempt.quiet

        def on_state(state: SessionState) -> None:
            if not current():
                return
            self._emit(StateChanged(state))
            if not attempt.connected:
                return
            if state == "disconnected":
                attempt.lost.set()
            elif state == "connecting":
                self._arm_stall_timer(attempt)  # LiveKit is resuming by itself
            elif state == "connected" and attempt.stall_timer is not None:
                attempt.stall_timer.cancel()
                attempt.stall_timer = None

        def on_transcript(segment: Transcript) -> None:
            if not current() or segment.id in self._settled:
                return  # a rejoin replays settled segments: the first version counts
            if segment.final:
                self._settled.add(segment.id)
            self._emit(TranscriptReceived(segment))

        def on_agent_left(event: Any) -> None:
            if not current():
                return
            self._emit(AgentLeft(getattr(event, "participant_identity", "")))
            # While LiveKit resumes after a server crash it reports everyone as gone,
            # though the agent comes back: only a departure seen while connected ends
            # the call (otherwise the API or discovery will tell).
            if session.get_state() == "connected":
                attempt.agent_left.set()
            else:
                self._arm_stall_timer(attempt)

        def on_error(error: Any) -> None:
            if current() and not attempt.connected:
                attempt.failure_reported = True
                self._emit(SessionFailed(getattr(error, "message", None) or str(error)))

        session.on("stateChange", on_state)
        session.on("transcript", on_transcript)
        session.on("agentDisconnected", on_agent_left)
        session.on("error", on_error)

    def _arm_stall_timer(self, attempt: _Attempt) -> None:
        """A connected session is resuming (or its agent seemed to leave meanwhile):
        give LiveKit ``resume_stall_s`` to heal it, then treat it as lost and rejoin.
        One timer per stall: a repeated "connecting" keeps the first deadline."""
        if attempt.connected and attempt.stall_timer is None:
            attempt.stall_timer = asyncio.get_running_loop().call_later(
                self.policy.resume_stall_s, attempt.lost.set
            )


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()  # plain Event.wait()s: safe to cancel


__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_PATIENCE_S",
    "END_TIMEOUT_S",
    "RESUME_STALL_S",
    "AgentLeft",
    "ApiProblem",
    "CallFollower",
    "EndReason",
    "Ended",
    "FollowEvent",
    "FollowPolicy",
    "ListenFactory",
    "Recovered",
    "SessionFailed",
    "StateChanged",
    "TranscriptReceived",
    "WaitingForRoom",
    "listen_session",
]

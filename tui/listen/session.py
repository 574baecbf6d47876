"""One listen session: the browser ``AnyReach.listen`` contract on ``livekit`` rtc.

Traps handled here (docs/livekit-notes.md): ``room.connect()`` and
``room.disconnect()`` are never cancelled (a cancelled native connect that later
succeeds can take the whole process down), so both run in tasks of their own
and the session enforces its deadlines around them with ``asyncio.wait``; the
``Room`` is built inside the running loop; room callbacks stay synchronous and
short; every AudioStream and text stream reader is closed at teardown.

Audio is decoded only while the session is *heard* (``set_heard``, True unless
told otherwise): an unheard session keeps its tracks subscribed but reads no
frame, so it costs no audio work in Python; ``speaking`` (the server's active
speakers) still says whether someone in the call is talking.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

from livekit import rtc

from tui.listen.audio import AudioOutput, CallAudio
from tui.listen.errors import (
    SessionClosedError,
    SessionError,
    connect_failure_message,
    describe_server,
    install_log_redaction,
    redact_secrets,
    url_problem,
)
from tui.listen.events import EventEmitter
from tui.listen.feed import TranscriptFeed
from tui.listen.levels import AudioLevel
from tui.listen.transcripts import DEFAULT_LEGACY_HOLD, TOPIC_TRANSCRIPTION, Transcript

logger = logging.getLogger(__name__)

SessionState = Literal["idle", "connecting", "connected", "disconnected"]
STATE_IDLE: SessionState = "idle"
STATE_CONNECTING: SessionState = "connecting"
STATE_CONNECTED: SessionState = "connected"
STATE_DISCONNECTED: SessionState = "disconnected"

EVENT_NAMES = frozenset({"stateChange", "transcript", "agentDisconnected", "error", "ended"})
_AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
_NATIVE_ATTEMPTS = 3  # the native layer retries a failed signal connection this many times
END_DRAIN_SHARE = 0.2  # of end_timeout, spent letting open transcript streams finish
_ids = itertools.count(1)


@dataclass(frozen=True)
class AgentDisconnected:
    participant_identity: str


class _Closed:
    """``await session.closed``: background teardown (room disconnect included) is over."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    def _set(self) -> None:
        self._event.set()

    def __await__(self) -> Generator[Any, None, bool]:
        return self._event.wait().__await__()


class ListenSession:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        output: AudioOutput | None = None,
        connect_timeout: float = 15.0,
        end_timeout: float = 3.0,
        legacy_hold: float = DEFAULT_LEGACY_HOLD,
        label: str | None = None,
    ) -> None:
        self._url = url
        self._token = token  # secret: never logged, never in repr or messages
        self._connect_timeout = connect_timeout
        self._end_timeout = end_timeout
        self._label = label or f"listen-{next(_ids)}"
        self._emitter = EventEmitter(self._label)
        self._feed = TranscriptFeed(self._emit_transcript, self._label, legacy_hold)
        self._audio = CallAudio(output, self._label)
        self._state: SessionState = STATE_IDLE
        self._room: rtc.Room | None = None
        self._native_connect: asyncio.Task[None] | None = None
        self._connect_op: asyncio.Task[None] | None = None
        self._end_op: asyncio.Task[None] | None = None
        self._room_disposal: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._failure: SessionError | None = None
        self._stop_reason: str | None = None  # set when connecting must stop early
        self._stop = asyncio.Event()
        self._audio_ready: asyncio.Event = asyncio.Event()
        self._awaiting_audio: set[str] = set()
        self._background: set[asyncio.Future[Any]] = set()
        self._speakers: frozenset[str] = frozenset()
        self._given_up = False  # connect failed or end() began: room events are ignored
        self._ended = False
        self.closed = _Closed()
        install_log_redaction()

    def __repr__(self) -> str:
        return (
            f"ListenSession({self._label}, server={describe_server(self._url)}, "
            f"state={self._state})"
        )

    # ---- public surface ---------------------------------------------------------------
    def on(self, event: str, handler: Callable[..., Any]) -> ListenSession:
        _check_event(event)
        self._emitter.on(event, handler)
        return self

    def off(self, event: str, handler: Callable[..., Any]) -> ListenSession:
        _check_event(event)
        self._emitter.off(event, handler)
        return self

    def get_state(self) -> SessionState:
        return self._state

    def is_muted(self) -> bool:
        return self._audio.muted

    def mute(self) -> None:
        self._audio.set_muted(True)

    def unmute(self) -> None:
        self._audio.set_muted(False)

    def set_heard(self, heard: bool) -> None:
        """Decode this call's audio (True, the default) or not (False).

        Heard: every audio track is decoded, mixed, measured (``level``) and handed
        to the output (once ``start_audio`` was called, unless muted).  Not heard:
        no audio stream exists, nothing reaches the output (it is flushed) and
        ``level`` is silence; transcripts, events and ``speaking`` are unaffected.
        Decoding starts again at once on ``set_heard(True)``: the tracks stay
        subscribed.  Unlike ``mute()``, which only stops the playing.
        """
        for task in self._audio.set_heard(heard):
            self._track(task)

    def is_heard(self) -> bool:
        return self._audio.heard

    @property
    def speaking(self) -> bool:
        """Someone in the call is talking, by the server's active speakers (heard or not)."""
        return bool(self._speakers)

    @property
    def speakers(self) -> frozenset[str]:
        """Identities of the participants talking now (LiveKit's active speakers).

        Updated about every 0.5 s by the server, as levels change.  A participant
        already talking at a perfectly steady level when the session joined (a test
        tone) is reported only once that level changes.
        """
        return self._speakers

    async def start_audio(self) -> None:
        """Start handing decoded audio to the output (the browser's autoplay gesture)."""
        if not self._ended and self._end_op is None:
            self._audio.playing = True

    @property
    def level(self) -> AudioLevel:
        """The decoded audio's level, per 10 ms block, muted or not; silence when not heard."""
        return self._audio.level

    @property
    def label(self) -> str:
        return self._label

    async def connect(self) -> None:
        if self._state == STATE_CONNECTED:
            return
        if self._end_op is not None:
            raise SessionClosedError("This listen session has ended: start a new one to listen.")
        if self._connect_op is None:
            self._connect_op = asyncio.get_running_loop().create_task(self._run_connect())
        elif self._connect_op.done():
            if self._failure is not None:
                raise SessionClosedError(
                    f"This listen session already failed ({self._failure.message}): "
                    "start a new one."
                )
            raise SessionClosedError(
                "This listen session was disconnected: start a new one to listen again."
            )
        # Every caller awaits the same operation; shield so one impatient caller
        # cancelling its own await does not abort the connection for the others.
        await asyncio.shield(self._connect_op)

    async def end(self) -> None:
        if self._end_op is None:
            self._end_op = asyncio.get_running_loop().create_task(self._run_end())
        await asyncio.shield(self._end_op)

    # ---- connecting -------------------------------------------------------------------
    async def _run_connect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        self._set_state(STATE_CONNECTING)
        try:
            problem = url_problem(self._url)
            if problem is not None:
                raise SessionError(problem)
            room = self._room = self._feed.room = rtc.Room(loop=loop)
            self._wire(room)
            options = rtc.RoomOptions(
                auto_subscribe=True,
                connect_timeout=max(1.0, self._connect_timeout / _NATIVE_ATTEMPTS),
            )
            native = loop.create_task(room.connect(self._url, self._token, options))
            self._native_connect = native
            self._track(native)
            await self._wait_for(native, deadline, self._join_timeout_message())
            error = native.exception()
            if error is not None:
                raise SessionError(self._describe_connect_error(error)) from None
            self._scan_room(room)
            await self._wait_for(
                loop.create_task(self._audio_ready.wait()),
                deadline,
                f"Joined the call, but its audio did not arrive within "
                f"{self._connect_timeout:g} s.",
            )
        except SessionError as failure:
            self._connect_failed(failure)
            raise
        self._set_state(STATE_CONNECTED)

    async def _wait_for(self, target: asyncio.Task[Any], deadline: float, late: str) -> None:
        """Wait for ``target`` until ``deadline`` or an early stop, never cancelling it."""
        loop = asyncio.get_running_loop()
        stopped = loop.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {target, stopped},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopped.cancel()  # our own helper, never a LiveKit call
            await asyncio.wait({stopped})
        if target in done:
            return
        if target is not self._native_connect:
            target.cancel()  # a plain Event.wait: safe to cancel
            await asyncio.wait({target})
        if self._stop_reason is not None:
            raise SessionError(self._stop_reason)
        raise SessionError(late)

    def _join_timeout_message(self) -> str:
        return (
            f"The LiveKit server at {describe_server(self._url)} did not let the listener "
            f"join within {self._connect_timeout:g} s."
        )

    def _describe_connect_error(self, error: BaseException) -> str:
        if isinstance(error, rtc.ConnectError):
            return connect_failure_message(error.message, self._url)
        return f"Could not join the call: {redact_secrets(str(error))}"

    def _connect_failed(self, failure: SessionError) -> None:
        self._given_up = True
        self._failure = failure
        self._ensure_room_disposed()
        if self._end_op is None:  # a user's own end() is not an error
            logger.info("%s: connect failed: %s", self._label, failure.message)
            self._emitter.emit("error", failure)
            self._set_state(STATE_DISCONNECTED)

    def _scan_room(self, room: rtc.Room) -> None:
        """Participants and tracks already there get no events: look them up."""
        for participant in room.remote_participants.values():
            self._feed.participant_joined(participant)
            for publication in participant.track_publications.values():
                if publication.kind == rtc.TrackKind.KIND_AUDIO and not publication.subscribed:
                    self._awaiting_audio.add(publication.sid)
        self._check_audio_ready()

    def _check_audio_ready(self) -> None:
        if not self._awaiting_audio:
            self._audio_ready.set()

    # ---- room events (synchronous, short) ------------------------------------------
    def _wire(self, room: rtc.Room) -> None:
        room.on("participant_connected", self._on_participant_connected)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("track_unsubscribed", self._on_track_unsubscribed)
        room.on("track_unpublished", self._on_track_unpublished)
        room.on("track_subscription_failed", self._on_track_subscription_failed)
        room.on("transcription_received", self._on_legacy_transcription)
        room.on("active_speakers_changed", self._on_active_speakers)
        room.on("reconnecting", self._on_reconnecting)
        room.on("reconnected", self._on_reconnected)
        room.on("disconnected", self._on_disconnected)
        # Before connect(): streams on a topic without a handler are dropped.
        room.register_text_stream_handler(TOPIC_TRANSCRIPTION, self._on_text_stream)

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        self._feed.participant_joined(participant)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self._given_up:
            return
        for sid in participant.track_publications:
            self._awaiting_audio.discard(sid)
        self._check_audio_ready()
        self._speakers = self._speakers - {participant.identity}
        is_agent = participant.kind == _AGENT or participant.identity in self._feed.agents
        self._feed.participant_left(participant.identity, is_agent)
        if is_agent:
            self._emitter.emit("agentDisconnected", AgentDisconnected(participant.identity))

    def _on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        self._awaiting_audio.discard(publication.sid)
        if not self._given_up and track.kind == rtc.TrackKind.KIND_AUDIO:
            self._audio.add_track(publication.sid, track)
        self._check_audio_ready()

    def _on_track_unsubscribed(
        self,
        track: rtc.Track | None,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        closing = self._audio.remove_track(publication.sid)
        if closing is not None:
            self._track(closing)

    def _on_track_unpublished(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._awaiting_audio.discard(publication.sid)
        self._check_audio_ready()

    def _on_track_subscription_failed(
        self, participant: rtc.RemoteParticipant, track_sid: str, error: str
    ) -> None:
        logger.warning(
            "%s: could not subscribe to a track of %s: %s", self._label, participant.identity, error
        )
        self._awaiting_audio.discard(track_sid)
        self._check_audio_ready()

    def _on_reconnecting(self) -> None:
        if self._state == STATE_CONNECTED:
            self._set_state(STATE_CONNECTING)

    def _on_reconnected(self) -> None:
        if self._state == STATE_CONNECTING and self._connect_op and self._connect_op.done():
            self._set_state(STATE_CONNECTED)

    def _on_disconnected(self, reason: Any) -> None:
        if self._given_up:
            return
        logger.info("%s: room lost (reason %s)", self._label, reason)
        self._stop_early("The connection to the call was lost while joining.")
        self._speakers = frozenset()
        self._feed.room_lost()
        self._set_state(STATE_DISCONNECTED)

    def _on_active_speakers(self, speakers: list[rtc.Participant]) -> None:
        if not self._given_up:
            self._speakers = frozenset(
                p.identity for p in speakers if isinstance(p, rtc.RemoteParticipant)
            )

    # ---- transcripts ------------------------------------------------------------------
    def _on_text_stream(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        if self._given_up:
            reader.close()
            return
        self._feed.on_text_stream(reader, participant_identity)

    def _on_legacy_transcription(
        self,
        segments: list[rtc.TranscriptionSegment],
        participant: rtc.Participant | None,
        publication: rtc.TrackPublication | None,
    ) -> None:
        if not self._given_up:
            self._feed.on_legacy(segments, participant, publication)

    def _emit_transcript(self, transcript: Transcript) -> None:
        if not self._ended:
            self._emitter.emit("transcript", transcript)

    # ---- ending -----------------------------------------------------------------------
    async def _run_end(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._end_timeout
        self._stop_early("The session was ended before it finished connecting.")
        self._audio.stop_output()
        await self._feed.finish(drain=self._end_timeout * END_DRAIN_SHARE)
        self._given_up = True
        teardown = loop.create_task(self._teardown())
        self._track(teardown)
        # Forced teardown: a frozen server must not hold end() past its bound.
        await asyncio.wait({teardown}, timeout=max(0.0, deadline - loop.time()))
        if not teardown.done():
            logger.warning(
                "%s: teardown still running after %g s; finishing in the background",
                self._label,
                self._end_timeout,
            )
        self._set_state(STATE_DISCONNECTED)
        self._ended = True
        self._emitter.emit("ended")
        self._closer = loop.create_task(self._finish_closing())

    def _stop_early(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()

    async def _teardown(self) -> None:
        await self._feed.aclose()
        await self._audio.aclose()
        await self._ensure_room_disposed()

    def _ensure_room_disposed(self) -> asyncio.Task[None]:
        if self._room_disposal is None:
            self._room_disposal = asyncio.get_running_loop().create_task(self._dispose_room())
            self._track(self._room_disposal)
        return self._room_disposal

    async def _dispose_room(self) -> None:
        native = self._native_connect
        if native is not None and not native.done():
            # Never cancel room.connect(): let it finish, then undo it if it joined.
            await asyncio.wait({native})
        room = self._room
        if room is None or native is None or native.cancelled() or native.exception():
            return
        try:
            await room.disconnect()
        except Exception:
            logger.exception("%s: leaving the room failed", self._label)

    async def _finish_closing(self) -> None:
        pending = {task for task in self._background if not task.done()}
        if pending:
            await asyncio.wait(pending)
        await self._emitter.drain(grace=self._end_timeout)
        self.closed._set()

    def _track(self, task: asyncio.Future[Any]) -> None:
        """Keep a background task referenced until it finishes (and for ``closed``)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- state ------------------------------------------------------------------------
    def _set_state(self, state: SessionState) -> None:
        if state == self._state:
            return
        self._state = state
        self._emitter.emit("stateChange", state)


def _check_event(event: str) -> None:
    if event not in EVENT_NAMES:
        raise ValueError(f"unknown event {event!r}; expected one of {sorted(EVENT_NAMES)}")


def listen(
    url: str,
    token: str,
    *,
    output: AudioOutput | None = None,
    connect_timeout: float = 15.0,
    end_timeout: float = 3.0,
) -> ListenSession:
    """A new, unconnected session (the browser SDK's ``AnyReach.listen``)."""
    return ListenSession(
        url, token, output=output, connect_timeout=connect_timeout, end_timeout=end_timeout
    )


__all__ = [
    "STATE_CONNECTED",
    "STATE_CONNECTING",
    "STATE_DISCONNECTED",
    "STATE_IDLE",
    "AgentDisconnected",
    "ListenSession",
    "SessionState",
    "listen",
]

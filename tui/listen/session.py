"""One listen session: the browser ``AnyReach.listen`` contract on ``livekit`` rtc.

Traps handled here (docs/livekit-notes.md): ``room.connect()`` and
``room.disconnect()`` are never cancelled (a cancelled native connect that later
succeeds can take the whole process down), so both run in tasks of their own
and the session enforces its deadlines around them with ``asyncio.wait``; the
``Room`` is built inside the running loop; room callbacks stay synchronous and
short; every AudioStream and text stream reader is closed at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Generator, Iterable
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
from tui.listen.levels import AudioLevel
from tui.listen.transcripts import (
    DEFAULT_LEGACY_HOLD,
    TOPIC_TRANSCRIPTION,
    LegacySegment,
    Role,
    SegmentAssembler,
    Transcript,
)

logger = logging.getLogger(__name__)

SessionState = Literal["idle", "connecting", "connected", "disconnected"]
STATE_IDLE: SessionState = "idle"
STATE_CONNECTING: SessionState = "connecting"
STATE_CONNECTED: SessionState = "connected"
STATE_DISCONNECTED: SessionState = "disconnected"

EVENT_NAMES = frozenset({"stateChange", "transcript", "agentDisconnected", "error", "ended"})
_AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
_NATIVE_ATTEMPTS = 3  # the native layer retries a failed signal connection this many times
STREAM_CUT_GRACE = 2.0  # s of silence, after its sender left, before a stream is cut
# s a transcript stream waits for news of its unknown sender: the server announces
# a participant only once its media connection is up, often after its first words.
SENDER_GRACE = 3.0
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
        self._assembler = SegmentAssembler(legacy_hold=legacy_hold)
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
        self._participants_changed = asyncio.Event()
        self._last_opened: asyncio.Event | None = None
        self._awaiting_audio: set[str] = set()
        self._agents: set[str] = set()
        # open transcript streams: reading task -> (reader, sender identity)
        self._readers: dict[asyncio.Task[None], tuple[rtc.TextStreamReader, str]] = {}
        self._cut_streams: set[str] = set()  # stream ids closed because their sender left
        self._cut_timers: set[asyncio.TimerHandle] = set()
        self._stream_activity: dict[str, float] = {}  # stream id -> loop time of its last data
        self._background: set[asyncio.Task[Any]] = set()
        self._legacy_timer: asyncio.TimerHandle | None = None
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

    async def start_audio(self) -> None:
        """Start handing decoded audio to the output (the browser's autoplay gesture)."""
        if not self._ended and self._end_op is None:
            self._audio.playing = True

    @property
    def level(self) -> AudioLevel:
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
            room = self._room = rtc.Room(loop=loop)
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
            if participant.kind == _AGENT:
                self._agents.add(participant.identity)
            for publication in participant.track_publications.values():
                if (
                    publication.kind == rtc.TrackKind.KIND_AUDIO
                    and not publication.subscribed
                ):
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
        room.on("reconnecting", self._on_reconnecting)
        room.on("reconnected", self._on_reconnected)
        room.on("disconnected", self._on_disconnected)
        # Before connect(): streams on a topic without a handler are dropped.
        room.register_text_stream_handler(TOPIC_TRANSCRIPTION, self._on_text_stream)

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == _AGENT:
            self._agents.add(participant.identity)
        self._participants_changed.set()
        self._participants_changed = asyncio.Event()

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self._given_up:
            return
        for sid in participant.track_publications:
            self._awaiting_audio.discard(sid)
        self._check_audio_ready()
        is_agent = participant.kind == _AGENT or participant.identity in self._agents
        # Data can trail the departure notice, so the departed speaker's segments are
        # settled only once their streams have gone quiet.  A sender that leaves
        # mid-stream leaves its reader waiting forever (the native layer reports no
        # error), so quiet streams are cut.  Agents relay the caller's transcripts
        # too, so an agent leaving concerns every stream.
        timer = asyncio.get_running_loop().call_later(
            STREAM_CUT_GRACE, self._settle_departed, participant.identity, is_agent
        )
        self._cut_timers.add(timer)
        if is_agent:
            self._emitter.emit("agentDisconnected", AgentDisconnected(participant.identity))

    def _settle_departed(self, identity: str, everyone: bool) -> None:
        """Cut the departed sender's streams that have gone quiet and settle its
        segments; check again later while some are still receiving."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._cut_timers = {t for t in self._cut_timers if t.when() > now}
        still_busy = False
        for reader, sender in list(self._readers.values()):
            if not (everyone or sender == identity):
                continue
            stream_id = reader.info.stream_id
            if now - self._stream_activity.get(stream_id, now) < STREAM_CUT_GRACE:
                still_busy = True
                continue
            self._cut_streams.add(stream_id)
            reader.close()  # its reading task ends and settles the segment as broken
        if self._given_up:
            return
        if still_busy:
            timer = loop.call_later(STREAM_CUT_GRACE, self._settle_departed, identity, everyone)
            self._cut_timers.add(timer)
        else:
            self._emit_transcripts(self._assembler.speaker_left(identity))

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
        logger.warning("%s: could not subscribe to a track of %s: %s",
                       self._label, participant.identity, error)
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
        self._emit_transcripts(self._assembler.finish_all())
        self._set_state(STATE_DISCONNECTED)

    # ---- transcripts ------------------------------------------------------------------
    def _on_text_stream(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        if self._given_up:
            reader.close()
            return
        # Streams must reach the assembler in arrival order (the newest stream of a
        # segment wins), even when one of them waits to learn who its sender is.
        previous, opened = self._last_opened, asyncio.Event()
        self._last_opened = opened
        task = asyncio.get_running_loop().create_task(
            self._read_transcript_stream(reader, participant_identity, previous, opened)
        )
        self._readers[task] = (reader, participant_identity)
        task.add_done_callback(self._forget_reader)

    def _forget_reader(self, task: asyncio.Task[None]) -> None:
        self._readers.pop(task, None)

    async def _read_transcript_stream(
        self,
        reader: rtc.TextStreamReader,
        participant_identity: str,
        previous: asyncio.Event | None,
        opened: asyncio.Event,
    ) -> None:
        stream_id = reader.info.stream_id
        broken = False
        try:
            try:
                if previous is not None:
                    await previous.wait()
                # Data and signalling travel separately: a stream can beat the news
                # of its sender joining, and the role depends on the sender's kind.
                await self._wait_until_known(participant_identity)
                role = self._role_of(participant_identity)
                self._emit_transcripts(
                    self._assembler.stream_opened(
                        stream_id, reader.info.attributes, role, participant_identity
                    )
                )
            finally:
                opened.set()
            loop = asyncio.get_running_loop()
            self._stream_activity[stream_id] = loop.time()
            async for chunk in reader:
                self._stream_activity[stream_id] = loop.time()
                self._emit_transcripts(self._assembler.stream_chunk(stream_id, chunk))
        except rtc.StreamError as error:
            # Sender left or aborted: what arrived is all there will be.
            logger.info("%s: transcript stream broke: %s", self._label, error)
            broken = True
        finally:
            reader.close()
        broken = broken or stream_id in self._cut_streams
        self._cut_streams.discard(stream_id)
        self._stream_activity.pop(stream_id, None)
        self._emit_transcripts(
            self._assembler.stream_closed(stream_id, reader.info.attributes, broken=broken)
        )

    async def _wait_until_known(self, identity: str) -> None:
        if self._agents:
            # The agent is known, so an unknown sender is someone it transcribes
            # (the caller): a "user" either way, no need to wait.
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SENDER_GRACE
        while not self._knows(identity) and not self._given_up:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            changed = self._participants_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _knows(self, identity: str) -> bool:
        room = self._room
        return identity in self._agents or (
            room is not None and identity in room.remote_participants
        )

    def _on_legacy_transcription(
        self,
        segments: list[rtc.TranscriptionSegment],
        participant: rtc.Participant | None,
        publication: rtc.TrackPublication | None,
    ) -> None:
        if self._given_up:
            return
        identity = participant.identity if participant is not None else ""
        loop = asyncio.get_running_loop()
        self._emit_transcripts(
            self._assembler.legacy(
                identity,
                self._role_of(identity),
                [LegacySegment(s.id, s.text, s.final) for s in segments],
                loop.time(),
            )
        )
        self._arm_legacy_timer()

    def _arm_legacy_timer(self) -> None:
        deadline = self._assembler.next_deadline()
        timer = self._legacy_timer
        if timer is not None and (deadline is None or timer.when() > deadline):
            timer.cancel()
            self._legacy_timer = timer = None
        if deadline is not None and timer is None and not self._given_up:
            self._legacy_timer = asyncio.get_running_loop().call_at(
                deadline, self._on_legacy_due
            )

    def _on_legacy_due(self) -> None:
        self._legacy_timer = None
        self._emit_transcripts(self._assembler.due(asyncio.get_running_loop().time()))
        self._arm_legacy_timer()

    def _role_of(self, identity: str) -> Role:
        if identity in self._agents:
            return "agent"
        room = self._room
        participant = room.remote_participants.get(identity) if room is not None else None
        if participant is not None and participant.kind == _AGENT:
            self._agents.add(identity)
            return "agent"
        return "user"

    def _emit_transcripts(self, transcripts: Iterable[Transcript]) -> None:
        for transcript in transcripts:
            if self._ended:
                return
            self._emitter.emit("transcript", transcript)

    # ---- ending -----------------------------------------------------------------------
    async def _run_end(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._end_timeout
        self._stop_early("The session was ended before it finished connecting.")
        self._audio.stop_output()
        if self._legacy_timer is not None:
            self._legacy_timer.cancel()
            self._legacy_timer = None
        for timer in self._cut_timers:
            timer.cancel()
        self._cut_timers.clear()
        if self._readers:
            # Words already sent (a final stream racing the agent's departure) are
            # still in the pipe: let open streams finish briefly before settling.
            await asyncio.wait(set(self._readers), timeout=self._end_timeout * END_DRAIN_SHARE)
        self._emit_transcripts(self._assembler.finish_all())
        self._given_up = True
        self._participants_changed.set()  # wake streams waiting to learn their sender
        teardown = loop.create_task(self._teardown())
        self._track(teardown)
        # Forced teardown: a frozen server must not hold end() past its bound.
        await asyncio.wait({teardown}, timeout=max(0.0, deadline - loop.time()))
        if not teardown.done():
            logger.warning("%s: teardown still running after %g s; finishing in the background",
                           self._label, self._end_timeout)
        self._set_state(STATE_DISCONNECTED)
        self._ended = True
        self._emitter.emit("ended")
        self._closer = loop.create_task(self._finish_closing())

    def _stop_early(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()

    async def _teardown(self) -> None:
        for reader, _ in list(self._readers.values()):
            reader.close()  # wakes its pending read: the reading task ends by itself
        if self._readers:
            await asyncio.wait(set(self._readers))
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

    def _track(self, task: asyncio.Task[Any]) -> None:
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

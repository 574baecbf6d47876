"""The two participants of a simulated call: an AI agent bot and a caller bot.

A :class:`Bot` stays in its room until told to leave: when the server drops it
(crash, restart on the same ports) it joins again with a fresh token and carries
on.  The :class:`AgentBot` also publishes live transcription exactly as LiveKit
agents 1.x do (see docs in shared/docs/livekit-notes.md): text streams on
``lk.transcription`` and, optionally, legacy transcription packets.

Nothing here raises into the caller's loop on network trouble: failures are
logged and the bot tries again, since a crashing bot would end a whole demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Literal, NamedTuple

import numpy as np
from livekit import api, rtc

from tui.core.backoff import Backoff
from tui.demo.tts import SAMPLE_RATE, tone

log = logging.getLogger(__name__)

TOPIC_TRANSCRIPTION = "lk.transcription"
ATTR_SEGMENT_ID = "lk.segment_id"
ATTR_FINAL = "lk.transcription_final"
ATTR_TRACK_ID = "lk.transcribed_track_id"
# Topics the bots listen on only to notice anyone sending them data (hidden listener checks).
WATCHED_TOPICS = (TOPIC_TRANSCRIPTION, "lk.chat")

FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms: what a direct-capture source takes
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
# Sources capture directly (queue_size_ms=0): frames go straight to the encoder and a
# bot that is not speaking costs nothing.  A buffered source (the SDK's default) runs a
# 10 ms timer per track that encodes silence whenever its queue is empty: ~3 % of a
# core per idle track here, more than the speaking ones cost.  The bots pace the frames
# themselves, at most PACE_LEAD_S ahead of the wall clock.
SOURCE_QUEUE_MS = 0
PACE_LEAD_S = 0.03
# A bot that never stops (tone mode's agent) is better off buffered: it has no silence
# to encode anyway, and 100 ms chunks are a tenth of the FFI calls of 10 ms frames.
CONTINUOUS_QUEUE_MS = 200
CONTINUOUS_CHUNK_SAMPLES = SAMPLE_RATE // 10
MAX_CONTINUOUS_LEAD_S = 0.3  # how far tone capture may run ahead of the wall clock
REJOIN_DELAY = 1.0  # the first delay of the rejoin backoff
REJOIN_MAX_DELAY = 10.0
# Joins running at once per event loop: 32 calls joining together (64 connections,
# 64 track publications) flooded livekit-server and the FFI on a small machine, and
# connects timed out.  The others wait their turn.
MAX_CONCURRENT_JOINS = 4
CONNECT_TIMEOUT = 5.0
TOKEN_TTL = timedelta(hours=6)
# A pending connect (never cancelled) can take the native layer's 3 attempts.
LEAVE_TIMEOUT = 4 * CONNECT_TIMEOUT

Role = Literal["agent", "caller"]
Channel = Literal["stream", "legacy"]


class SentSegment(NamedTuple):
    """One transcription update a bot published (for tests and measurements)."""

    segment_id: str
    role: Role
    text: str
    final: bool
    channel: Channel = "stream"
    # time.monotonic() as the bot began publishing it: one clock (CLOCK_MONOTONIC) for
    # every process of the machine, so a listener in another process can time delivery.
    published_at: float = 0.0


def new_segment_id() -> str:
    """``SG_`` + 12 hex characters, the shape livekit-agents uses."""
    return "SG_" + secrets.token_hex(6)


class Bot:
    """One participant that joins ``room_name`` and stays joined until :meth:`leave`."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        api_secret: str,
        room_name: str,
        identity: str,
        display_name: str,
        kind: Literal["agent", "sip", "standard"],
        role: Role,
        on_joined: Callable[[Bot], None] | None = None,
        continuous_audio: bool = False,
    ) -> None:
        self._url = url
        self._api_key = api_key
        self._api_secret = api_secret
        self.room_name = room_name
        self.identity = identity
        self.display_name = display_name
        self.kind = kind
        self.role = role
        self._on_joined = on_joined
        # True: the bot will play without pause (play_tone), through a buffered source.
        self.continuous_audio = continuous_audio
        self.room: rtc.Room | None = None
        self.track_sid: str | None = None
        self.joins = 0  # fresh joins (a new Room and token each time)
        self.reconnects = 0  # times the rtc layer got the room back by itself
        # What this bot has noticed of others, so tests can check that a hidden
        # listener stayed invisible and silent.
        self.seen_identities: set[str] = set()
        self.seen_track_owners: set[str] = set()
        self.data_senders: set[str] = set()
        self._source: rtc.AudioSource | None = None
        self._connected = asyncio.Event()
        self._leave = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # never shows the API secret
        return f"<{type(self).__name__} {self.identity!r} room={self.room_name!r}>"

    @property
    def rejoins(self) -> int:
        """How often the bot came back after losing the room, by either path."""
        return max(self.joins - 1, 0) + self.reconnects

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def start(self) -> None:
        """Start joining in the background (the source must be made inside the loop)."""
        if self._task is None:
            queue_ms = CONTINUOUS_QUEUE_MS if self.continuous_audio else SOURCE_QUEUE_MS
            self._source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=queue_ms)
            self._task = asyncio.create_task(self._stay_joined(), name=f"bot {self.identity}")

    async def leave(self) -> None:
        """Leave the room and stop rejoining.

        A connect in flight is never cancelled (that can crash the native layer):
        the join loop notices the request once it returns.
        """
        self._leave.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=LEAVE_TIMEOUT)
            if not done:
                log.warning("%r did not leave within %.0f s", self, LEAVE_TIMEOUT)
        if self._source is not None:
            with contextlib.suppress(Exception):
                await self._source.aclose()
            self._source = None

    def _token(self) -> str:
        grants = api.VideoGrants(
            room_join=True,
            room=self.room_name,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
        )
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(self.identity)
            .with_name(self.display_name)
            .with_kind(self.kind)
            .with_grants(grants)
            .with_ttl(TOKEN_TTL)
        )
        with warnings.catch_warnings():
            # --dev's well-known secret is short; PyJWT would warn on every join.
            warnings.simplefilter("ignore")
            return token.to_jwt()

    async def _stay_joined(self) -> None:
        backoff = Backoff(initial=REJOIN_DELAY, maximum=REJOIN_MAX_DELAY)
        while not self._leave.is_set():
            try:
                await self._join_once(backoff)
            except Exception as exc:
                # a failed publish (PublishTrackError) or connect under load: try again
                log.warning("%r: join failed (%r); retrying", self, exc)
            self._connected.clear()
            self.room = None
            if not self._leave.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._leave.wait(), backoff.next_delay())

    async def _join_once(self, backoff: Backoff) -> None:
        room = rtc.Room()
        lost = asyncio.Event()
        self._watch(room, lost)
        async with _join_slot():
            try:
                await room.connect(
                    self._url,
                    self._token(),
                    rtc.RoomOptions(auto_subscribe=False, connect_timeout=CONNECT_TIMEOUT),
                )
            except rtc.ConnectError as exc:
                log.info("%r could not join (%s); retrying", self, exc)
                return
            try:
                if not self._leave.is_set():
                    await self._publish_microphone(room)
            except BaseException:
                with contextlib.suppress(Exception):
                    await room.disconnect()
                raise
        try:
            if self._leave.is_set():
                return
            for participant in room.remote_participants.values():
                self._note_participant(participant)
            backoff.reset()
            self.room = room
            self.joins += 1
            self._connected.set()
            log.info("%r joined (join #%d)", self, self.joins)
            if self._on_joined is not None:
                self._on_joined(self)
            leave_wait = asyncio.create_task(self._leave.wait())
            lost_wait = asyncio.create_task(lost.wait())
            await asyncio.wait({leave_wait, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
            leave_wait.cancel()
            lost_wait.cancel()
            if lost.is_set() and not self._leave.is_set():
                log.info("%r lost the room; rejoining", self)
        finally:
            self._connected.clear()
            self.room = None
            with contextlib.suppress(Exception):
                await room.disconnect()

    async def _publish_microphone(self, room: rtc.Room) -> None:
        assert self._source is not None
        track = rtc.LocalAudioTrack.create_audio_track(f"{self.role}-microphone", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await room.local_participant.publish_track(track, options)
        self.track_sid = publication.sid

    def _watch(self, room: rtc.Room, lost: asyncio.Event) -> None:
        # Room callbacks must be sync and short: a slow one stalls the room.
        def on_disconnected(reason: object) -> None:
            lost.set()

        def on_reconnecting() -> None:
            # Hold the script while the rtc layer tries to get the room back.
            self._connected.clear()

        def on_reconnected() -> None:
            # A full reconnect republishes the track under a new SID.
            for publication in room.local_participant.track_publications.values():
                if publication.source == rtc.TrackSource.SOURCE_MICROPHONE:
                    self.track_sid = publication.sid
            self.reconnects += 1
            log.info("%r got the room back (reconnect #%d)", self, self.reconnects)
            if self.room is room:
                self._connected.set()

        def on_track_published(
            publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
        ) -> None:
            self.seen_track_owners.add(participant.identity)

        def on_data(packet: rtc.DataPacket) -> None:
            if packet.participant is not None:
                self.data_senders.add(packet.participant.identity)

        def on_text(reader: rtc.TextStreamReader, sender_identity: str) -> None:
            if sender_identity != self.identity:
                self.data_senders.add(sender_identity)
            reader.close()  # the bots never read what others send

        room.on("disconnected", on_disconnected)
        room.on("reconnecting", on_reconnecting)
        room.on("reconnected", on_reconnected)
        room.on("participant_connected", self._note_participant)
        room.on("track_published", on_track_published)
        room.on("data_received", on_data)
        for topic in WATCHED_TOPICS:
            room.register_text_stream_handler(topic, on_text)

    def _note_participant(self, participant: rtc.RemoteParticipant) -> None:
        self.seen_identities.add(participant.identity)
        if participant.track_publications:
            self.seen_track_owners.add(participant.identity)

    async def play(self, samples: np.ndarray) -> None:
        """Say ``samples`` (48 kHz mono int16) on the microphone, in real time.

        The 10 ms frames of a line are made once (per array) and shared by every
        call saying it; each frame is one FFI call here, nothing else.
        """
        source = self._source
        if source is None:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            for index, frame in enumerate(frames_of(samples), 1):
                if self._source is not source:
                    return  # left meanwhile: a closed source would not pace us
                await source.capture_frame(frame)
                await _pace(loop, started, index * FRAME_SECONDS, self._lead())
            await source.wait_for_playout()
        except Exception:
            log.warning("%r: audio capture failed", self, exc_info=True)

    def _lead(self) -> float:
        return MAX_CONTINUOUS_LEAD_S if self.continuous_audio else PACE_LEAD_S

    async def play_tone(self, frequency: float) -> None:
        """Play a pure sine until cancelled (tone mode)."""
        source = self._source
        if source is None:
            return
        position = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        # a buffered source paces the captures itself; a direct one takes 10 ms frames
        chunk_samples = CONTINUOUS_CHUNK_SAMPLES if self.continuous_audio else FRAME_SAMPLES
        try:
            while self._source is source:
                chunk = tone(frequency, position, chunk_samples)
                position += chunk_samples
                await source.capture_frame(_frame(chunk))
                # capture_frame of a closed buffered source returns at once: never
                # run more than a little ahead of real time either way.
                await _pace(loop, started, position / SAMPLE_RATE, self._lead())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%r: tone capture failed", self, exc_info=True)


async def _pace(
    loop: asyncio.AbstractEventLoop, started: float, sent: float, lead: float = PACE_LEAD_S
) -> None:
    """Sleep while the audio sent (``sent`` s since ``started``) is ahead of real time.

    Direct captures have no other pacing: never more than ``lead`` ahead, and a
    sleep only every few frames (a late loop catches up in a burst).
    """
    ahead = sent - (loop.time() - started)
    if ahead > lead:
        await asyncio.sleep(ahead - min(lead, FRAME_SECONDS))


_join_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _join_slot() -> asyncio.Semaphore:
    """This loop's limit on joins in flight (MAX_CONCURRENT_JOINS)."""
    loop = asyncio.get_running_loop()
    slot = _join_slots.get(loop)
    if slot is None:
        slot = _join_slots[loop] = asyncio.Semaphore(MAX_CONCURRENT_JOINS)
    return slot


# The frames of recently said arrays, by identity (the array is kept alive with them,
# so an id is never reused while cached).  Speech arrays come from tts' cache: every
# call saying a line shares one array, hence one list of frames.
_FRAME_CACHE_SIZE = 256
_frame_cache: dict[int, tuple[np.ndarray, Sequence[rtc.AudioFrame]]] = {}


def frames_of(samples: np.ndarray) -> Sequence[rtc.AudioFrame]:
    """``samples`` as 10 ms frames (the last one padded with silence), made once."""
    cached = _frame_cache.get(id(samples))
    if cached is not None and cached[0] is samples:
        return cached[1]
    padded = np.zeros(-(-len(samples) // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(samples)] = samples
    data = padded.tobytes()
    step = FRAME_SAMPLES * 2
    frames = [
        rtc.AudioFrame(bytearray(data[at : at + step]), SAMPLE_RATE, 1, FRAME_SAMPLES)
        for at in range(0, len(data), step)
    ]
    if len(_frame_cache) >= _FRAME_CACHE_SIZE:
        _frame_cache.pop(next(iter(_frame_cache)))
    _frame_cache[id(samples)] = (samples, frames)
    return frames


def _frame(chunk: np.ndarray) -> rtc.AudioFrame:
    return rtc.AudioFrame(
        data=chunk.astype(np.int16).tobytes(),
        sample_rate=SAMPLE_RATE,
        num_channels=1,
        samples_per_channel=len(chunk),
    )


class AgentBot(Bot):
    """The AI agent: speaks its lines and transcribes both sides of the call."""

    def __init__(
        self,
        *,
        stream_transcription: bool = True,
        legacy_transcription: bool = False,
        on_sent: Callable[[SentSegment], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(kind="agent", role="agent", **kwargs)  # type: ignore[arg-type]
        self.stream_transcription = stream_transcription
        # an agent without text streams is an old agent: legacy packets are all it sends
        self.legacy_transcription = legacy_transcription or not stream_transcription
        self._on_sent = on_sent or (lambda segment: None)

    async def transcribe_own_line(self, text: str, duration: float) -> None:
        """Send the agent's ``text`` as it would be spoken over ``duration`` seconds.

        One stream per segment; each word is appended when it is said; the stream
        closes with final "true" in its trailer, as livekit-agents does.
        """
        segment_id = new_segment_id()
        legacy_id = new_segment_id()  # legacy packets carry ids of their own
        chunks = _word_chunks(text)
        writer = await self._open_stream(segment_id, self.identity) if self._streams_on() else None
        started = asyncio.get_running_loop().time()
        said = ""
        for chunk, at in zip(chunks, _chunk_times(chunks, duration), strict=True):
            await sleep_until(started + at)
            said += chunk
            if writer is not None:
                publishing = time.monotonic()
                writer = await self._write(writer, chunk)
                if writer is not None:
                    self._on_sent(
                        SentSegment(segment_id, "agent", said, False, "stream", publishing)
                    )
            await self._legacy(legacy_id, "agent", self.identity, self.track_sid, said, False)
        await sleep_until(started + duration)
        if writer is not None:
            trailer = {ATTR_FINAL: "true"}
            if self.track_sid:
                trailer[ATTR_TRACK_ID] = self.track_sid
            try:
                publishing = time.monotonic()
                await writer.aclose(attributes=trailer)
                self._on_sent(SentSegment(segment_id, "agent", said, True, "stream", publishing))
            except Exception:
                log.warning("%r: closing a transcription stream failed", self, exc_info=True)
        await self._legacy(legacy_id, "agent", self.identity, self.track_sid, said, True)

    async def replay_segment(self, segment_id: str, text: str) -> None:
        """Send an already settled agent segment again, whole and final.

        An agent may do this after a reconnect; ``text`` may differ from what was
        first said (a corrected transcript).  Not recorded in ``sent_segments``: it
        is a repeat, and what a listener must keep is the first version.
        """
        writer = await self._open_stream(segment_id, self.identity)
        if writer is None:
            return
        writer = await self._write(writer, text)
        if writer is not None:
            await writer.aclose(attributes={ATTR_FINAL: "true"})

    async def transcribe_caller_line(
        self, text: str, duration: float, caller_identity: str, caller_track_sid: str | None
    ) -> None:
        """Send the caller's words as an STT would: interim full-text updates, then final.

        Every update is a new short stream with the same segment id, sent by the
        agent on behalf of the caller (sender identity = the caller).
        """
        segment_id = new_segment_id()
        legacy_id = new_segment_id()
        words = text.split()
        step = 3  # an interim result every few words, like a streaming STT
        started = asyncio.get_running_loop().time()
        cut_points = list(range(step, len(words), step))
        for count in cut_points:
            await sleep_until(started + duration * count / len(words))
            interim = " ".join(words[:count])
            track = caller_track_sid
            await self._caller_update(segment_id, caller_identity, track, interim, False)
            await self._legacy(legacy_id, "caller", caller_identity, track, interim, False)
        # the final result lands shortly after the caller stops speaking
        await sleep_until(started + duration + 0.2)
        await self._caller_update(segment_id, caller_identity, caller_track_sid, text, True)
        await self._legacy(legacy_id, "caller", caller_identity, caller_track_sid, text, True)

    def _streams_on(self) -> bool:
        return self.stream_transcription and self.room is not None

    async def _open_stream(
        self,
        segment_id: str,
        sender_identity: str,
        *,
        final: bool = False,
        track_sid: str | None = None,
    ) -> rtc.TextStreamWriter | None:
        room = self.room
        if room is None:
            return None
        attributes = {ATTR_FINAL: "true" if final else "false", ATTR_SEGMENT_ID: segment_id}
        track = track_sid if track_sid is not None else self.track_sid
        if track:
            attributes[ATTR_TRACK_ID] = track
        try:
            return await room.local_participant.stream_text(
                topic=TOPIC_TRANSCRIPTION, attributes=attributes, sender_identity=sender_identity
            )
        except Exception:
            log.warning("%r: opening a transcription stream failed", self, exc_info=True)
            return None

    async def _write(self, writer: rtc.TextStreamWriter, chunk: str) -> rtc.TextStreamWriter | None:
        try:
            await writer.write(chunk)
            return writer
        except Exception:
            log.warning("%r: writing a transcription chunk failed", self, exc_info=True)
            return None

    async def _caller_update(
        self, segment_id: str, caller_identity: str, track_sid: str | None, text: str, final: bool
    ) -> None:
        if not self._streams_on():
            return
        publishing = time.monotonic()
        writer = await self._open_stream(
            segment_id, caller_identity, final=final, track_sid=track_sid or ""
        )
        if writer is None:
            return
        try:
            await writer.write(text)
            await writer.aclose()
            self._on_sent(SentSegment(segment_id, "caller", text, final, "stream", publishing))
        except Exception:
            log.warning("%r: sending a caller transcript failed", self, exc_info=True)

    async def _legacy(
        self,
        segment_id: str,
        role: Role,
        identity: str,
        track_sid: str | None,
        text: str,
        final: bool,
    ) -> None:
        """A legacy transcription packet, as older agents send (only with a known track)."""
        room = self.room
        if not self.legacy_transcription or room is None or not track_sid:
            return
        transcription = rtc.Transcription(
            participant_identity=identity,
            track_sid=track_sid,
            segments=[
                rtc.TranscriptionSegment(
                    id=segment_id, text=text, start_time=0, end_time=0, language="", final=final
                )
            ],
        )
        try:
            publishing = time.monotonic()
            # The SDK's call waits for an FFI callback; bound it so a dropped room
            # cannot stall the script (cancelling here is safe, unlike connect()).
            await asyncio.wait_for(room.local_participant.publish_transcription(transcription), 5)
            self._on_sent(SentSegment(segment_id, role, text, final, "legacy", publishing))
        except Exception:
            log.warning("%r: legacy transcription failed", self, exc_info=True)


def _word_chunks(text: str) -> list[str]:
    """Words with their leading space, so the chunks concatenate back to ``text``."""
    words = text.split()
    return [words[0], *(" " + word for word in words[1:])] if words else []


def _chunk_times(chunks: list[str], duration: float) -> list[float]:
    """When each chunk starts being said, proportional to the characters before it."""
    total = sum(len(chunk) for chunk in chunks) or 1
    times, done = [], 0
    for chunk in chunks:
        times.append(duration * done / total)
        done += len(chunk)
    return times


async def sleep_until(when: float) -> None:
    """Sleep until the loop time ``when`` (at once if it has passed)."""
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)

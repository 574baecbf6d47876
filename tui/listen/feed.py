"""Transcript intake of one session: text streams and legacy packets in, events out.

Feeds the pure :class:`SegmentAssembler` from the room, and owns what that needs
in time: one reading task per ``lk.transcription`` stream (kept in arrival
order), the legacy hold timer, and the settling of a departed speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from livekit import rtc

from tui.listen.transcripts import LegacySegment, Role, SegmentAssembler, Transcript

logger = logging.getLogger(__name__)

AGENT_KIND = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
STREAM_CUT_GRACE = 2.0  # s of silence, after its sender left, before a stream is cut
# s a transcript stream waits for news of its unknown sender: the server announces
# a participant only once its media connection is up, often after its first words.
SENDER_GRACE = 3.0


class TranscriptFeed:
    def __init__(self, emit: Callable[[Transcript], None], label: str, legacy_hold: float) -> None:
        self._emit_one = emit
        self._label = label
        self._assembler = SegmentAssembler(legacy_hold=legacy_hold)
        self.room: rtc.Room | None = None
        self.agents: set[str] = set()
        self._participants_changed = asyncio.Event()
        self._last_opened: asyncio.Event | None = None
        # open transcript streams: reading task -> (reader, sender identity)
        self._readers: dict[asyncio.Task[None], tuple[rtc.TextStreamReader, str]] = {}
        self._cut_streams: set[str] = set()  # stream ids closed because their sender left
        self._cut_timers: set[asyncio.TimerHandle] = set()
        self._stream_activity: dict[str, float] = {}  # stream id -> loop time of its last data
        self._legacy_timer: asyncio.TimerHandle | None = None
        self._stopped = False

    @property
    def open_streams(self) -> int:
        return len(self._readers)

    def _emit(self, transcripts: Iterable[Transcript]) -> None:
        for transcript in transcripts:
            self._emit_one(transcript)

    # ---- participants -------------------------------------------------------------------
    def participant_joined(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == AGENT_KIND:
            self.agents.add(participant.identity)
        self._participants_changed.set()
        self._participants_changed = asyncio.Event()

    def participant_left(self, identity: str, is_agent: bool) -> None:
        """Data can trail the departure notice, so the departed speaker's segments are
        settled only once their streams have gone quiet.  A sender that leaves
        mid-stream leaves its reader waiting forever (the native layer reports no
        error), so quiet streams are cut.  Agents relay the caller's transcripts too,
        so an agent leaving concerns every stream."""
        if self._stopped:
            return
        timer = asyncio.get_running_loop().call_later(
            STREAM_CUT_GRACE, self._settle_departed, identity, is_agent
        )
        self._cut_timers.add(timer)

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
        if self._stopped:
            return
        if still_busy:
            timer = loop.call_later(STREAM_CUT_GRACE, self._settle_departed, identity, everyone)
            self._cut_timers.add(timer)
        else:
            self._emit(self._assembler.speaker_left(identity))

    def on_text_stream(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        if self._stopped:
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
                role = self.role_of(participant_identity)
                self._emit(
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
                self._emit(self._assembler.stream_chunk(stream_id, chunk))
        except rtc.StreamError as error:
            # Sender left or aborted: what arrived is all there will be.
            logger.info("%s: transcript stream broke: %s", self._label, error)
            broken = True
        finally:
            reader.close()
        broken = broken or stream_id in self._cut_streams
        self._cut_streams.discard(stream_id)
        self._stream_activity.pop(stream_id, None)
        self._emit(self._assembler.stream_closed(stream_id, reader.info.attributes, broken=broken))

    async def _wait_until_known(self, identity: str) -> None:
        if self.agents:
            # The agent is known, so an unknown sender is someone it transcribes
            # (the caller): a "user" either way, no need to wait.
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SENDER_GRACE
        while not self._knows(identity) and not self._stopped:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            changed = self._participants_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _knows(self, identity: str) -> bool:
        room = self.room
        return identity in self.agents or (
            room is not None and identity in room.remote_participants
        )

    def on_legacy(
        self,
        segments: list[rtc.TranscriptionSegment],
        participant: rtc.Participant | None,
        publication: rtc.TrackPublication | None,
    ) -> None:
        if self._stopped:
            return
        identity = participant.identity if participant is not None else ""
        loop = asyncio.get_running_loop()
        self._emit(
            self._assembler.legacy(
                identity,
                self.role_of(identity),
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
        if deadline is not None and timer is None and not self._stopped:
            self._legacy_timer = asyncio.get_running_loop().call_at(deadline, self._on_legacy_due)

    def _on_legacy_due(self) -> None:
        self._legacy_timer = None
        self._emit(self._assembler.due(asyncio.get_running_loop().time()))
        self._arm_legacy_timer()

    def role_of(self, identity: str) -> Role:
        if identity in self.agents:
            return "agent"
        room = self.room
        participant = room.remote_participants.get(identity) if room is not None else None
        if participant is not None and participant.kind == AGENT_KIND:
            self.agents.add(identity)
            return "agent"
        return "user"

    # ---- endings ------------------------------------------------------------------------
    def room_lost(self) -> None:
        self._emit(self._assembler.finish_all())

    async def finish(self, drain: float) -> None:
        """Stop taking input and settle every segment (session end)."""
        if self._legacy_timer is not None:
            self._legacy_timer.cancel()
            self._legacy_timer = None
        for timer in self._cut_timers:
            timer.cancel()
        self._cut_timers.clear()
        if self._readers:
            # Words already sent (a final stream racing the agent's departure) are
            # still in the pipe: let open streams finish briefly before settling.
            await asyncio.wait(set(self._readers), timeout=drain)
        self._emit(self._assembler.finish_all())
        self._stopped = True
        self._participants_changed.set()  # wake streams waiting to learn their sender

    async def aclose(self) -> None:
        """Close every reader and wait for the reading tasks (after :meth:`finish`)."""
        for reader, _ in list(self._readers.values()):
            reader.close()  # wakes its pending read: the reading task ends by itself
        if self._readers:
            await asyncio.wait(set(self._readers))

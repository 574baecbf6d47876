"""The call's audio: decode the remote audio tracks of a *heard* call, mix, measure, output.

Every subscribed audio track is known here, but only while the call is heard
(``set_heard(True)``, the default) does each one get an ``rtc.AudioStream`` at
48 kHz mono, read by its own task.  A call that is not heard has no stream at
all: no frame of it reaches Python, nothing is mixed or measured, and its
``level`` is silence (the session's ``speaking`` comes from the server instead).
The tracks stay subscribed, so hearing the call again only opens the streams:
the first frames come within a few tens of milliseconds (see
scripts/bench_sessions.py for what the other ways cost).

The streams, their readers and the mixer live on the media thread's loop
(tui.listen.media), not the caller's: a frame never waits behind the UI's work.
The caller's side only keeps the tracks and the flags (heard, playing, muted),
and hands every change of streams to the media loop in order.

Tracks deliver 10 ms frames at their own pace, so the mixer buffers per track and
emits a 10 ms block once every track has one; a track that stalls is treated as
silence after ``MAX_LAG_SAMPLES`` so the others keep playing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import numpy as np
from livekit import rtc

from tui.listen.levels import SILENT, AudioLevel, measure
from tui.listen.media import MediaThread, media_thread

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
BLOCK_SAMPLES = 480  # 10 ms at 48 kHz
MAX_LAG_SAMPLES = 6 * BLOCK_SAMPLES  # wait at most 60 ms for a lagging track


class AudioOutput(Protocol):
    """Where a session's frames go (provided by tui.audio); 48 kHz mono int16 PCM."""

    def write(self, frame: bytes) -> None: ...  # non-blocking

    def flush(self) -> None: ...  # drop anything buffered, at once


class FrameMixer:
    """Sums per-track int16 frames into 10 ms blocks (pure logic)."""

    def __init__(self, on_block: Callable[[np.ndarray], None]) -> None:
        self._on_block = on_block
        self._buffers: dict[str, np.ndarray] = {}

    def add_source(self, key: str) -> None:
        self._buffers.setdefault(key, np.zeros(0, dtype=np.int16))

    def remove_source(self, key: str) -> None:
        self._buffers.pop(key, None)
        self._drain()  # the others may have been waiting for this one

    def clear(self) -> None:
        """Forget every source and what it buffered, emitting nothing."""
        self._buffers.clear()

    def push(self, key: str, samples: np.ndarray) -> None:
        if key not in self._buffers:
            return
        self._buffers[key] = np.concatenate((self._buffers[key], samples.astype(np.int16)))
        self._drain()

    def _drain(self) -> None:
        while self._buffers:
            sizes = [len(buffer) for buffer in self._buffers.values()]
            if min(sizes) < BLOCK_SAMPLES and max(sizes) < MAX_LAG_SAMPLES:
                return
            block = np.zeros(BLOCK_SAMPLES, dtype=np.int32)
            for key, buffer in self._buffers.items():
                taken = buffer[:BLOCK_SAMPLES]
                block[: len(taken)] += taken
                self._buffers[key] = buffer[len(taken) :]
            self._on_block(np.clip(block, -32768, 32767).astype(np.int16))


class CallAudio:
    """The audio tracks of one session; decodes them (AudioStreams) only while heard.

    Called from the session's loop; the streams themselves are opened, read and
    closed on the media thread.  What it returns to await (closing streams) are
    futures of the caller's loop.
    """

    def __init__(
        self,
        output: AudioOutput | None,
        label: str = "session",
        media: MediaThread | None = None,
    ) -> None:
        self._output = output
        self._label = label
        self._media = media or media_thread()
        self._tracks: dict[str, rtc.Track] = {}  # every subscribed audio track
        # On the media loop only: the decoded tracks' streams, their readers, the mixer.
        self._streams: dict[str, rtc.AudioStream] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._mixer = FrameMixer(self._on_block)
        # Held while the flags that gate the output change, and while a block is
        # written: after mute() or set_heard(False) returns, no block of before plays.
        self._output_lock = threading.Lock()
        self.level: AudioLevel = SILENT
        self.frames_mixed = 0
        self.frames_by_track: dict[str, int] = {}  # decoded frames per track (diagnostics)
        self.heard = True  # decode the tracks (set_heard)
        self.playing = False  # start_audio() was called
        self.muted = False
        self.closed = False

    # ---- tracks (the caller's loop) -------------------------------------------------
    def add_track(self, key: str, track: rtc.Track) -> None:
        if self.closed or key in self._tracks:
            return
        self._tracks[key] = track
        if self.heard:
            self._media.submit(self._open(key, track))

    def remove_track(self, key: str) -> asyncio.Future[None] | None:
        """Forget a track; returns what finishes closing its stream (teardown awaits it)."""
        if self._tracks.pop(key, None) is None:
            return None
        return self._on_media(self._close(key, drain=True))

    @property
    def track_count(self) -> int:
        """Tracks being decoded right now (0 while not heard)."""
        return len(self._streams)

    @property
    def subscribed_count(self) -> int:
        """Audio tracks subscribed, decoded or not."""
        return len(self._tracks)

    def set_heard(self, heard: bool) -> list[asyncio.Future[None]]:
        """Decode every track (True) or none (False); returns what closes the streams."""
        if self.closed or heard == self.heard:
            return []
        with self._output_lock:
            self.heard = heard
        if heard:
            for key, track in self._tracks.items():
                self._media.submit(self._open(key, track))
            return []
        self.level = SILENT
        self._flush()
        return [self._on_media(self._close_all(drain=False))]

    def _on_media(self, step: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        """Run ``step`` on the media loop; a future of the caller's loop for its end."""
        return asyncio.wrap_future(self._media.submit(step))

    # ---- streams (the media loop) ---------------------------------------------------
    async def _open(self, key: str, track: rtc.Track) -> None:
        if key in self._streams or self.closed or not self.heard:
            return  # already open, or the call stopped being heard before this ran
        try:
            stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        except Exception:  # nobody awaits this step: say it here
            logger.exception("%s: opening audio track %s failed", self._label, key)
            return
        self._streams[key] = stream
        self._mixer.add_source(key)
        self._readers[key] = asyncio.get_running_loop().create_task(self._read(key, stream))

    async def _close(self, key: str, *, drain: bool) -> None:
        stream = self._streams.pop(key, None)
        reader = self._readers.pop(key, None)
        if drain:
            self._mixer.remove_source(key)
        if stream is not None:
            await self._close_stream(stream, reader)

    async def _close_all(self, *, drain: bool) -> None:
        closing = [self._close(key, drain=drain) for key in list(self._streams)]
        if not drain:
            # Half-mixed audio of this moment must not play on a later hear.
            self._mixer.clear()
            self._flush()  # what the readers wrote before they saw the streams go
        await asyncio.gather(*closing)

    async def _read(self, key: str, stream: rtc.AudioStream) -> None:
        try:
            async for event in stream:
                if self._streams.get(key) is not stream:
                    return  # closed (not heard any more): a newer stream may read this track
                frame = event.frame
                samples = np.frombuffer(frame.data, dtype=np.int16)
                if frame.num_channels > 1:  # asked for mono; defensive all the same
                    samples = samples.reshape(-1, frame.num_channels).mean(axis=1)
                self.frames_by_track[key] = self.frames_by_track.get(key, 0) + 1
                self._mixer.push(key, samples)
        except Exception:
            logger.exception("%s: audio track %s failed", self._label, key)

    async def _close_stream(
        self, stream: rtc.AudioStream, reader: asyncio.Task[None] | None
    ) -> None:
        try:
            await stream.aclose()  # ends the stream's own task, then our reader sees the end
        except Exception:
            logger.exception("%s: closing an audio stream failed", self._label)
        if reader is not None:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def aclose(self) -> None:
        """Close every stream and reader (used by teardown)."""
        self.closed = True
        self.stop_output()
        self._tracks.clear()
        await self._on_media(self._close_all(drain=True))

    # ---- output -------------------------------------------------------------------
    def stop_output(self) -> None:
        with self._output_lock:
            self.playing = False
        self._flush()

    def set_muted(self, muted: bool) -> None:
        with self._output_lock:
            self.muted = muted
        if muted:
            self._flush()

    def _flush(self) -> None:
        if self._output is not None:
            try:
                self._output.flush()
            except Exception:
                logger.exception("%s: audio output flush failed", self._label)

    def _on_block(self, block: np.ndarray) -> None:  # the media loop
        with self._output_lock:
            if not self.heard:
                return  # set_heard(False) came while this block was being mixed
            self.level = measure(block)  # the meter runs muted or not (while heard)
            self.frames_mixed += 1
            if self._output is None or not self.playing or self.muted or self.closed:
                return
            try:
                self._output.write(block.tobytes())
            except Exception:
                logger.exception("%s: audio output write failed", self._label)

"""Which calls are heard: per-session outputs mixed into the one device.

Every listen session gets an ``AudioOutput`` from ``output_for``.  The device's
audio thread asks ``render(n)`` for samples; the router answers with the sum of
the heard sessions' jitter buffers.

* ``set_heard(ids)`` says which sessions play: none (silence, the state at
  start), one (focus mode) or several (a mix).  The router keeps no focus or
  listening of its own: the model decides, the router only plays what it is told.
* A session that is not heard keeps only its newest ``prime`` samples, so a
  switch to it starts at once instead of waiting for a jitter buffer to fill.
* Gains move at most 1/240 per sample: a switch fades the old call out within
  5 ms and the new one in within 5 ms, and the rest of the old call's buffer is
  dropped the moment its fade ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tui.audio.device import OutputDevice, StatusListener
from tui.audio.jitter import JitterBuffer, ms_to_samples

FADE_MS = 5.0  # per direction: a switch is a <= 10 ms crossfade, no click
INT16_MAX = 32767

# What a session may write: 48 kHz mono int16 PCM as bytes or as samples.
Frame = bytes | bytearray | memoryview | npt.NDArray[np.int16]
Signal = npt.NDArray[np.float32]


def _silence() -> Signal:
    return np.zeros(0, dtype=np.float32)


@dataclass
class _Session:
    buffer: JitterBuffer
    gain: float = 0.0  # the gain applied right now, ramps toward 1 (heard) or 0
    tail: Signal = field(default_factory=_silence)  # a flushed session's fade-out


def _as_samples(frame: Frame) -> npt.NDArray[np.int16]:
    """48 kHz mono int16 samples from bytes / memoryview / numpy, copied (callers reuse buffers)."""
    if isinstance(frame, np.ndarray):
        return np.asarray(frame, dtype=np.int16).ravel().copy()
    raw = memoryview(frame).cast("B")
    usable = len(raw) - len(raw) % 2
    return np.frombuffer(raw[:usable], dtype="<i2").astype(np.int16)


class SessionOutput:
    """The ``output`` a listen session writes to; both calls are non-blocking."""

    def __init__(self, router: AudioRouter, session_id: str) -> None:
        self._router = router
        self.session_id = session_id

    def write(self, frame: Frame) -> None:
        self._router._write(self.session_id, frame)

    def flush(self) -> None:
        self._router._flush(self.session_id)


class AudioRouter:
    """Routes session outputs to the device.

    ``prime_ms`` must exceed the device's period (20 ms) or every pull empties the
    buffer; with the device's ~40 ms of queued audio the steady latency is about
    40 + 30..80 ms, and ``limit_ms`` caps it when a sender's clock runs fast.
    """

    def __init__(
        self,
        device: OutputDevice,
        *,
        prime_ms: float = 30.0,
        limit_ms: float = 80.0,
    ) -> None:
        self.device = device
        self._prime_ms, self._limit_ms = prime_ms, limit_ms
        self._fade_step = 1.0 / ms_to_samples(FADE_MS)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()  # the audio thread and the app's loop both touch sessions
        self._heard: frozenset[str] = frozenset()
        self._retired_underruns = 0
        device.set_renderer(self.render)

    # -- sessions ------------------------------------------------------------------------

    def output_for(self, session_id: str) -> SessionOutput:
        with self._lock:
            if session_id not in self._sessions:
                self._sessions[session_id] = _Session(JitterBuffer(self._prime_ms, self._limit_ms))
        return SessionOutput(self, session_id)

    def remove(self, session_id: str) -> None:
        """Forget the session: its buffered audio is gone and later writes are dropped.

        ``heard`` is left as it is: an output made later for the same id plays if heard.
        """
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._retired_underruns += session.buffer.underruns

    # -- what is heard ---------------------------------------------------------------

    def set_heard(self, session_ids: Iterable[str]) -> None:
        """Play exactly these sessions (empty: silence; several: their sum), with fades."""
        heard = frozenset(session_ids)
        with self._lock:
            self._heard = heard

    @property
    def heard(self) -> frozenset[str]:
        """The ids whose audio plays, as last given to ``set_heard``."""
        return self._heard

    # -- status ------------------------------------------------------------------------

    @property
    def notice(self) -> str | None:
        """The device's latest notice, e.g. "No audio device ...: playing nothing"."""
        return self.device.notice

    def on_notice(self, listener: StatusListener) -> None:
        """Called (from a background thread) with each new device notice."""
        self.device.add_status_listener(listener)

    @property
    def underruns(self) -> int:
        with self._lock:
            live = sum(s.buffer.underruns for s in self._sessions.values())
        return live + self._retired_underruns

    def close(self) -> None:
        self.device.set_renderer(None)

    # -- internals ---------------------------------------------------------------------

    def _write(self, session_id: str, frame: Frame) -> None:
        samples = _as_samples(frame)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return
            if session_id in self._heard:
                session.buffer.push(samples)
                return
            # Muted (or fading out): keep only the newest few ms, so a switch back here
            # starts at once, and the old audio beyond them is gone.
            session.buffer.push(samples, limit=session.buffer.prime)
            if session.gain == 0:
                session.buffer.playing = False

    def _flush(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return
            if session.gain > 0:
                # Cut without a click: the next few ms, faded to zero, then the new audio.
                fade = session.buffer.peek_take(ms_to_samples(FADE_MS)).astype(np.float32)
                ramp = session.gain * (1.0 - np.arange(1, fade.size + 1) * self._fade_step)
                session.tail = fade * np.clip(ramp, 0.0, 1.0).astype(np.float32)
                session.gain = 0.0
            session.buffer.clear()

    def _ramp(self, start: float, target: float, n: int) -> Signal:
        if start == target:
            return np.full(n, start, dtype=np.float32)
        steps = np.arange(1, n + 1, dtype=np.float32) * np.float32(self._fade_step)
        ramp: Signal
        if target > start:
            ramp = np.minimum(start + steps, np.float32(target))
        else:
            ramp = np.maximum(start - steps, np.float32(target))
        return ramp

    def render(self, n: int) -> bytes:
        """n samples for the device: called on the audio thread every period."""
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            for session_id, session in self._sessions.items():
                if session.tail.size:
                    take = min(n, session.tail.size)
                    out[:take] += session.tail[:take]
                    session.tail = session.tail[take:]
                target = 1.0 if session_id in self._heard else 0.0
                if target == 0 and session.gain == 0:
                    continue
                was_playing = session.buffer.playing
                samples = session.buffer.pull(n)
                if not was_playing and not session.buffer.playing:
                    continue  # still priming: hold the gain so the fade-in covers real audio
                gains = self._ramp(session.gain, target, n)
                out += samples.astype(np.float32) * gains
                session.gain = float(gains[-1])
                if not session.buffer.playing:
                    session.gain = 0.0  # ran dry: fade in again when audio resumes
                if target == 0 and session.gain == 0:
                    # The fade-out is over: the rest of this call's buffer is dropped now.
                    session.buffer.trim(session.buffer.prime)
                    session.buffer.playing = False
        np.clip(out, -INT16_MAX - 1, INT16_MAX, out=out)
        return out.astype("<i2").tobytes()

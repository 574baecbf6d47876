"""Which calls are heard, and where: per-session outputs mixed into the one stereo device.

Every listen session gets an ``AudioOutput`` from ``output_for`` and writes mono
audio to it.  The device's audio thread asks ``render(n)`` for ``n`` stereo frames;
the router answers with the heard sessions' jitter buffers, each panned, summed.

* ``set_heard(placements)`` says which sessions play and where: session id ->
  ``(gain, pan)``, gain 1.0 as received, pan -1 left, 0 centre, +1 right; or plain
  ids, each at the centre with gain 1.  None is silence (the state at start), one
  is focus mode, several a mix.  The router keeps no focus, listening or mix of
  its own: the model decides, the router only plays what it is told.
* The pan law is constant power, normalised to unity at the centre: a call at the
  centre plays on both channels exactly as received (so one call alone sounds as
  it did on the mono device), and at pan p the left channel gets sqrt(2)*cos(t),
  the right sqrt(2)*sin(t), t = (p + 1)*pi/4: L^2 + R^2 is the same wherever the
  call sits, so no position sounds louder than another.  At p = -0.7 (the model's
  side of a mix) that is 1.375 left, 0.330 right: 12.4 dB apart.
* A session that is not heard keeps only its newest ``prime`` samples, so a
  switch to it starts at once instead of waiting for a jitter buffer to fill.
* Each channel's gain ramps to its target within 5 ms (at least 1/240 per sample,
  more for a bigger step): a switch fades the old call out and the new one in
  without a click, a call that changes side or volume glides there, and the rest
  of an unheard call's buffer is dropped the moment its fade ends.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
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
# Where a heard session plays: (gain, pan), gain 1.0 as received, pan -1 left .. +1 right.
Placement = tuple[float, float]
CENTRE: Placement = (1.0, 0.0)
Gains = tuple[float, float]  # (left, right) multipliers of a session's mono samples
SILENT: Gains = (0.0, 0.0)


def channel_gains(gain: float, pan: float) -> Gains:
    """(left, right) for a session at ``pan`` with ``gain``: constant power, unity at centre."""
    gain = max(0.0, gain)
    pan = min(1.0, max(-1.0, pan))
    if pan == 0.0:
        return gain, gain  # exact: a centred call is bit for bit what was received
    angle = (pan + 1.0) * math.pi / 4.0
    return gain * math.sqrt(2.0) * math.cos(angle), gain * math.sqrt(2.0) * math.sin(angle)


def _as_float32(gains: Gains) -> Gains:
    """The gains as the float32 ramps reach them, so a ramp that got there compares equal."""
    return float(np.float32(gains[0])), float(np.float32(gains[1]))


def _silence() -> Signal:
    return np.zeros((0, 2), dtype=np.float32)


@dataclass
class _Session:
    buffer: JitterBuffer
    gains: Gains = SILENT  # applied right now; each ramps toward its target (0 if unheard)
    tail: Signal = field(default_factory=_silence)  # a flushed session's fade-out, stereo


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
        self._placements: dict[str, Placement] = {}
        self._targets: dict[str, Gains] = {}  # the placements as channel gains
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

    def set_heard(self, heard: Iterable[str] | Mapping[str, Placement]) -> None:
        """Play exactly these sessions, where they are placed, with fades.

        ``heard`` maps session ids to ``(gain, pan)``; plain ids play at the centre
        with gain 1.  Empty: silence; several: their sum.
        """
        if isinstance(heard, Mapping):
            placements = {sid: (float(g), float(p)) for sid, (g, p) in heard.items()}
        else:
            placements = dict.fromkeys(heard, CENTRE)
        targets = {sid: _as_float32(channel_gains(*placed)) for sid, placed in placements.items()}
        with self._lock:
            self._placements, self._targets = placements, targets
            self._heard = frozenset(placements)

    @property
    def heard(self) -> frozenset[str]:
        """The ids whose audio plays, as last given to ``set_heard``."""
        return self._heard

    @property
    def placements(self) -> dict[str, Placement]:
        """Each heard id's ``(gain, pan)``, as last given to ``set_heard``."""
        return dict(self._placements)

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
            if session.gains == SILENT:
                session.buffer.playing = False

    def _flush(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return
            if session.gains != SILENT:
                # Cut without a click: the next few ms, faded to zero, then the new audio.
                fade = session.buffer.peek_take(ms_to_samples(FADE_MS)).astype(np.float32)
                session.tail = fade[:, None] * self._ramps(session.gains, SILENT, fade.size)
                session.gains = SILENT
            session.buffer.clear()

    def _ramp(self, start: float, target: float, n: int) -> Signal:
        if start == target:
            return np.full(n, start, dtype=np.float32)
        # Within FADE_MS however far it goes (a loud call panned hard moves more than 1).
        step = max(self._fade_step, abs(target - start) * self._fade_step)
        steps = np.arange(1, n + 1, dtype=np.float32) * np.float32(step)
        ramp: Signal
        if target > start:
            ramp = np.minimum(start + steps, np.float32(target))
        else:
            ramp = np.maximum(start - steps, np.float32(target))
        return ramp

    def _ramps(self, start: Gains, target: Gains, n: int) -> Signal:
        """(n, 2): the left and right gains of n frames, from ``start`` toward ``target``."""
        return np.stack(
            (self._ramp(start[0], target[0], n), self._ramp(start[1], target[1], n)), axis=1
        )

    def render(self, n: int) -> bytes:
        """n stereo frames (interleaved int16) for the device: on the audio thread."""
        out = np.zeros((n, 2), dtype=np.float32)
        with self._lock:
            for session_id, session in self._sessions.items():
                if session.tail.size:
                    take = min(n, session.tail.shape[0])
                    out[:take] += session.tail[:take]
                    session.tail = session.tail[take:]
                target = self._targets.get(session_id, SILENT)
                if target == SILENT and session.gains == SILENT:
                    continue
                was_playing = session.buffer.playing
                samples = session.buffer.pull(n)
                if not was_playing and not session.buffer.playing:
                    continue  # still priming: hold the gain so the fade-in covers real audio
                gains = self._ramps(session.gains, target, n)
                out += samples.astype(np.float32)[:, None] * gains
                session.gains = (float(gains[-1, 0]), float(gains[-1, 1]))
                if not session.buffer.playing:
                    session.gains = SILENT  # ran dry: fade in again when audio resumes
                if target == SILENT and session.gains == SILENT:
                    # The fade-out is over: the rest of this call's buffer is dropped now.
                    session.buffer.trim(session.buffer.prime)
                    session.buffer.playing = False
        np.clip(out, -INT16_MAX - 1, INT16_MAX, out=out)
        return out.astype("<i2").tobytes()

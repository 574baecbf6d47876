"""The one sound output: a PortAudio stream (via PyAudio), or a null device.

The stream runs in callback mode, 48 kHz stereo int16 (interleaved), 20 ms
periods.  The callback asks a *renderer* (the router) for exactly the frames it
needs, so the jitter buffering lives next to the audio it buffers (one per
session, in the router) and the device only keeps time.  Stereo is what lets a
mix of calls sit apart (left, centre, right); a device with one channel is
opened mono and gets the two channels' average.

A device that cannot be opened is replaced by ``NullDevice`` with a notice (see
``open_output_device``, which never raises).  A device that dies mid-run (the
sound server stops, a USB headset is unplugged) is reported through the
status listeners and reopened with backoff until it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyaudio

from tui.audio.quiet import install_native_error_handlers, native_stderr, quiet_native_audio

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CHANNELS = 2  # what a renderer renders: left, right
FRAME_BYTES = 2 * CHANNELS  # one frame: an int16 sample per channel
# 20 ms periods: PortAudio's ALSA backend then keeps two of them queued (about 40 ms).
# With 10 ms periods (20 ms queued) a Python callback that waits for the GIL behind
# a busy event loop (decoding calls, drawing the UI) misses its deadline and clicks.
PERIOD_SAMPLES = 960
# The callback must have stopped for this long before we call the device lost.
# Generous: a pulse-backed stream can pause about 2 s right after it opens.
STALL_SECONDS = 5.0
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # then every RETRY_MAX seconds
RETRY_MAX = 5.0

# Renders exactly n frames of int16 stereo audio (interleaved, FRAME_BYTES * n bytes).
# Called on the audio thread.
Renderer = Callable[[int], bytes]
StatusListener = Callable[[str], None]


class DeviceError(Exception):
    """The named device does not exist or cannot be opened."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    max_output_channels: int
    default_sample_rate: float
    is_default: bool


class OutputDevice(Protocol):
    name: str

    @property
    def available(self) -> bool: ...  # True while real audio can play

    @property
    def notice(self) -> str | None: ...  # latest status worth telling the user

    def set_renderer(self, render: Renderer | None) -> None: ...
    def add_status_listener(self, listener: StatusListener) -> None: ...
    def close(self) -> None: ...


def _downmix(stereo: bytes) -> bytes:
    """Interleaved stereo int16 to mono: the average of the two channels."""
    frames = np.frombuffer(stereo, dtype="<i2").reshape(-1, CHANNELS).astype(np.int32)
    mono: bytes = (frames.sum(axis=1) // CHANNELS).astype("<i2").tobytes()
    return mono


class _Notices:
    """Latest notice plus listeners told of each new one (from any thread)."""

    def __init__(self) -> None:
        self.latest: str | None = None
        self._listeners: list[StatusListener] = []

    def add(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    def emit(self, message: str) -> None:
        self.latest = message
        log.warning("%s", message)
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:
                log.exception("audio status listener failed")


class NullDevice:
    """Plays nothing, accepts everything: the output when there is no sound."""

    available = False

    def __init__(self, notice: str | None = None) -> None:
        self.name = "none"
        self._notices = _Notices()
        self._notices.latest = notice
        if notice:
            log.warning("%s", notice)

    @property
    def notice(self) -> str | None:
        return self._notices.latest

    def set_renderer(self, render: Renderer | None) -> None:
        pass  # nothing ever pulls; the router keeps its buffers bounded on its own

    def add_status_listener(self, listener: StatusListener) -> None:
        self._notices.add(listener)

    def close(self) -> None:
        pass


def _output_devices(pa: pyaudio.PyAudio) -> list[DeviceInfo]:
    try:
        default_index = int(pa.get_default_output_device_info()["index"])
    except OSError:
        default_index = -1
    found = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if int(info["maxOutputChannels"]) > 0:
            found.append(
                DeviceInfo(
                    index=index,
                    name=str(info["name"]),
                    max_output_channels=int(info["maxOutputChannels"]),
                    default_sample_rate=float(info["defaultSampleRate"]),
                    is_default=index == default_index,
                )
            )
    return found


def list_output_devices() -> list[DeviceInfo]:
    """Every device PortAudio can play to (empty when PortAudio finds none)."""
    with quiet_native_audio():
        pa = pyaudio.PyAudio()
        try:
            return _output_devices(pa)
        finally:
            pa.terminate()


def _resolve(pa: pyaudio.PyAudio, spec: str | int | None) -> DeviceInfo:
    """Pick a device: None = the default, an index, or a name substring (case-insensitive)."""
    devices = _output_devices(pa)
    if spec is None:
        for device in devices:
            if device.is_default:
                return device
        raise DeviceError("no default output device")
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        for device in devices:
            if device.index == index:
                return device
        raise DeviceError(f"no output device with index {index}")
    wanted = spec.strip().lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    partial = [d for d in devices if wanted in d.name.lower()]
    if exact or partial:
        return (exact or partial)[0]
    raise DeviceError(f"no output device matching {spec!r}")


class PyAudioDevice:
    """A PortAudio output stream that survives losing its device."""

    available = True

    def __init__(self, spec: str | int | None = None) -> None:
        self._spec = spec
        self._render: Renderer | None = None
        self._notices = _Notices()
        self._pa: pyaudio.PyAudio | None = None
        self._stream: Any = None
        self.channels = CHANNELS  # as opened: 1 on a device that has only one
        self._lock = threading.Lock()  # guards _pa/_stream against close() vs. the watchdog
        self._closed = threading.Event()
        self.callbacks = 0  # audio periods delivered since start (a liveness signal)
        self.xruns = 0  # periods PortAudio reported as output underflow
        self.reopens = 0
        self.lost = False
        # PortAudio prints from its audio thread too (e.g. when the device dies), so fd 2
        # stays off the terminal for as long as the device lives, not just while opening.
        install_native_error_handlers()
        native_stderr.acquire()
        try:
            self.name = self._open()  # raises DeviceError: open_output_device makes it a notice
        except BaseException:
            native_stderr.release()
            raise
        self._watchdog = threading.Thread(target=self._watch, name="audio-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def notice(self) -> str | None:
        return self._notices.latest

    def set_renderer(self, render: Renderer | None) -> None:
        self._render = render

    def add_status_listener(self, listener: StatusListener) -> None:
        self._notices.add(listener)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            self._teardown()
        if self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)
        native_stderr.release()

    # -- the audio thread ---------------------------------------------------------------

    def _callback(
        self, _in: bytes | None, frames: int, _time: Any, status: int
    ) -> tuple[bytes, int]:
        self.callbacks += 1
        if status & pyaudio.paOutputUnderflow:
            self.xruns += 1
        render = self._render
        silence = bytes(2 * self.channels * frames)
        if render is None:
            return silence, pyaudio.paContinue
        try:
            data = render(frames)
            if self.channels == 1:
                data = _downmix(data)
        except Exception:  # never let a bug kill the audio thread: play silence instead
            log.exception("audio renderer failed")
            data = silence
        return data, pyaudio.paContinue

    # -- opening, losing, reopening ----------------------------------------------------

    def _open(self) -> str:
        with self._lock, quiet_native_audio():
            if self._closed.is_set():
                raise DeviceError("device closed")
            pa = pyaudio.PyAudio()
            try:
                info = _resolve(pa, self._spec)
                # Set before the stream starts: its callback reads it from the first period.
                self.channels = channels = min(CHANNELS, info.max_output_channels)
                stream = pa.open(
                    format=pyaudio.paInt16,
                    channels=self.channels,
                    rate=SAMPLE_RATE,
                    output=True,
                    output_device_index=info.index,
                    frames_per_buffer=PERIOD_SAMPLES,
                    stream_callback=self._callback,
                )
            except DeviceError:
                pa.terminate()
                raise
            except Exception as exc:  # PortAudio reports failures as OSError/ValueError
                pa.terminate()
                raise DeviceError(f"cannot open {self._spec or 'default device'}: {exc}") from exc
            self._pa, self._stream = pa, stream
            log.info("audio output open: %s (index %d, %d ch)", info.name, info.index, channels)
            return info.name

    def _teardown(self) -> None:
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        with quiet_native_audio():
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    log.debug("closing a dead stream failed", exc_info=True)
            if pa is not None:
                pa.terminate()  # re-initialising later re-enumerates devices

    def _is_dead(self, last_progress: float) -> bool:
        stream = self._stream
        if stream is None:
            return True
        try:
            if not stream.is_active():
                return True
        except Exception:
            return True
        return time.monotonic() - last_progress > STALL_SECONDS

    def _watch(self) -> None:
        last_count, last_progress = self.callbacks, time.monotonic()
        while not self._closed.wait(0.25):
            if self.callbacks != last_count:
                last_count, last_progress = self.callbacks, time.monotonic()
            with self._lock:
                if self._closed.is_set():
                    return
                dead = self._is_dead(last_progress)
                if dead:
                    self._teardown()
            if dead:
                self.lost = True
                self._notices.emit(f"Audio device lost ({self.name}): retrying")
                self._reopen_until_back()
                last_count, last_progress = self.callbacks, time.monotonic()

    def _reopen_until_back(self) -> None:
        attempt = 0
        while not self._closed.is_set():
            delay = RETRY_DELAYS[attempt] if attempt < len(RETRY_DELAYS) else RETRY_MAX
            if self._closed.wait(delay):
                return
            attempt += 1
            try:
                self.name = self._open()
            except DeviceError as exc:
                log.info("audio reopen attempt %d failed: %s", attempt, exc)
                continue
            self.reopens += 1
            self.lost = False
            self._notices.emit(f"Audio device back: {self.name}")
            return


def open_output_device(device: str | int | None = None, *, no_audio: bool = False) -> OutputDevice:
    """The output to use; never raises.  Falls back to ``NullDevice`` with a notice."""
    if no_audio:
        return NullDevice("Audio off (--no-audio): playing nothing")
    try:
        return PyAudioDevice(device)
    except DeviceError as exc:
        return NullDevice(f"No audio device ({exc}): playing nothing")
    except Exception as exc:  # an unexpected PortAudio failure must not stop the dashboard
        log.exception("opening audio failed")
        return NullDevice(f"No audio device ({type(exc).__name__}): playing nothing")

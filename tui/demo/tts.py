"""Speech for the simulated calls: ``espeak-ng`` lines as 48 kHz mono int16 PCM.

Each role has its own voice so a listener can tell agent and caller apart.  Synthesis
is cached per (text, voice) in memory and on disk (``cache_dir()/tts``, one ``.npy``
per line, named by a hash of the text, the voice, its rate and pitch and the output
rate): a looping call, many calls with one scenario and later runs pay for each line
once.  Concurrent requests for one line wait for a single espeak-ng run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tui.core.paths import cache_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CACHE_VERSION = 1  # bump when the rendering changes (resampler, format)


class SpeechError(RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Voice:
    espeak_voice: str
    words_per_minute: int
    pitch: int  # espeak's 0..99


AGENT_VOICE = Voice("en-us+f3", words_per_minute=170, pitch=60)
CALLER_VOICE = Voice("en-gb+m3", words_per_minute=160, pitch=35)

_cache: dict[tuple[str, Voice], np.ndarray] = {}
_cache_lock = threading.Lock()
_line_locks: dict[tuple[str, Voice], threading.Lock] = {}


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """``text`` spoken by ``voice``: int16 samples at 48 kHz, mono (read-only, cached).

    Blocking (runs espeak-ng, or reads the disk cache); call it through
    ``asyncio.to_thread`` from a loop.  Every caller gets the same array.
    """
    key = (text, voice)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        line_lock = _line_locks.setdefault(key, threading.Lock())
    with line_lock:  # one synthesis per line, however many calls ask at once
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
        samples = _load(text, voice)
        if samples is None:
            samples = _run_espeak(text, voice)
            _store(text, voice, samples)
        samples.setflags(write=False)
        with _cache_lock:
            _cache[key] = samples
            _line_locks.pop(key, None)
        return samples


def cache_path(text: str, voice: Voice) -> Path:
    """Where the disk cache keeps ``text`` said by ``voice``."""
    key = "\0".join(
        [
            str(CACHE_VERSION),
            voice.espeak_voice,
            str(voice.words_per_minute),
            str(voice.pitch),
            str(SAMPLE_RATE),
            text,
        ]
    )
    return cache_dir() / "tts" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npy")


def _load(text: str, voice: Voice) -> np.ndarray | None:
    path = cache_path(text, voice)
    try:
        samples = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("speech cache entry %s unreadable (%s); rendering again", path, exc)
        return None
    if samples.dtype != np.int16 or samples.ndim != 1:
        return None
    return samples


def _store(text: str, voice: Voice, samples: np.ndarray) -> None:
    """Write the cache entry atomically; a full or read-only disk only costs speed."""
    path = cache_path(text, voice)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                np.save(file, samples, allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        log.info("speech cache not written (%s)", exc)


def duration_of(samples: np.ndarray) -> float:
    return len(samples) / SAMPLE_RATE


def estimated_duration(text: str) -> float:
    """How long a line takes to say, without synthesizing it (tone mode pacing)."""
    return max(1.0, len(text.split()) / 2.7)


def _run_espeak(text: str, voice: Voice) -> np.ndarray:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)")
    # "--" keeps a line that starts with "-" from being read as an option.
    command = [
        binary,
        "-v",
        voice.espeak_voice,
        "-s",
        str(voice.words_per_minute),
        "-p",
        str(voice.pitch),
        "--stdout",
        "--",
        text,
    ]
    try:
        result = subprocess.run(command, capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpeechError(f"espeak-ng failed: {exc}") from exc
    rate, pcm = _parse_wav(result.stdout)
    return _resample(pcm, rate, SAMPLE_RATE)


def _parse_wav(wav: bytes) -> tuple[int, np.ndarray]:
    """Rate and int16 samples of espeak's WAV (its stdout header has no real sizes)."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise SpeechError("espeak-ng did not produce a WAV stream")
    rate = int.from_bytes(wav[24:28], "little")
    data_at = wav.find(b"data", 12)
    if data_at < 0 or rate <= 0:
        raise SpeechError("espeak-ng WAV stream has no data chunk")
    body = wav[data_at + 8 :]
    body = body[: len(body) - len(body) % 2]
    return rate, np.frombuffer(body, dtype="<i2")


def _resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear-interpolation resampling: enough for speech going up in rate."""
    if rate == target or len(pcm) == 0:
        return pcm.astype(np.int16)
    count = round(len(pcm) * target / rate)
    positions = np.arange(count) * (rate / target)
    resampled = np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float32))
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def tone(frequency: float, start_sample: int, count: int, amplitude: float = 0.3) -> np.ndarray:
    """``count`` samples of a sine that continues seamlessly from ``start_sample``."""
    t = (np.arange(count) + start_sample) / SAMPLE_RATE
    return np.round(np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype(np.int16)

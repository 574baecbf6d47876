"""Audio level of 16-bit PCM frames, in dBFS (0 dBFS = full scale)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -96.0  # floor: about the dynamic range of 16-bit audio
_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class AudioLevel:
    peak_dbfs: float = SILENCE_DBFS
    rms_dbfs: float = SILENCE_DBFS


SILENT = AudioLevel()


def to_dbfs(amplitude: float) -> float:
    """Linear amplitude (1.0 = full scale) to dBFS, floored at SILENCE_DBFS."""
    if amplitude <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(amplitude))


def measure(samples: np.ndarray) -> AudioLevel:
    """Peak and RMS level of int16 samples; an empty frame is silence."""
    if samples.size == 0:
        return SILENT
    as_float = samples.astype(np.float64)
    peak = float(np.max(np.abs(as_float))) / _FULL_SCALE
    rms = math.sqrt(float(np.mean(as_float * as_float))) / _FULL_SCALE
    return AudioLevel(peak_dbfs=to_dbfs(peak), rms_dbfs=to_dbfs(rms))


def measure_pcm(frame: bytes | memoryview) -> AudioLevel:
    """Peak and RMS level of a frame of signed 16-bit little-endian PCM."""
    return measure(np.frombuffer(frame, dtype="<i2"))

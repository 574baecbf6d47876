"""Frequency-band analysis of recorded audio: single-bin (Goertzel) power in Hann windows.

Levels are in dBFS of a sine's amplitude (a full-scale sine reads 0 dB), so
"A is 30 dB above B" means the same thing at any window length.
"""

from __future__ import annotations

import math

import numpy as np

RATE = 48_000
FLOOR_DB = -200.0


def ms(milliseconds: float) -> int:
    """Milliseconds to a sample count."""
    return round(RATE * milliseconds / 1000)


def band_db(samples: np.ndarray, hz: float) -> float:
    """Amplitude of the ``hz`` component in dBFS (Hann-windowed Goertzel).

    The Hann window keeps a 1000 Hz tone's leakage into the 440 Hz band far below
    the 30 dB margins the tests check, which a plain rectangular window would not.
    """
    x = samples.astype(np.float64) / 32768.0
    n = x.size
    if n == 0:
        return FLOOR_DB
    window = np.hanning(n)
    xw = x * window
    # Goertzel computes this single DFT term; numpy's dot does the same sum faster.
    phase = np.exp(-2j * math.pi * hz / RATE * np.arange(n))
    power = abs(complex(np.dot(xw, phase))) ** 2
    amplitude = 2.0 * math.sqrt(max(power, 0.0)) / window.sum()
    return 20.0 * math.log10(amplitude) if amplitude > 0 else FLOOR_DB


def rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return FLOOR_DB
    rms = float(np.sqrt(np.mean((samples.astype(np.float64) / 32768.0) ** 2)))
    return 20.0 * math.log10(rms) if rms > 0 else FLOOR_DB


def windows(samples: np.ndarray, start: int, end: int, size: int) -> list[tuple[int, np.ndarray]]:
    """Whole windows of ``size`` samples in ``samples[start:end]``, with their offsets."""
    end = min(end, samples.size)
    return [(at, samples[at:at + size]) for at in range(max(start, 0), end - size + 1, size)]


def onset(samples: np.ndarray, hz: float, *, threshold_db: float = -40.0,
          start: int = 0, step: int = ms(5)) -> int | None:
    """First sample offset (>= start) where the ``hz`` band rises above ``threshold_db``.

    Scans 10 ms windows every ``step`` samples; returns the start of the first
    window over the threshold, so it is accurate to about ``step``.
    """
    size = ms(10)
    for at in range(max(start, 0), samples.size - size + 1, step):
        if band_db(samples[at:at + size], hz) > threshold_db:
            return at
    return None

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
    return [(at, samples[at : at + size]) for at in range(max(start, 0), end - size + 1, size)]


def onset(
    samples: np.ndarray,
    hz: float,
    *,
    threshold_db: float = -40.0,
    start: int = 0,
    step: int = ms(5),
    sustain: int = 0,
) -> int | None:
    """First sample offset (>= start) where the ``hz`` band rises above ``threshold_db``.

    Scans 10 ms windows every ``step`` samples; returns the start of the first
    window over the threshold, so it is accurate to about ``step``.  With
    ``sustain`` the band must also stay above it for that many samples: a click
    spreads energy into every band for a moment, a tone stays.
    """
    size = ms(10)
    starts = list(range(max(start, 0), samples.size - size + 1, step))
    above = [band_db(samples[at : at + size], hz) > threshold_db for at in starts]
    run = max(1, sustain // step)
    for i in range(len(starts) - run + 1):
        if all(above[i : i + run]):
            return starts[i]
    return None


PRESENT_DB = -30.0  # test tones play at about -10 dBFS
SILENT_DB = -70.0
MARGIN_DB = 30.0
CHECK_WINDOW = ms(50)


def assert_only(
    samples: np.ndarray,
    start: int,
    end: int,
    heard: float,
    other: float,
    clean_fraction: float = 1.0,
) -> None:
    """In ``[start, end)`` the ``heard`` band plays and ``other`` stays >= 30 dB below it.

    With ``clean_fraction`` < 1 (decoded network audio on a loaded machine) a few
    windows may be disturbed: a dropout's click spreads energy into every band.
    The other call is still never louder than the heard one in any window, and a
    real leak of it would fail the fraction, since it would be in every window.
    """
    checked = windows(samples, start, end, CHECK_WINDOW)
    assert len(checked) >= 5, "recording too short for the check"
    clean = 0
    for at, window in checked:
        heard_db, other_db = band_db(window, heard), band_db(window, other)
        if heard_db > PRESENT_DB and heard_db - other_db >= MARGIN_DB:
            clean += 1
        assert other_db < max(heard_db, SILENT_DB), (
            f"{other:.0f} Hz ({other_db:.0f} dB) over {heard:.0f} Hz at {at / RATE:.3f}s"
        )
    assert clean >= clean_fraction * len(checked), (
        f"{heard:.0f} Hz alone and present in only {clean} of {len(checked)} windows"
    )


def assert_silent(samples: np.ndarray, start: int, end: int, bands: tuple[float, ...]) -> None:
    checked = windows(samples, start, end, CHECK_WINDOW)
    assert len(checked) >= 5, "recording too short for the check"
    for at, window in checked:
        for hz in bands:
            assert band_db(window, hz) < SILENT_DB, f"{hz:.0f} Hz heard at {at / RATE:.3f}s"
        assert rms_dbfs(window) < SILENT_DB, f"noise at {at / RATE:.3f}s"

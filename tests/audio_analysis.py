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


# Test tones play at about -10 dBFS: a band above this in a 50 ms window is that tone
# playing.  What is not playing stays below it: a click or dropout of the heard call
# spreads up to about -40 dB into every band, and Opus codes the upper bands coarsely, so
# a tone at 4-8 kHz shows in a band 250 Hz away at -38 to -70 dB (bench_scale, 32 calls).
PRESENT_DB = -30.0
SILENT_DB = -70.0
MARGIN_DB = 30.0
CHECK_WINDOW = ms(50)


# A band between the test tones (440/1000 Hz) and their harmonics: what a click or a
# dropout puts into every band, and a tone does not.
REFERENCE_HZ = 700.0
# A band "stands out" when it is this far above the broadband reference.
STANDS_OUT_DB = 10.0
DEFAULT_DROPOUT_BUDGET = 0.2


def stands_out(window: np.ndarray, hz: float) -> bool:
    """The ``hz`` tone is really there: above the floor and above the broadband level."""
    level = band_db(window, hz)
    return level > SILENT_DB and level > band_db(window, REFERENCE_HZ) + STANDS_OUT_DB


def assert_only(
    samples: np.ndarray,
    start: int,
    end: int,
    heard: float,
    other: float,
    clean_fraction: float = 1.0 - DEFAULT_DROPOUT_BUDGET,
) -> tuple[int, int]:
    """In ``[start, end)`` the ``heard`` band plays and the ``other`` one never does.

    Two faults are told apart, window by window (50 ms):
    - **bleed**: the other call's tone stands out above the noise floor (and above
      the broadband level, so a click is not taken for it) — never tolerated;
    - **dropout**: the heard call is missing or not 30 dB above the other (decoded
      network audio on a loaded machine comes through choppy) — tolerated in at
      most ``1 - clean_fraction`` of the windows.
    Returns (dropouts, windows checked) so a test can print them.
    """
    checked = windows(samples, start, end, CHECK_WINDOW)
    assert len(checked) >= 5, "recording too short for the check"
    dropouts = 0
    for at, window in checked:
        heard_db, other_db = band_db(window, heard), band_db(window, other)
        assert not stands_out(window, other), (
            f"bleed: {other:.0f} Hz at {other_db:.0f} dB "
            f"(heard {heard:.0f} Hz at {heard_db:.0f} dB) at {at / RATE:.3f}s"
        )
        if not (heard_db > PRESENT_DB and heard_db - other_db >= MARGIN_DB):
            dropouts += 1
    budget = 1.0 - clean_fraction
    assert dropouts <= budget * len(checked), (
        f"{heard:.0f} Hz missing in {dropouts} of {len(checked)} windows "
        f"(dropout budget {budget:.0%})"
    )
    return dropouts, len(checked)


def is_silent(window: np.ndarray, bands: tuple[float, ...] = ()) -> bool:
    """Nothing plays: below the floor overall and in each band given."""
    return rms_dbfs(window) < SILENT_DB and all(band_db(window, hz) < SILENT_DB for hz in bands)


def assert_silent(samples: np.ndarray, start: int, end: int, bands: tuple[float, ...]) -> None:
    checked = windows(samples, start, end, CHECK_WINDOW)
    assert len(checked) >= 5, "recording too short for the check"
    for at, window in checked:
        for hz in bands:
            assert band_db(window, hz) < SILENT_DB, f"{hz:.0f} Hz heard at {at / RATE:.3f}s"
        assert rms_dbfs(window) < SILENT_DB, f"noise at {at / RATE:.3f}s"

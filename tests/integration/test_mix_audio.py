"""Mix mode through real audio: two calls heard at once, each on its side; one taken out.

The four tone calls of test_heard_only (bots in another process, the real emulator,
Monitor, router and device) play into a private PulseAudio with a *stereo* null
sink, recorded left and right apart with ``parec``.  What is checked is what the
model and the router document, measured in the recording:

* the focused call plays at the centre: the same on both channels, at its level as
  received (the pan law is normalised to unity at the centre);
* the first call of the mix plays at pan -0.7 (MIX_PAN, left) with the constant-power
  law: left sqrt(2)*cos(t), right sqrt(2)*sin(t), t = (pan + 1)*pi/4; the expected
  figures are computed here from that formula, not taken from the router;
* a call taken out of the mix (M on it again) is gone from both channels while the
  focused call plays on; the calls in neither are never heard.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.audio_analysis import PRESENT_DB, band_db, ms, onset, windows
from tests.fixtures.audio import LEFT, RIGHT, PulseServer, wait_until_playing
from tests.integration.test_heard_only import (
    CLEAN,
    SUSTAIN,
    SWITCH_WINDOW,
    TONES,
    four_calls,
    frames_grow,
    frames_still,
    silenced,
)
from tests.measure import RecordingClock
from tui.audio import AudioRouter, PyAudioDevice, open_output_device
from tui.demo.emulator import ApiEmulator
from tui.demo.livekit_server import LiveKitServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

RATE = 48_000
SIDE_PAN = 0.7  # MIX_PAN as the model documents it: the first of the mix at -0.7
PHASE_S = 3.0  # recorded with the mix, then as long again after one call left it
# The bots' test tone (tui/demo/tts.py: amplitude 0.3) is -10.5 dBFS as sent; Opus
# and the network change a steady sine's level by a fraction of a dB.
SENT_DB = 20 * math.log10(0.3)
LEVEL_TOLERANCE_DB = 1.5
# Left and right carry one call's same samples times two fixed gains (ramps keep their
# ratio), so a window's L-R difference is the pan law's and the median is tight.
PAN_TOLERANCE_DB = 1.0
CENTRE_TOLERANCE_DB = 1.5


def pan_law_db(pan: float) -> tuple[float, float]:
    """(left, right) gain in dB at ``pan``: constant power, unity at the centre."""
    t = (pan + 1) * math.pi / 4
    return 20 * math.log10(math.sqrt(2) * math.cos(t)), 20 * math.log10(math.sqrt(2) * math.sin(t))


@dataclass(repr=False)
class Stereo:
    """Per-window band levels of one tone in a stereo recording, where it was present."""

    left: list[float] = field(default_factory=list)
    right: list[float] = field(default_factory=list)
    windows: int = 0

    @property
    def present(self) -> int:
        return len(self.left)

    @property
    def difference(self) -> float:
        """Median left - right, in dB, over the windows it was present in."""
        return statistics.median(lt - rt for lt, rt in zip(self.left, self.right, strict=True))

    @property
    def level(self) -> tuple[float, float]:
        return statistics.median(self.left), statistics.median(self.right)

    def __repr__(self) -> str:
        if not self.present:
            return f"absent in all {self.windows} windows"
        lt, rt = self.level
        return (
            f"L {lt:.2f} dB, R {rt:.2f} dB, L-R {self.difference:+.2f} dB "
            f"(present in {self.present} of {self.windows} windows)"
        )


def playing(samples: np.ndarray, start: int, end: int, hz: float, louder: int) -> Stereo:
    """The ``hz`` call's levels in each 50 ms window of ``[start, end)`` where it plays.

    Present: above PRESENT_DB on the ``louder`` channel (the one its side favours, either
    at the centre).  Decoded network audio on two busy cores comes through choppy, so the
    caller judges presence over many windows; a dropout scales both channels alike.
    """
    found = Stereo()
    for _, window in windows(samples, start, end, ms(50)):
        found.windows += 1
        lt, rt = band_db(window[:, LEFT], hz), band_db(window[:, RIGHT], hz)
        if (lt, rt)[louder] > PRESENT_DB:
            found.left.append(lt)
            found.right.append(rt)
    assert found.windows >= 5, "recording too short for the check"
    return found


def never_heard(samples: np.ndarray, start: int, end: int, bands: list[float]) -> float:
    """These bands never play, on either channel, in any 50 ms window; returns the loudest.

    A click or dropout of a heard call spreads energy into its neighbours' bands (up to
    about -40 dB): a band at PRESENT_DB or more is that call playing.
    """
    loudest = -200.0
    for at, window in windows(samples, start, end, ms(50)):
        for channel, name in ((LEFT, "left"), (RIGHT, "right")):
            for hz in bands:
                level = band_db(window[:, channel], hz)
                loudest = max(loudest, level)
                assert level < PRESENT_DB, (
                    f"{hz:.0f} Hz playing on the {name} ({level:.0f} dB) at {at / RATE:.3f} s"
                )
    return loudest


@pytest.fixture
def stereo_device(stereo_pulse_server: PulseServer) -> Iterator[PyAudioDevice]:
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    assert device.channels == 2, "the device must play stereo into a stereo sink"
    yield device
    device.close()


@pytest.mark.timeout(240)
async def test_two_calls_in_the_mix_play_on_their_sides_and_one_taken_out_is_silent(
    livekit_server: LiveKitServer,
    api_emulator_live: ApiEmulator,
    stereo_pulse_server: PulseServer,
    stereo_device: PyAudioDevice,
) -> None:
    # a: first in the mix (left); b: focused (centre); c, d: in neither, never heard.
    a_hz, b_hz = TONES[0], TONES[2]  # 300 and 800 Hz: the unheard 550 / 1050 between
    unheard_hz = [TONES[1], TONES[3]]
    router = AudioRouter(stereo_device)
    try:
        await wait_until_playing(stereo_device)
        async with four_calls(livekit_server, api_emulator_live, router) as calls:
            dashboard = calls.dashboard
            a, c, b, d = calls.ids
            dashboard.focus(a)
            dashboard.set_listening(True)
            dashboard.toggle_mix()  # M: a joins the mix (focused: still the centre)
            dashboard.focus(b)  # a keeps playing, on its side; b at the centre
            assert dashboard.mix == (a,)
            assert router.placements == {b: (1.0, 0.0), a: (1.0, -SIDE_PAN)}
            await frames_grow(calls, a)
            await frames_grow(calls, b)

            recorder = await asyncio.to_thread(stereo_pulse_server.record)
            clock = RecordingClock(recorder)
            await asyncio.sleep(PHASE_S)
            removed_at = time.monotonic()
            dashboard.toggle_mix(a)  # M on a (by id, focus stays on b): a leaves the mix
            assert dashboard.mix == ()
            assert router.placements == {b: (1.0, 0.0)}
            await asyncio.sleep(PHASE_S)
            clock.stop()
            samples = await asyncio.to_thread(recorder.stop)
            await frames_still(calls, [a, c, d])  # out of the mix, a decodes nothing
    finally:
        router.close()

    assert samples.ndim == 2 and samples.shape[1] == 2, samples.shape
    removed = clock.offset_at(removed_at)
    # -- the mix: both calls, a on the left by the pan law, b at the centre -------------
    starts = [
        onset(samples[:, LEFT], a_hz, sustain=SUSTAIN),
        onset(samples[:, LEFT], b_hz, sustain=SUSTAIN),
        onset(samples[:, RIGHT], b_hz, sustain=SUSTAIN),
    ]
    assert all(at is not None and at < removed for at in starts), f"onsets {starts}, {removed}"
    mix_start, mix_end = max(at for at in starts if at is not None) + ms(20), removed - ms(20)
    mix_a = playing(samples, mix_start, mix_end, a_hz, louder=LEFT)
    mix_b = playing(samples, mix_start, mix_end, b_hz, louder=LEFT)
    loudest_unheard = never_heard(samples, mix_start, mix_end, unheard_hz)
    # -- a out of the mix: gone from both channels; b plays on at the centre ------------
    after_start, after_end = removed + SWITCH_WINDOW, samples.shape[0] - ms(50)
    after_b = playing(samples, after_start, after_end, b_hz, louder=LEFT)
    loudest_a = never_heard(samples, after_start, after_end, [a_hz])
    loudest_unheard = max(loudest_unheard, never_heard(samples, after_start, after_end, unheard_hz))
    gone = [silenced(samples[:, ch], a_hz, start=removed - ms(100)) for ch in (LEFT, RIGHT)]

    left_db, right_db = pan_law_db(-SIDE_PAN)
    print(
        f"\nmix, {mix_a.windows} windows: a (pan -{SIDE_PAN}, expected L {SENT_DB + left_db:.2f}"
        f" R {SENT_DB + right_db:.2f} L-R {left_db - right_db:+.2f} dB): {mix_a}"
        f"\n  b (centre, expected L = R = {SENT_DB:.2f} dB): {mix_b}"
        f"\nafter a left the mix: b {after_b}; a's band at most {loudest_a:.1f} dB; "
        f"a silent from {[None if g is None else round(1000 * (g - removed) / RATE) for g in gone]}"
        f" ms after M (recording clock); the unheard calls' bands at most {loudest_unheard:.1f} dB"
    )

    for name, found in (("a in the mix", mix_a), ("b with a", mix_b), ("b alone", after_b)):
        assert found.present >= CLEAN * found.windows, f"{name}: {found}"
    # a's side: the left/right difference and each channel's level are the law's at -0.7
    # (a mono downmix, the wrong side, a linear law are off by 12.4, 24.8 and 2.7 dB).
    assert mix_a.difference == pytest.approx(left_db - right_db, abs=PAN_TOLERANCE_DB), mix_a
    assert mix_a.level[0] == pytest.approx(SENT_DB + left_db, abs=LEVEL_TOLERANCE_DB), mix_a
    assert mix_a.level[1] == pytest.approx(SENT_DB + right_db, abs=LEVEL_TOLERANCE_DB), mix_a
    # The centre: both channels alike, at the level received, with a beside it and alone.
    for found in (mix_b, after_b):
        assert abs(found.difference) <= CENTRE_TOLERANCE_DB, found
        assert found.level[0] == pytest.approx(SENT_DB, abs=LEVEL_TOLERANCE_DB), found
    # a's sound stopped on both channels within the switch window of the M.
    assert all(g is not None and g < removed + SWITCH_WINDOW for g in gone), gone

"""Routing heard through the real path: PyAudio -> PortAudio -> ALSA -> PulseAudio.

Two synthetic calls write 10 ms tone frames in real time (440 Hz and 1000 Hz)
into their router outputs; ``parec`` records what the null sink played.
Windows are placed relative to the onset of a tone in the recording, plus the
intervals the test itself measured between its calls to the router.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.audio_analysis import PRESENT_DB, assert_only, assert_silent, band_db, ms, onset, windows
from tests.fixtures.audio import PulseServer, ToneFeeder, wait_until_playing
from tui.audio import AudioRouter, PyAudioDevice, open_output_device

pytestmark = pytest.mark.slow

A_HZ, B_HZ = 440.0, 1000.0
SETTLE = ms(500)  # "from 500 ms later on"
# The feeders write in real time from the test's own loop; on a busy machine one can
# fall behind for a moment and the jitter buffer plays a gap.  A gap may spoil a few
# windows; the other call's band over the heard one never passes in any window.
CLEAN = 0.8


@pytest.mark.timeout(60)
async def test_only_the_heard_call_is_heard_and_a_switch_moves_the_sound(
    pulse_server: PulseServer,
    tone_feeders: list[ToneFeeder],
) -> None:
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    try:
        router = AudioRouter(device)
        await wait_until_playing(device)
        recorder = await asyncio.to_thread(pulse_server.record)
        tone_feeders += [
            ToneFeeder(router.output_for("a"), A_HZ).start(),
            ToneFeeder(router.output_for("b"), B_HZ).start(),
        ]
        await asyncio.sleep(0.3)

        router.set_heard(["a"])
        t_heard_a = time.monotonic()
        await asyncio.sleep(1.2)
        router.set_heard(["b"])
        t_heard_b = time.monotonic()
        await asyncio.sleep(1.2)
        router.set_heard([])
        t_off = time.monotonic()
        await asyncio.sleep(1.0)
        t_end = time.monotonic()
        for feeder in tone_feeders:
            await feeder.stop()
        samples = recorder.stop()
    finally:
        device.close()

    a_onset = onset(samples, A_HZ)
    assert a_onset is not None, "the heard call was never heard"
    assert onset(samples, B_HZ, start=0) is None or onset(samples, B_HZ) > a_onset

    # The recording's clock is the sink's: a router call made d seconds after
    # set_heard(["a"]) shows up d seconds after A's onset (plus that onset's own delay).
    def at(t: float) -> int:
        return a_onset + round((t - t_heard_a) * 48000)

    assert_only(samples, a_onset + ms(20), at(t_heard_b), A_HZ, B_HZ, CLEAN)
    assert_only(samples, at(t_heard_b) + SETTLE, at(t_off), B_HZ, A_HZ, CLEAN)
    assert_silent(samples, at(t_off) + SETTLE, at(t_end) - ms(100), (A_HZ, B_HZ))


@pytest.mark.timeout(60)
async def test_nothing_is_heard_before_a_call_is_heard(
    pulse_server: PulseServer,
    tone_feeders: list[ToneFeeder],
) -> None:
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    try:
        router = AudioRouter(device)
        await wait_until_playing(device)
        recorder = await asyncio.to_thread(pulse_server.record)
        assert router.heard == frozenset()
        tone_feeders += [
            ToneFeeder(router.output_for("a"), A_HZ).start(),
            ToneFeeder(router.output_for("b"), B_HZ).start(),
        ]
        await asyncio.sleep(1.2)
        # Then A heard: the same setup must be audible, or the silence above proves nothing.
        router.set_heard(["a"])
        assert router.heard == {"a"}
        await asyncio.sleep(0.8)
        for feeder in tone_feeders:
            await feeder.stop()
        samples = recorder.stop()
    finally:
        device.close()

    a_onset = onset(samples, A_HZ)
    assert a_onset is not None, "once heard, the call was never heard"
    assert a_onset >= ms(1000), "the silent period was not recorded"
    assert_silent(samples, 0, a_onset - ms(10), (A_HZ, B_HZ))
    assert_only(samples, a_onset + ms(20), a_onset + ms(600), A_HZ, B_HZ, CLEAN)


@pytest.mark.timeout(60)
async def test_two_heard_calls_play_together_and_one_can_leave_the_mix(
    pulse_server: PulseServer,
    tone_feeders: list[ToneFeeder],
) -> None:
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    try:
        router = AudioRouter(device)
        await wait_until_playing(device)
        recorder = await asyncio.to_thread(pulse_server.record)
        tone_feeders += [
            ToneFeeder(router.output_for("a"), A_HZ).start(),
            ToneFeeder(router.output_for("b"), B_HZ).start(),
        ]
        await asyncio.sleep(0.3)
        router.set_heard(["a", "b"])
        t_mix = time.monotonic()
        await asyncio.sleep(1.2)
        router.set_heard(["b"])
        t_b_alone = time.monotonic()
        await asyncio.sleep(1.2)
        t_end = time.monotonic()
        for feeder in tone_feeders:
            await feeder.stop()
        samples = recorder.stop()
    finally:
        device.close()

    a_onset = onset(samples, A_HZ)
    assert a_onset is not None, "the mix was never heard"

    def at(t: float) -> int:
        return a_onset + round((t - t_mix) * 48000)

    mixed = windows(samples, a_onset + ms(20), at(t_b_alone), ms(50))
    assert len(mixed) >= 5, "recording too short for the check"
    both = [w for _, w in mixed if min(band_db(w, A_HZ), band_db(w, B_HZ)) > PRESENT_DB]
    assert len(both) >= CLEAN * len(mixed), f"both calls in only {len(both)} of {len(mixed)}"
    assert_only(samples, at(t_b_alone) + SETTLE, at(t_end) - ms(100), B_HZ, A_HZ, CLEAN)

"""Losing the sound device mid-run is reported and retried, and sound comes back.

The server control calls run in threads: blocking the event loop would starve
the real-time tone feeder and put gaps in the audio we then check.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.audio_analysis import band_db, ms, onset, windows
from tests.fixtures.audio import PulseServer, ToneFeeder, poll_until, wait_until_playing
from tui.audio import AudioRouter, PyAudioDevice, open_output_device

pytestmark = pytest.mark.slow

A_HZ = 440.0


def assert_heard(samples, hz: float) -> None:
    start = onset(samples, hz)
    assert start is not None, f"{hz:.0f} Hz was not heard"
    checked = windows(samples, start + ms(20), start + ms(620), ms(50))
    assert len(checked) >= 10, "recording too short"
    for at, window in checked:
        assert band_db(window, hz) > -30.0, f"{hz:.0f} Hz dropped out at {at / 48000:.3f}s"


@pytest.mark.timeout(90)
async def test_a_lost_device_is_reported_retried_and_heard_again(
    pulse_server: PulseServer,
    tone_feeders: list[ToneFeeder],
    capfd: pytest.CaptureFixture[str],
) -> None:
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    notices: list[str] = []
    try:
        router = AudioRouter(device)
        router.on_notice(notices.append)
        await wait_until_playing(device)
        feeder = ToneFeeder(router.output_for("a"), A_HZ).start()
        tone_feeders.append(feeder)
        router.set_heard(["a"])

        before = await asyncio.to_thread(pulse_server.record)
        await asyncio.sleep(1.0)
        # The sound server goes away under the open stream.
        await asyncio.to_thread(pulse_server.stop)
        assert_heard(before.stop(), A_HZ)

        await poll_until(lambda: any("lost" in n for n in notices), 20, "a 'lost' notice")
        assert router.notice is not None and "lost" in router.notice
        await asyncio.sleep(1.0)  # a few retries against no server at all

        await asyncio.to_thread(pulse_server.start)
        await poll_until(lambda: any("back" in n for n in notices), 30, "a 'back' notice")
        await wait_until_playing(device)
        after = await asyncio.to_thread(pulse_server.record)
        await asyncio.sleep(1.0)
        samples = after.stop()
        await feeder.stop()  # re-raises if a write ever failed while the device was gone
    finally:
        device.close()

    assert [n.split()[2] for n in notices] == ["lost", "back:"]
    assert router.heard == {"a"}
    assert_heard(samples, A_HZ)
    # PortAudio complains loudly from its audio thread when the server dies: not on the terminal.
    assert capfd.readouterr().err == ""

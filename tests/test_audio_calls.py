"""End to end: two simulated calls in tone mode, heard through real listen sessions.

Real livekit-server, real agent bots playing 440 Hz and 1000 Hz, real listen
sessions decoding them into router outputs, the real PortAudio path into a
private PulseAudio null sink, recorded with parec.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.audio_analysis import assert_only, assert_silent, ms, onset
from tests.fixtures.audio import PulseServer, poll_until, wait_until_playing
from tests.fixtures.listen import MakeSession, listener_token
from tui.audio import AudioRouter, PyAudioDevice, open_output_device
from tui.demo.calls import CallOptions
from tui.demo.livekit_server import LiveKitServer

TONES = {"call-a": 440.0, "call-b": 1000.0}
SETTLE = ms(500)
# Bots, sessions and the audio callback share one process and two busy cores: allow
# the odd 50 ms window disturbed by a dropout's click, never the wrong call on top.
CLEAN = 0.8


@pytest.mark.timeout(120)
async def test_two_tone_calls_only_the_focused_one_is_heard(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession,
    pulse_server: PulseServer,
) -> None:
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    try:
        router = AudioRouter(device)
        await wait_until_playing(device)
        sessions = {}
        for room in TONES:
            token = listener_token(livekit_server, room, identity=f"listener-{room}")
            session, _ = listen_session(livekit_server.url, token,
                                        output=router.output_for(room))
            router.set_level_source(room, lambda s=session: s.level)
            await session.connect()
            await session.start_audio()
            sessions[room] = session
        for room, hz in TONES.items():
            await simulated_call(livekit_server, room,
                                 CallOptions(mode="tone", tone_hz=hz, loop=True))
        # Both calls stream (levels from the sessions, read through the router)
        # while nothing is heard yet.
        await poll_until(lambda: all(router.level(r).rms_dbfs > -30 for r in TONES), 20,
                         "both calls' tones at the sessions")
        assert router.heard is None

        recorder = await asyncio.to_thread(pulse_server.record)
        router.focus("call-a")
        await asyncio.sleep(0.5)
        router.set_listening(True)
        t_listen = time.monotonic()
        await asyncio.sleep(1.5)
        router.focus("call-b")
        t_focus_b = time.monotonic()
        await asyncio.sleep(1.5)
        router.set_listening(False)
        t_off = time.monotonic()
        await asyncio.sleep(1.0)
        t_end = time.monotonic()
        samples = await asyncio.to_thread(recorder.stop)
        # Muted calls kept streaming: both levels are still live.
        assert all(router.level(r).rms_dbfs > -30 for r in TONES)
    finally:
        router.close()
        device.close()

    a_onset = onset(samples, TONES["call-a"])
    assert a_onset is not None, "the focused call was never heard"
    assert a_onset >= ms(400), "something played before listening was turned on"
    assert_silent(samples, 0, a_onset - ms(10), tuple(TONES.values()))

    def at(t: float) -> int:  # router calls placed on the recording, aligned on A's onset
        return a_onset + round((t - t_listen) * 48000)

    a_hz, b_hz = TONES["call-a"], TONES["call-b"]
    assert_only(samples, a_onset + ms(20), at(t_focus_b), a_hz, b_hz, CLEAN)
    assert_only(samples, at(t_focus_b) + SETTLE, at(t_off), b_hz, a_hz, CLEAN)
    assert_silent(samples, at(t_off) + SETTLE, at(t_end) - ms(100), (a_hz, b_hz))

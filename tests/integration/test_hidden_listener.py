"""A hidden, subscribe-only participant is invisible to the call and cannot publish."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from livekit import api, rtc
from livekit.rtc.participant import PublishTrackError

from tests.fixtures.calls import CallObserver
from tui.demo.calls import CallOptions
from tui.demo.livekit_server import LiveKitServer
from tui.demo.tts import SAMPLE_RATE, tone

pytestmark = pytest.mark.slow

LISTENER = "hidden-listener"


async def try_to_publish(room: rtc.Room, source: rtc.AudioSource) -> str:
    """Every way a listener could make itself heard; what happened to its track."""
    outcomes = []
    track = rtc.LocalAudioTrack.create_audio_track("sneaky", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    # The publish is left to finish natively (its own timeout is ~10 s) rather than
    # cancelled, so no native callback is left pending when the test's loop closes.
    publish = asyncio.ensure_future(room.local_participant.publish_track(track, options))
    done, _ = await asyncio.wait({publish}, timeout=10)
    try:
        await publish
        outcomes.append("track published")
    except PublishTrackError:
        outcomes.append("track refused" if done else "track timed out")
    frame = tone(440.0, 0, SAMPLE_RATE // 100)
    for _ in range(50):
        await source.capture_frame(rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, len(frame)))
    for attempt in (
        room.local_participant.publish_data(b"hello", topic="lk.chat"),
        room.local_participant.send_text("hello", topic="lk.chat"),
        room.local_participant.send_text("hello", topic="lk.transcription"),
    ):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(attempt, 5)
    return outcomes[0]


@pytest.mark.timeout(90)
async def test_hidden_subscribe_only_listener_is_invisible_and_mute(
    livekit_server: LiveKitServer, simulated_call
) -> None:
    options = CallOptions(scenario="support", mode="tone", max_lines=3, time_scale=0.3)
    call = await simulated_call(livekit_server, "hidden-room", options)
    listener = CallObserver(livekit_server, "hidden-room", LISTENER)
    await listener.connect()
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    try:
        assert listener.room is not None
        outcome = await try_to_publish(listener.room, source)
        assert outcome in {"track refused", "track timed out"}
        await asyncio.wait_for(call.wait_ended(), 60)
        await asyncio.sleep(1.0)

        # The listener heard the call...
        assert listener.samples(call.agent.identity).size > SAMPLE_RATE
        assert np.abs(listener.samples(call.agent.identity)).max() > 1000
        assert any(s.final for s in listener.streams)
        # ...and the call never knew it was there.
        for bot in (call.agent, call.caller):
            assert LISTENER not in bot.seen_identities, bot
            assert LISTENER not in bot.seen_track_owners, bot
            assert LISTENER not in bot.data_senders, bot
            assert bot.seen_identities == {call.agent.identity, call.caller.identity} - {
                bot.identity
            }
    finally:
        await listener.close()
        await source.aclose()  # only once its room is gone


@pytest.mark.timeout(60)
async def test_bots_do_notice_a_visible_publisher(
    livekit_server: LiveKitServer, simulated_call
) -> None:
    """Counter-check: the bots' watch works, so the hidden test above can fail."""
    options = CallOptions(scenario="support", mode="tone", max_lines=6, time_scale=0.3)
    call = await simulated_call(livekit_server, "visible-room", options)
    room = rtc.Room()
    token = (
        api.AccessToken(livekit_server.api_key, livekit_server.api_secret)
        .with_identity("visible-guest")
        .with_grants(api.VideoGrants(room_join=True, room="visible-room"))
        .to_jwt()
    )
    await room.connect(livekit_server.url, token)
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    try:
        assert await try_to_publish(room, source) == "track published"
        bots = (call.agent, call.caller)
        for _ in range(100):
            if all(
                "visible-guest" in seen
                for bot in bots
                for seen in (bot.seen_identities, bot.seen_track_owners, bot.data_senders)
            ):
                break
            await asyncio.sleep(0.1)
        assert not call.ended
        for bot in (call.agent, call.caller):
            assert "visible-guest" in bot.seen_identities
            assert "visible-guest" in bot.seen_track_owners
            assert "visible-guest" in bot.data_senders
    finally:
        await room.disconnect()
        await source.aclose()

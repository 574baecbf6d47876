"""A listen session on simulated calls (real livekit-server, real bots)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.rtc.participant import PublishTrackError

from tests.fixtures.listen import (
    MakeSession,
    RecordingOutput,
    dominant_hz,
    listener_token,
    wait_for_level,
)
from tui.demo.calls import CallOptions, SimulatedCall
from tui.demo.livekit_server import LiveKitServer
from tui.listen import AgentDisconnected, ListenSession, Transcript

# Short tone-mode calls: timing of the words is scaled down, the protocol is not.
SHORT = {"mode": "tone", "time_scale": 0.25, "max_lines": 4}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def expected_finals(call: SimulatedCall, channel: str = "stream") -> list[Transcript]:
    return [
        Transcript(s.segment_id, "agent" if s.role == "agent" else "user", s.text, True)
        for s in call.sent_segments
        if s.final and s.channel == channel
    ]


def expected_interims(call: SimulatedCall, channel: str = "stream") -> list[Transcript]:
    return [
        Transcript(s.segment_id, "agent" if s.role == "agent" else "user", s.text, False)
        for s in call.sent_segments
        if not s.final and s.channel == channel
    ]


async def test_full_call_states_transcripts_agent_leaving_and_end_in_order(
    livekit_server: LiveKitServer, simulated_call, call_observer, listen_session: MakeSession
) -> None:
    room = "full-call"
    # A plain subscriber's view: what the server really delivered (a bot that hangs
    # up right after its last write can lose that write in transit).
    observer = await call_observer(livekit_server, room)
    output = RecordingOutput()
    session, rec = listen_session(
        livekit_server.url, listener_token(livekit_server, room), output=output
    )
    assert session.get_state() == "idle"
    await session.connect()  # empty room: resolves at once after joining
    assert session.get_state() == "connected"
    await session.start_audio()

    call = await simulated_call(livekit_server, room, CallOptions(**SHORT, tone_hz=660.0))
    await wait_for_level(session, above_dbfs=-30)  # the agent's tone reaches the meter
    await call.wait_ended()
    await rec.wait_until(lambda: "agentDisconnected" in rec.names())
    await session.end()

    # states, each change once, in order
    assert rec.states == ["connecting", "connected", "disconnected"]
    # transcripts: every update delivered, same ids and text, one final per segment
    await asyncio.sleep(0)
    delivered = delivered_finals(observer, "agent-ava")
    assert sorted(rec.finals, key=_by_id) == sorted(delivered, key=_by_id)
    assert [t.id for t in rec.finals] == [t.id for t in expected_finals(call)]
    assert {t.role for t in rec.finals} == {"agent", "user"}
    interims = [t for t in rec.transcripts if not t.final]
    for sent in expected_interims(call):
        assert sent in interims
    for transcript in interims:  # no interim after its segment's final
        final_at = rec.events.index(
            (
                "transcript",
                Transcript(transcript.id, transcript.role, _final_text(rec, transcript.id), True),
            )
        )
        assert rec.events.index(("transcript", transcript)) < final_at
    # the agent left: reported once, with its identity, after the last final
    agent_left = [p for n, p in rec.events if n == "agentDisconnected"]
    assert agent_left == [AgentDisconnected("agent-ava")]
    names = rec.names()
    assert names[-2:] == ["stateChange", "ended"] and names.count("ended") == 1
    assert rec.errors == []
    # audio: the agent's tone reached the output
    heard = output.samples()
    assert len(heard) > 48_000 // 2
    assert dominant_hz(heard[-24_000:]) == pytest.approx(660.0, abs=10)


def delivered_finals(observer, agent: str) -> list[Transcript]:
    """One final per segment a plain subscriber saw: its final stream's text, or else the
    newest text it got (what a listener settles on when the final never arrives)."""
    texts: dict[str, tuple[str, str, bool]] = {}
    for stream in observer.streams:
        role = "agent" if stream.sender == agent else "user"
        if stream.segment_id in texts and texts[stream.segment_id][2]:
            continue
        texts[stream.segment_id] = (role, stream.text, stream.final)
    return [Transcript(sid, role, text, True) for sid, (role, text, _) in texts.items()]


def delivered_legacy_finals(observer, agent: str) -> list[Transcript]:
    """The same for legacy packets (each carries the segment's whole text so far)."""
    texts: dict[str, tuple[str, str, bool]] = {}
    for packet in observer.legacy:
        role = "agent" if packet.participant == agent else "user"
        if packet.segment_id in texts and texts[packet.segment_id][2]:
            continue
        texts[packet.segment_id] = (role, packet.text, packet.final)
    return [Transcript(sid, role, text, True) for sid, (role, text, _) in texts.items()]


def _by_id(transcript: Transcript) -> str:
    return transcript.id


def _final_text(rec, segment_id: str) -> str:
    return next(t.text for t in rec.finals if t.id == segment_id)


async def test_connect_resolves_once_subscribed_to_audio_already_published(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession
) -> None:
    room = "late-listener"
    await simulated_call(livekit_server, room, CallOptions(mode="tone", tone_hz=500.0, loop=True))
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, room))
    await session.connect()
    # every microphone published when the listener joined is subscribed and decoding
    published = [
        publication
        for participant in session._room.remote_participants.values()
        for publication in participant.track_publications.values()
        if publication.kind == rtc.TrackKind.KIND_AUDIO
    ]
    assert published and all(publication.subscribed for publication in published)
    assert session._audio.subscribed_count == len(published)
    await wait_for_level(session, above_dbfs=-30)  # decoding (on the media thread)
    assert session._audio.track_count == len(published)
    await session.connect()  # connected: returns at once
    assert rec.states == ["connecting", "connected"]


@pytest.mark.parametrize(
    ("stream", "legacy"),
    [(True, False), (False, True), (True, True)],
    ids=["streams-only", "legacy-only", "both"],
)
async def test_interim_and_final_rules_per_transcription_channel(
    livekit_server: LiveKitServer,
    simulated_call,
    call_observer,
    listen_session: MakeSession,
    stream: bool,
    legacy: bool,
) -> None:
    room = f"channels-{stream}-{legacy}"
    observer = await call_observer(livekit_server, room)
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, room))
    await session.connect()
    options = CallOptions(**SHORT, stream_transcription=stream, legacy_transcription=legacy)
    call = await simulated_call(livekit_server, room, options)
    await call.wait_ended()
    await rec.wait_until(lambda: "agentDisconnected" in rec.names())
    await asyncio.sleep(2.0)  # past the legacy hold, so held segments have been released
    finals = rec.finals
    # exactly one final per segment, never the same words twice
    assert len({t.id for t in finals}) == len(finals)
    assert len({(t.role, t.text) for t in finals}) == len(finals) == 4
    channel = "stream" if stream else "legacy"
    assert [t.id for t in finals] == [t.id for t in expected_finals(call, channel)]
    delivered = (
        delivered_finals(observer, "agent-ava")
        if stream
        else delivered_legacy_finals(observer, "agent-ava")
    )
    assert sorted(finals, key=_by_id) == sorted(delivered, key=_by_id)
    legacy_ids = {s.segment_id for s in call.sent_segments if s.channel == "legacy"}
    if stream:
        assert legacy_ids.isdisjoint(t.id for t in rec.transcripts)
    else:
        assert legacy_ids
    # interim text only ever grows into its final within a segment
    for transcript in rec.transcripts:
        final_text = _final_text(rec, transcript.id)
        assert final_text.startswith(transcript.text)


async def connected_to_a_tone(
    livekit_server: LiveKitServer,
    simulated_call: Any,
    listen_session: MakeSession,
    room: str,
    hz: float,
) -> tuple[ListenSession, RecordingOutput]:
    """A session connected to a call whose agent plays ``hz`` without end, its output kept."""
    await simulated_call(livekit_server, room, CallOptions(mode="tone", tone_hz=hz, loop=True))
    output = RecordingOutput()
    session, _ = listen_session(
        livekit_server.url, listener_token(livekit_server, room), output=output
    )
    await session.connect()
    return session, output


async def test_mute_and_start_audio_gate_the_output_not_the_meter(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession
) -> None:
    session, output = await connected_to_a_tone(
        livekit_server, simulated_call, listen_session, "mute", 700.0
    )
    await asyncio.sleep(0.5)
    assert output.frames == []  # nothing before start_audio()
    await session.start_audio()
    await asyncio.sleep(0.5)
    assert len(output.frames) > 10
    session.mute()
    assert session.is_muted() and output.flushes >= 1
    count = len(output.frames)
    mixed = session._audio.frames_mixed
    await asyncio.sleep(0.5)
    assert len(output.frames) == count  # muted: nothing more handed over
    assert session._audio.frames_mixed > mixed + 10 and session.level.peak_dbfs > -30
    session.unmute()
    await asyncio.sleep(0.5)
    assert len(output.frames) > count and not session.is_muted()
    assert dominant_hz(output.samples()[-9600:]) == pytest.approx(700.0, abs=10)


async def test_a_stalled_caller_loop_does_not_stall_the_heard_audio(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession
) -> None:
    # The dashboard's loop is also Textual's: a long paint or layout must not hold up
    # the heard call's frames (the output would run dry and click, a focus switch would
    # wait for it).  The frames are decoded and handed over on the media thread.
    session, output = await connected_to_a_tone(
        livekit_server, simulated_call, listen_session, "stalled-loop", 600.0
    )
    await session.start_audio()
    await wait_for_level(session, above_dbfs=-30)
    before = len(output.frames)
    time.sleep(0.5)  # noqa: ASYNC251 - the point: the loop does nothing else for 500 ms
    during = len(output.frames) - before
    assert during >= 30, f"{during} blocks handed over while the caller's loop was stalled"


async def test_bots_never_see_the_listener_and_the_listener_cannot_publish(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession
) -> None:
    room = "hidden"
    call = await simulated_call(livekit_server, room, CallOptions(mode="tone", loop=True))
    session, rec = listen_session(
        livekit_server.url, listener_token(livekit_server, room, identity="quiet-listener")
    )
    await session.connect()
    await rec.wait_until(lambda: len(rec.transcripts) >= 2)
    # the listener's own room has no publish rights: an attempt is refused
    local = session._room.local_participant
    assert not local.permissions.can_publish and not local.permissions.can_publish_data
    source = rtc.AudioSource(48_000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("sneaky-mic", source)
    with pytest.raises((PublishTrackError, TimeoutError)):
        await asyncio.wait_for(local.publish_track(track), 5)
    await source.aclose()
    # data is dropped by the server (no error locally): the bots must never get it
    with contextlib.suppress(Exception):
        await asyncio.wait_for(local.send_text("hello?", topic="lk.chat"), 5)
    await asyncio.sleep(1.0)
    for bot in (call.agent, call.caller):
        assert "quiet-listener" not in bot.seen_identities
        assert "quiet-listener" not in bot.seen_track_owners
        assert "quiet-listener" not in bot.data_senders
    listed = await _room_participants(livekit_server, room)
    assert "agent-ava" in listed  # the server lists the bots ...
    assert np.all(
        [identity != "quiet-listener" or hidden for identity, hidden in listed.items()]
    )  # ... and marks the listener hidden if it lists it at all


async def _room_participants(server: LiveKitServer, room: str) -> dict[str, bool]:
    from livekit import api

    http = server.url.replace("ws://", "http://")
    async with api.LiveKitAPI(http, server.api_key, server.api_secret) as lk:
        response = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return {p.identity: bool(p.permission.hidden) for p in response.participants}

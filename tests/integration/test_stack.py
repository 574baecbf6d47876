"""The demo stack and ``anyreach-tui simulate``: real livekit-server, emulator and calls."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from livekit import api, rtc
from livekit.rtc.participant import PublishTrackError

from tests.fixtures.anyreach import StackFactory
from tui.anyreach import (
    AnyreachClient,
    ConversationNotActive,
    ConversationNotFound,
)
from tui.demo.calls import CallOptions, SimulatedCall
from tui.demo.stack import DemoStack, StackCall

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

PROJECT = Path(__file__).resolve().parents[2]
# Short, silent-caller calls: the agent plays a pure tone, the script is cut short.
TONE = CallOptions(mode="tone", tone_hz=660.0, time_scale=0.3, max_lines=4)


async def eventually(predicate: Callable[[], bool], within: float) -> None:
    """Poll a bot's state (bots offer no events for these) until ``predicate()`` holds."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.05)


def goertzel_power(samples: np.ndarray, frequency: float, rate: int = 48_000) -> float:
    """Signal power at ``frequency`` (one Goertzel bin over the whole window)."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s_prev = s_prev2 = 0.0
    for x in samples.astype(np.float64) / 32768.0:
        s = x + coefficient * s_prev - s_prev2
        s_prev2, s_prev = s_prev, s
    return s_prev2**2 + s_prev**2 - coefficient * s_prev * s_prev2


@pytest.mark.timeout(90, method="thread")
@pytest.mark.slow
async def test_a_call_drives_its_conversation_through_the_telephone_lifecycle(
    demo_stack: StackFactory,
) -> None:
    seen: list[str] = []
    stack = await demo_stack(
        call_options=TONE,
        dial_delay=1.0,
        on_call_event=lambda event, call: seen.append(event),
    )
    entry = stack.start_call("support", options=TONE)
    assert entry.status == "triggered"
    async with AnyreachClient(stack.api_url, stack.api_key) as client:
        # Dialling: active, listed, but no room to listen to yet.
        assert [c.id for c in await client.active_conversations()] == [entry.conversation_id]
        with pytest.raises(ConversationNotFound):
            await client.listener_token(entry.conversation_id)

        await stack.wait_in_progress(1)
        grant = await client.listener_token(entry.conversation_id)
        assert grant.room_name == entry.room_name
        assert grant.url == stack.livekit_url

        await stack.wait_for(lambda: entry.finished)
        assert await client.active_conversations() == []
        with pytest.raises(ConversationNotActive):
            await client.listener_token(entry.conversation_id)
    statuses = [e for e in seen if e in ("ringing", "in_progress", "completed")]
    assert statuses == ["ringing", "in_progress", "completed"]
    conversation = stack.emulator.conversation(entry.conversation_id)
    assert conversation.status == "completed" and conversation.duration is not None


@pytest.mark.timeout(90, method="thread")
@pytest.mark.slow
async def test_a_web_call_goes_from_token_created_to_in_progress(
    demo_stack: StackFactory,
) -> None:
    stack = await demo_stack(call_options=TONE)
    entry = stack.start_call("support", channel="webrtc", options=TONE)
    assert entry.status == "token_created" and entry.caller.startswith("guest_")
    await stack.wait_in_progress(1)
    await stack.wait_for(lambda: entry.finished)
    assert stack.emulator.conversation(entry.conversation_id).status == "completed"


@pytest.mark.timeout(90, method="thread")
@pytest.mark.slow
async def test_the_agent_leaving_early_ends_the_conversation(demo_stack: StackFactory) -> None:
    stack = await demo_stack(call_options=TONE)
    entry = stack.start_call("agent_leaves_early", options=TONE)
    await stack.wait_for(lambda: entry.finished)
    assert entry.status == "completed"
    assert entry.call is not None and "agent_left" in entry.call.events


@pytest.mark.timeout(120, method="thread")
@pytest.mark.slow
async def test_a_listener_with_the_minted_token_hears_the_call_and_cannot_publish(
    demo_stack: StackFactory,
) -> None:
    stack = await demo_stack()
    entry = stack.start_call("support", options=CallOptions(mode="tone", tone_hz=660.0, loop=True))
    await stack.wait_in_progress(1)
    async with AnyreachClient(stack.api_url, stack.api_key) as client:
        grant = await client.listener_token(entry.conversation_id)

    received: list[np.ndarray] = []
    enough = asyncio.Event()
    streams: list[rtc.AudioStream] = []
    pumps: set[asyncio.Task[None]] = set()
    room = rtc.Room()

    def on_track(track: rtc.Track, _pub: object, participant: rtc.RemoteParticipant) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or participant.identity != "agent-ava":
            return
        stream = rtc.AudioStream(track, sample_rate=48_000, num_channels=1)
        streams.append(stream)

        async def pump() -> None:
            async for event in stream:
                received.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
                if sum(len(chunk) for chunk in received) >= 48_000:
                    enough.set()

        task = asyncio.create_task(pump())
        pumps.add(task)

    room.on("track_subscribed", on_track)
    witness, sender = rtc.Room(), rtc.Room()
    try:
        await room.connect(grant.url, grant.token)
        me = room.local_participant
        assert me.permissions.can_subscribe and me.permissions.hidden
        assert not me.permissions.can_publish and not me.permissions.can_publish_data

        await asyncio.wait_for(enough.wait(), 30)
        audio = np.concatenate(received)[-48_000:]  # the last second heard
        tone, other = goertzel_power(audio, 660.0), goertzel_power(audio, 440.0)
        assert tone > 1000 * other  # the agent's 660 Hz tone, not noise
        assert np.abs(audio).max() > 1000  # and well above silence

        # Invisible to the call: the agent does not see the listener.
        assert entry.call is not None and entry.call.agent.room is not None
        assert me.identity not in entry.call.agent.room.remote_participants

        # The server refuses a microphone from the listener...
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("whisper", source)
        with pytest.raises(PublishTrackError):
            await me.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            )
        await source.aclose()
        # ...and drops its data: a witness gets a packet sent by a regular participant,
        # never the listener's (checked by payload: a hidden sender may be unnamed).
        payloads: list[bytes] = []
        witness.on("data_received", lambda packet: payloads.append(bytes(packet.data)))
        await witness.connect(grant.url, _token(stack, "witness", grant.room_name))
        await sender.connect(grant.url, _token(stack, "sender", grant.room_name))
        async with asyncio.timeout(15):
            while b"hello" not in payloads:
                await me.publish_data(b"barge-in", reliable=True)
                await sender.local_participant.publish_data(b"hello", reliable=True)
                await asyncio.sleep(0.3)
        await me.publish_data(b"barge-in", reliable=True)
        await sender.local_participant.publish_data(b"hello", reliable=True)
        await eventually(lambda: payloads.count(b"hello") >= 2, 15)
        assert b"barge-in" not in payloads
    finally:
        for stream in streams:
            await stream.aclose()
        for task in pumps:
            task.cancel()
        await sender.disconnect()
        await witness.disconnect()
        await room.disconnect()


def _token(stack: DemoStack, identity: str, room_name: str) -> str:
    """A regular participant's token (may publish data)."""
    return (
        api.AccessToken(stack.server.api_key, stack.server.api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .to_jwt()
    )


@pytest.mark.timeout(180, method="thread")
@pytest.mark.slow
async def test_a_server_drop_is_not_a_leave(demo_stack: StackFactory) -> None:
    stack = await demo_stack()
    entry = stack.start_call("support", options=CallOptions(mode="tone", loop=True))
    await stack.wait_in_progress(1)
    assert entry.call is not None
    agent = entry.call.agent

    joins_before = agent.joins
    stack.server.kill()  # as a crash: rooms and participants are gone
    assert entry.status == "in_progress"
    async with AnyreachClient(stack.api_url, stack.api_key) as client:
        # Still active while the server is away: a token can be minted to reconnect.
        assert (await client.listener_token(entry.conversation_id)).room_name == entry.room_name

        await asyncio.to_thread(stack.server.start)
        # Back either by a fresh join or by the rtc layer's own reconnect (its ICE retries
        # can take a while on a loaded machine).
        await eventually(
            lambda: (agent.joins > joins_before or agent.reconnects >= 1) and agent.connected,
            100,
        )
        assert entry.status == "in_progress"
        assert stack.emulator.conversation(entry.conversation_id).status == "in_progress"
        assert [c.id for c in await client.active_conversations()] == [entry.conversation_id]


@pytest.mark.timeout(120, method="thread")
@pytest.mark.slow
async def test_calls_keep_coming_and_going(demo_stack: StackFactory) -> None:
    stack = await demo_stack(
        calls=2,
        call_options=CallOptions(mode="tone", time_scale=0.2, max_lines=2),
        scenarios=["support"],
        dial_delay=0.2,
        pause_between_calls=0.2,
    )
    await stack.wait_for(lambda: sum(c.finished for c in stack.calls) >= 2)
    await stack.wait_for(lambda: len(stack.active_calls) == 2)
    assert len(stack.calls) >= 4
    assert len({c.conversation_id for c in stack.calls}) == len(stack.calls)
    assert len({c.room_name for c in stack.calls if c.room_name}) == len(
        [c for c in stack.calls if c.room_name]
    )


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            found.append((int(entry.name), name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(120, method="thread")
@pytest.mark.slow
def test_simulate_prints_api_url_and_key_first_and_stops_everything_on_sigint() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.commands.main", "simulate", "--calls", "1", "--tone"],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "0"},
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("api_url: http://127.0.0.1:"), first
        assert second.startswith("api_key: ak_"), second
        api_url, api_key = first.split(": ", 1)[1].strip(), second.split(": ", 1)[1].strip()
        int(api_url.rsplit(":", 1)[1])

        # Running: the key works against the printed URL and livekit-server is up.
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Simulating calls"):
                break
        servers = [pid for pid, name in _children(proc.pid) if name == "livekit-server"]
        assert len(servers) == 1, lines

        async def listed() -> int:
            async with AnyreachClient(api_url, api_key) as client:
                return len([c async for c in client.conversations()])

        assert asyncio.run(listed()) >= 1

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not _alive(servers[0])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stack_repr_shows_no_key() -> None:
    stack = DemoStack(calls=0)
    assert stack.api_key.startswith("ak_")
    assert stack.api_key not in repr(stack)
    # Where to connect, and nothing else: no API key, no LiveKit key or secret.
    assert repr(stack) == f"DemoStack(api_url={stack.api_url!r}, livekit_url={stack.livekit_url!r})"
    # A call's repr, bots and all, names its room but not the LiveKit secret its bots sign with.
    server = stack.server
    call = SimulatedCall(server.url, server.api_key, "s3cr3t-" + "x" * 32, "room-r")
    shown = repr(StackCall("c", "telephone", "support", "+1555", "room-r", call))
    assert "room-r" in shown and "s3cr3t-" not in shown and stack.api_key not in shown

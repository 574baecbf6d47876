"""Connect/end lifecycle of a listen session against a real livekit-server, and bad input."""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from livekit import api, rtc
from livekit.rtc._ffi_client import FfiClient

from tests.fixtures.listen import MakeSession, listener_token
from tui.demo.calls import CallOptions
from tui.demo.livekit_server import LiveKitServer
from tui.listen import SessionClosedError, SessionError, Transcript

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections (kernel backlog) but never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


def ffi_subscribers() -> int:
    return len(FfiClient.instance.queue._subscribers)


@pytest.mark.slow
async def test_two_concurrent_connects_are_one_operation(
    livekit_server: LiveKitServer, listen_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    native_connects = 0
    original = rtc.Room.connect

    async def counted(self: rtc.Room, *args: object, **kwargs: object) -> None:
        nonlocal native_connects
        native_connects += 1
        await original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rtc.Room, "connect", counted)
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, "twice"))
    first = asyncio.create_task(session.connect())
    second = asyncio.create_task(session.connect())
    await asyncio.gather(first, second)
    await session.connect()  # connected: returns at once, no new attempt
    assert native_connects == 1
    assert rec.states == ["connecting", "connected"]


@pytest.mark.slow
async def test_server_that_never_answers_rejects_connect_near_the_timeout(
    silent_server: str, listen_session: MakeSession
) -> None:
    session, rec = listen_session(
        silent_server, listener_token(("k", "s" * 32), "r"), connect_timeout=2.0
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    concurrent = asyncio.create_task(session.connect())
    with pytest.raises(SessionError) as failure:
        await asyncio.wait_for(session.connect(), 2.0 + 3.0)  # bounded: nothing hangs
    assert loop.time() - started >= 2.0 - 0.05  # it waited out the caller's deadline
    with pytest.raises(SessionError):
        await concurrent  # the in-flight operation rejected for both callers
    assert "did not let the listener join within 2 s" in failure.value.message
    assert rec.errors == [failure.value.message]
    assert rec.states == ["connecting", "disconnected"]
    with pytest.raises(SessionClosedError):
        await session.connect()  # single-use
    # the native connect was never cancelled: it finishes on its own and the process lives
    await session.end()
    await asyncio.wait_for(session.closed, 40)
    assert session._native_connect is not None and session._native_connect.done()


def token_signed(key: str, secret: str, room: str, ttl: timedelta) -> str:
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_subscribe=True,
        can_publish=False,
        can_publish_data=False,
        hidden=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            api.AccessToken(key, secret)
            .with_identity("l")
            .with_grants(grants)
            .with_ttl(ttl)
            .to_jwt()
        )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("malformed-url", "malformed", marks=pytest.mark.slow),
        pytest.param("not-websocket-url", "must start with wss://", marks=pytest.mark.slow),
        pytest.param("expired-token", "expired", marks=pytest.mark.slow),
        pytest.param("other-key", "signed with a different key", marks=pytest.mark.slow),
        ("server-down", "connection refused"),
        pytest.param("garbage-token", "rejected the listener token", marks=pytest.mark.slow),
    ],
)
async def test_bad_input_gives_a_readable_error_and_a_rejected_connect(
    livekit_server: LiveKitServer, listen_session: MakeSession, case: str, expected: str
) -> None:
    url, key, secret = livekit_server.url, livekit_server.api_key, livekit_server.api_secret
    ttl = timedelta(minutes=5)
    token = token_signed(key, secret, "bad", ttl)
    if case == "malformed-url":
        url = "http://[::1"
    elif case == "not-websocket-url":
        url = "ftp://127.0.0.1/"
    elif case == "expired-token":
        token = token_signed(key, secret, "bad", timedelta(seconds=-60))
    elif case == "other-key":
        token = token_signed(key, "another-secret-of-another-project!", "bad", ttl)
    elif case == "server-down":
        url = closed_port_url()
    elif case == "garbage-token":
        token = "not-a-token"
    session, rec = listen_session(url, token, connect_timeout=5.0)
    with pytest.raises(SessionError) as failure:
        await asyncio.wait_for(session.connect(), 10)
    message = failure.value.message
    assert expected in message
    assert rec.errors == [message]  # one error event, same words
    assert token not in message and "eyJ" not in message and token not in repr(session)
    assert rec.states == ["connecting", "disconnected"]
    with pytest.raises(SessionClosedError, match="already failed"):
        await session.connect()


async def test_end_returns_within_its_bound_while_the_server_is_frozen(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession
) -> None:
    room = "frozen"
    await simulated_call(livekit_server, room, CallOptions(mode="tone", loop=True))
    session, rec = listen_session(
        livekit_server.url, listener_token(livekit_server, room), end_timeout=1.0
    )
    await session.connect()
    await rec.wait_until(lambda: bool(rec.transcripts))
    livekit_server.freeze()
    try:
        # The bound is the contract: end() may not wait on a server that answers nothing.
        await asyncio.wait_for(session.end(), 1.0 + 1.5)
        assert rec.names().count("ended") == 1 and session.get_state() == "disconnected"
        await session.end()  # idempotent
        assert rec.names().count("ended") == 1
    finally:
        livekit_server.thaw()
    await asyncio.wait_for(session.closed, 40)  # the room disconnect finished in the background
    with pytest.raises(SessionClosedError, match="ended"):
        await session.connect()


@pytest.mark.slow
async def test_end_while_connecting_rejects_connect_without_an_error_event(
    silent_server: str, listen_session: MakeSession
) -> None:
    session, rec = listen_session(silent_server, listener_token(("k", "s" * 32), "r"))
    connecting = asyncio.create_task(session.connect())
    await asyncio.sleep(0.3)
    await asyncio.wait_for(session.end(), 3.0 + 1.0)
    with pytest.raises(SessionError, match="ended before it finished connecting"):
        await connecting
    assert rec.errors == []
    assert rec.names() == ["stateChange", "stateChange", "ended"]
    assert rec.states == ["connecting", "disconnected"]
    await asyncio.wait_for(session.closed, 40)


@pytest.mark.slow
async def test_nothing_leaks_once_teardown_has_finished(
    livekit_server: LiveKitServer, simulated_call, listen_session: MakeSession
) -> None:
    baseline_tasks = asyncio.all_tasks()
    baseline_subscribers = ffi_subscribers()
    room = "leaks"
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, room))
    await session.connect()
    slow_seen: list[str] = []

    async def slow_handler(transcript: Transcript) -> None:
        await asyncio.sleep(0.05)
        slow_seen.append(transcript.text)

    session.on("transcript", slow_handler)
    call = await simulated_call(
        livekit_server, room, CallOptions(mode="tone", loop=True, time_scale=0.25)
    )
    await rec.wait_until(lambda: len(rec.finals) >= 2)
    assert session._audio.track_count == 2  # both microphones were being decoded
    await call.stop()  # bots gone: whatever is left running is the session's
    await session.end()
    await asyncio.wait_for(session.closed, 20)
    await asyncio.sleep(0.2)  # let finished tasks be collected by the loop
    leftovers = asyncio.all_tasks() - baseline_tasks - {asyncio.current_task()}
    assert leftovers == set()
    assert session._feed.open_streams == 0 and session._audio.track_count == 0
    assert session._room is not None and session._room._text_stream_readers == {}
    assert ffi_subscribers() == baseline_subscribers  # every room/stream/reader unsubscribed
    assert slow_seen  # async handlers ran, and were finished before closed resolved


@pytest.mark.slow
async def test_stream_cut_off_mid_segment_yields_one_final_with_the_partial_text(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    room = "cut-off"
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, room))
    await session.connect()
    agent = rtc.Room()
    grants = api.VideoGrants(
        room_join=True, room=room, can_publish=True, can_publish_data=True, can_subscribe=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = (
            api.AccessToken(livekit_server.api_key, livekit_server.api_secret)
            .with_identity("raw-agent")
            .with_kind("agent")
            .with_grants(grants)
            .to_jwt()
        )
    await agent.connect(livekit_server.url, token)
    try:
        # the server announces a participant once its media connection is up
        await asyncio.wait_for(_until(lambda: "raw-agent" in session._room.remote_participants), 15)
        writer = await agent.local_participant.stream_text(
            topic="lk.transcription",
            attributes={"lk.segment_id": "SG_cut000000001", "lk.transcription_final": "false"},
        )
        await writer.write("Let me check")
        await writer.write(" your acc")
        await rec.wait_until(
            lambda: any(t.text == "Let me check your acc" for t in rec.transcripts)
        )
    finally:
        await agent.disconnect()  # the writer is never closed: the stream breaks
    await rec.wait_until(lambda: "agentDisconnected" in rec.names() and bool(rec.finals), 8)
    await asyncio.sleep(0.5)
    assert rec.finals == [Transcript("SG_cut000000001", "agent", "Let me check your acc", True)]
    await session.end()
    assert len(rec.finals) == 1  # end() does not settle it a second time


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - SDK state, no event to wait on
        await asyncio.sleep(0.05)

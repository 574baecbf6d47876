"""The listen session's connect deadline, against a real livekit-server and a silent port.

- ``listen()`` with its default arguments gives up at 15 s (± 1 s) on a server that
  never answers, with words that say so (a TCP port that accepts and never replies,
  and a livekit-server frozen with SIGSTOP).
- "Joined, but no audio arrived" (tui/listen/session.py): ``connect()`` resolves once
  the audio tracks present at join are subscribed (the SDK contract: "resolves once
  subscribed").  A participant who publishes no audio leaves nothing to wait for, so
  connect resolves at once; an audio track that cannot be subscribed (its publisher
  allows nobody to) fails connect at the deadline with its own message; a track
  withdrawn while connect waits for it is no longer waited for.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from livekit import api, rtc

from tests.fixtures.listen import MakeSession, listener_token
from tui.demo.livekit_server import LiveKitServer
from tui.listen import SessionError

pytestmark = [
    pytest.mark.timeout(120),
    # RoomService requests sign with --dev's short secret; PyJWT warns about it.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

DEFAULT_CONNECT_TIMEOUT_S = 15.0  # the SDK's promise, and listen()'s default
SLACK_S = 1.0
LISTENER = "timeout-listener"
PUBLISHER = "publisher"


async def timed_failure(
    connecting: asyncio.Future[None], started: float, within: float
) -> tuple[float, str]:
    """Seconds from ``started`` (loop time) until ``connecting`` (a ``connect()``) failed
    with a SessionError, and why."""
    loop = asyncio.get_running_loop()
    with pytest.raises(SessionError) as failure:
        await asyncio.wait_for(connecting, within)  # bounded: a hang fails the test
    return loop.time() - started, failure.value.message


@pytest.mark.slow
async def test_default_connect_gives_up_at_15_s_on_a_port_that_never_answers(
    silent_port: str, listen_session: MakeSession
) -> None:
    session, rec = listen_session(silent_port, listener_token(("k", "s" * 32), "r"))
    started = asyncio.get_running_loop().time()
    elapsed, message = await timed_failure(
        asyncio.ensure_future(session.connect()), started, DEFAULT_CONNECT_TIMEOUT_S + 5
    )
    print(f"default connect timeout, silent port: {elapsed:.3f} s")
    assert abs(elapsed - DEFAULT_CONNECT_TIMEOUT_S) <= SLACK_S, elapsed
    host = silent_port.removeprefix("ws://")
    assert message == (f"The LiveKit server at {host} did not let the listener join within 15 s.")
    assert rec.errors == [message]
    assert rec.states == ["connecting", "disconnected"]


@pytest.mark.slow
async def test_default_connect_gives_up_at_15_s_on_a_frozen_livekit_server(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, "frozen"))
    livekit_server.freeze()
    try:
        started = asyncio.get_running_loop().time()
        elapsed, message = await timed_failure(
            asyncio.ensure_future(session.connect()), started, DEFAULT_CONNECT_TIMEOUT_S + 5
        )
    finally:
        livekit_server.thaw()  # the native connect, never cancelled, may then finish
    print(f"default connect timeout, frozen livekit-server: {elapsed:.3f} s")
    assert abs(elapsed - DEFAULT_CONNECT_TIMEOUT_S) <= SLACK_S, elapsed
    assert "did not let the listener join within 15 s" in message
    assert rec.errors == [message]
    assert rec.states == ["connecting", "disconnected"]
    await session.end()
    await asyncio.wait_for(session.closed, 40)
    # Whatever the native connect did once thawed, the listener is not left in the room.
    assert LISTENER not in await identities(livekit_server, "frozen")


# -- joined, but no audio ----------------------------------------------------------------


@dataclass
class Publisher:
    room: rtc.Room
    track_sid: str | None  # the audio track it published, if any
    source: rtc.AudioSource | None


@asynccontextmanager
async def publisher_in(
    server: LiveKitServer, room_name: str, *, audio: bool, subscribable: bool = True
) -> AsyncIterator[Publisher]:
    """A participant in the room; with ``audio``, it publishes a microphone track
    (``subscribable=False``: it allows nobody to subscribe to its tracks)."""
    grants = api.VideoGrants(room_join=True, room=room_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # --dev's short secret makes PyJWT warn
        token = (
            api.AccessToken(server.api_key, server.api_secret)
            .with_identity(PUBLISHER)
            .with_grants(grants)
            .to_jwt()
        )
    room = rtc.Room()
    await room.connect(server.url, token)
    source = rtc.AudioSource(48_000, 1) if audio else None
    track_sid = None
    try:
        if source is not None:
            if not subscribable:
                room.local_participant.set_track_subscription_permissions(
                    allow_all_participants=False
                )
            track = rtc.LocalAudioTrack.create_audio_track("mic", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            publication = await room.local_participant.publish_track(track, options)
            track_sid = publication.sid
        yield Publisher(room, track_sid, source)
    finally:
        await room.disconnect()
        if source is not None:
            await source.aclose()  # only once its room is gone


async def identities(server: LiveKitServer, room_name: str) -> set[str]:
    """Who livekit-server says is in the room (hidden participants included)."""
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        answer = await lk.room.list_participants(api.ListParticipantsRequest(room=room_name))
    return {p.identity for p in answer.participants}


async def until_in_room(
    server: LiveKitServer, room_name: str, identity: str, within: float
) -> None:
    async with asyncio.timeout(within):
        while identity not in await identities(server, room_name):  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.05)


async def until_gone(server: LiveKitServer, room_name: str, identity: str, within: float) -> None:
    async with asyncio.timeout(within):
        while identity in await identities(server, room_name):  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.05)


async def test_a_participant_without_audio_leaves_nothing_to_wait_for_connect_resolves(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    timeout = 5.0
    async with publisher_in(livekit_server, "no-track", audio=False):
        session, rec = listen_session(
            livekit_server.url,
            listener_token(livekit_server, "no-track", LISTENER),
            connect_timeout=timeout,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(session.connect(), timeout + 2)
        elapsed = loop.time() - started
        assert elapsed < timeout / 2, elapsed  # it did not wait out the deadline
        assert session.get_state() == "connected"
        assert rec.states == ["connecting", "connected"] and rec.errors == []
        assert await identities(livekit_server, "no-track") == {PUBLISHER, LISTENER}


async def test_an_audio_track_that_cannot_be_subscribed_fails_connect_at_its_deadline(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    timeout = 3.0
    async with publisher_in(livekit_server, "no-audio", audio=True, subscribable=False):
        session, rec = listen_session(
            livekit_server.url,
            listener_token(livekit_server, "no-audio", LISTENER),
            connect_timeout=timeout,
        )
        started = asyncio.get_running_loop().time()
        connecting = asyncio.ensure_future(session.connect())
        # It did join (the words say "Joined"): the server lists it while it waits.
        await until_in_room(livekit_server, "no-audio", LISTENER, timeout)
        assert session.get_state() == "connecting"
        elapsed, message = await timed_failure(connecting, started, timeout + 3)
        assert timeout - 0.05 <= elapsed <= timeout + SLACK_S, elapsed
        assert message == "Joined the call, but its audio did not arrive within 3 s."
        assert rec.errors == [message]
        assert rec.states == ["connecting", "disconnected"]
        # A failed connect leaves the room by itself.
        await until_gone(livekit_server, "no-audio", LISTENER, 5)
        assert await identities(livekit_server, "no-audio") == {PUBLISHER}


async def test_a_track_withdrawn_while_connect_waits_for_it_is_no_longer_waited_for(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    timeout = 8.0
    async with publisher_in(
        livekit_server, "withdrawn", audio=True, subscribable=False
    ) as publisher:
        session, rec = listen_session(
            livekit_server.url,
            listener_token(livekit_server, "withdrawn", LISTENER),
            connect_timeout=timeout,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        connecting = asyncio.ensure_future(session.connect())
        await until_in_room(livekit_server, "withdrawn", LISTENER, timeout)
        await asyncio.sleep(0.5)
        assert not connecting.done()  # waiting for the track it cannot subscribe to
        assert publisher.track_sid is not None
        await publisher.room.local_participant.unpublish_track(publisher.track_sid)
        await asyncio.wait_for(connecting, timeout)
        assert loop.time() - started < timeout - 2, "it waited out the deadline"
        assert session.get_state() == "connected"
        assert rec.states == ["connecting", "connected"] and rec.errors == []

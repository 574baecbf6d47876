"""The token guard against the real stack: a listener token from the emulator that would
let the dashboard publish or be seen is refused before anything joins.

"Nothing joined" is asked of livekit-server itself (RoomService ListParticipants):
the identity the emulator minted into the unsafe token never shows up in the room,
while the identity of the safe token minted afterwards does.
"""

from __future__ import annotations

import asyncio
import io
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from livekit import api, rtc

from tests.fixtures.anyreach import FAST_RETRY
from tui.anyreach import AnyreachClient, ListenerGrant
from tui.commands import tail
from tui.commands.exit_codes import ExitCode
from tui.core.backoff import Backoff
from tui.demo.emulator import ApiEmulator
from tui.demo.livekit_server import LiveKitServer
from tui.listen import check_listener_token
from tui.monitor.follow import (
    CallFollower,
    Ended,
    FollowEvent,
    FollowPolicy,
    Session,
    SessionFailed,
    StateChanged,
    listen_session,
)
from tui.monitor.model import Dashboard
from tui.monitor.monitor import Monitor

pytestmark = [
    pytest.mark.timeout(120),
    # RoomService requests sign with --dev's short secret; PyJWT warns about it.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

# The dashboard's way: keep trying while the call is active (a refusal still ends it).
PATIENT = FollowPolicy(patience_s=None, backoff=lambda: Backoff(initial=0.2, maximum=1.0))
CALLER = "caller-present"
# How long the room is watched for a listener that should never come.
WATCH_S = 1.5


class Recorded:
    def __init__(self) -> None:
        self.events: list[FollowEvent] = []

    def __call__(self, event: FollowEvent) -> None:
        self.events.append(event)

    def states(self) -> list[str]:
        return [e.state for e in self.events if isinstance(e, StateChanged)]


class KeptTokens:
    """The real client; keeps every grant it handed out, to look for the token in words."""

    def __init__(self, client: AnyreachClient) -> None:
        self.client = client
        self.grants: list[ListenerGrant] = []

    async def listener_token(self, conversation_id: str) -> ListenerGrant:
        grant = await self.client.listener_token(conversation_id)
        self.grants.append(grant)
        return grant


class Opened:
    """A session opener that counts the sessions it opened (real ones)."""

    def __init__(self) -> None:
        self.grants: list[ListenerGrant] = []

    def __call__(self, grant: ListenerGrant) -> Session:
        self.grants.append(grant)
        return listen_session(grant)


@pytest.fixture
async def client(api_emulator_live: ApiEmulator) -> AsyncIterator[AnyreachClient]:
    client = AnyreachClient(
        api_emulator_live.url, api_emulator_live.admin_key, retries=FAST_RETRY, timeout=2.0
    )
    yield client
    await client.aclose()


@asynccontextmanager
async def someone_in(server: LiveKitServer, room_name: str) -> AsyncIterator[rtc.Room]:
    """A participant in the room (so the room exists), publishing nothing."""
    grants = api.VideoGrants(room_join=True, room=room_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # --dev's short secret makes PyJWT warn
        token = (
            api.AccessToken(server.api_key, server.api_secret)
            .with_identity(CALLER)
            .with_grants(grants)
            .to_jwt()
        )
    room = rtc.Room()
    await room.connect(server.url, token)
    try:
        yield room
    finally:
        await room.disconnect()


async def run_until_it_ends(follower: CallFollower, within: float = 10.0) -> Ended:
    """Run ``follower``; if it is still following after ``within`` s, stop it and fail."""
    run = asyncio.create_task(follower.run())
    done, _ = await asyncio.wait({run}, timeout=within)
    if not done:
        await follower.stop()
        await asyncio.wait({run}, timeout=5)
        pytest.fail(f"still following after {within:g} s (so it joined?): {follower.session}")
    return run.result()


async def identities(server: LiveKitServer, room_name: str) -> set[str]:
    """Who livekit-server says is in the room (hidden participants included)."""
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        answer = await lk.room.list_participants(api.ListParticipantsRequest(room=room_name))
    return {p.identity for p in answer.participants}


async def never_in_room(server: LiveKitServer, room_name: str, identity: str) -> set[str]:
    """Ask the server for WATCH_S that ``identity`` is not in the room; who was there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WATCH_S
    seen: set[str] = set()
    while loop.time() < deadline:
        present = await identities(server, room_name)
        assert identity not in present, f"{identity} joined the room: {present}"
        seen |= present
        await asyncio.sleep(0.1)
    return seen


async def until_in_room(server: LiveKitServer, room_name: str, identity: str) -> set[str]:
    async with asyncio.timeout(20):
        while identity not in (present := await identities(server, room_name)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return present


UNSAFE: list[Any] = [
    pytest.param({"hidden": False}, "hidden", id="hidden-false"),
    pytest.param({"hidden": None}, "hidden", id="hidden-missing"),
    pytest.param({"can_publish": True}, "canPublish", id="canPublish-true"),
    pytest.param(
        {"can_publish": None, "can_publish_data": None}, "canPublish", id="canPublish-missing"
    ),
    pytest.param({"can_publish_data": True}, "canPublishData", id="canPublishData-true"),
    pytest.param({"room_join": None}, "roomJoin", id="roomJoin-missing"),
]


@pytest.mark.parametrize(("overrides", "named"), UNSAFE)
async def test_an_unsafe_token_is_refused_before_joining_and_a_safe_one_then_joins(
    livekit_server: LiveKitServer,
    api_emulator_live: ApiEmulator,
    client: AnyreachClient,
    overrides: dict[str, Any],
    named: str,
) -> None:
    room_name = "guard-room"
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name=room_name)
    async with someone_in(livekit_server, room_name):
        api_emulator_live.unsafe_grants(1, **overrides)
        tokens, opened, events = KeptTokens(client), Opened(), Recorded()
        follower = CallFollower(
            conversation.id, tokens, events, policy=PATIENT, open_session=opened
        )
        ended = await run_until_it_ends(follower)

        (failed,) = [e for e in events.events if isinstance(e, SessionFailed)]
        message = failed.message
        assert ended == Ended("refused", message)
        assert events.events == [failed, ended]  # no session state: nothing was opened
        assert opened.grants == [] and follower.joins == 0
        assert message.startswith("Refused the listener token: ")
        assert f"({named} is" in message and message.endswith("ask Anyreach support.")
        (unsafe,) = tokens.grants
        assert unsafe.token not in message
        assert all(part not in message for part in unsafe.token.split("."))
        unsafe_identity = api_emulator_live.minted[-1].identity
        assert await never_in_room(livekit_server, room_name, unsafe_identity) == {CALLER}

        # The fault was for one token: a new follower gets a safe one and joins.
        events = Recorded()
        follower = CallFollower(
            conversation.id, tokens, events, policy=PATIENT, open_session=opened
        )
        run = asyncio.create_task(follower.run())
        try:
            async with asyncio.timeout(20):
                while "connected" not in events.states():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            safe_identity = api_emulator_live.minted[-1].identity
            present = await until_in_room(livekit_server, room_name, safe_identity)
            assert safe_identity != unsafe_identity
            assert present == {CALLER, safe_identity}
            assert len(opened.grants) == 1 and follower.joins == 1
        finally:
            await follower.stop()
        assert await asyncio.wait_for(run, 10) == Ended("stopped")
        assert not any(isinstance(e, SessionFailed) for e in events.events)


async def test_the_dashboard_pane_says_why_in_words_and_nothing_joins(
    livekit_server: LiveKitServer, api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    room_name = "guard-pane"
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name=room_name)
    async with someone_in(livekit_server, room_name):
        api_emulator_live.unsafe_grants(1, hidden=False, can_publish=True)
        dashboard = Dashboard()
        monitor = Monitor(dashboard, client, discovery=False)
        monitor.start()
        try:
            call = dashboard.add_call(conversation.id)
            async with asyncio.timeout(10):
                while monitor.followers[conversation.id].ended is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            badge = call.badge.text
            assert badge.startswith("Refused the listener token: it would let this dashboard")
            assert "(hidden is false)" in badge and "(canPublish is true)" in badge
            assert monitor.followers[conversation.id].ended == Ended("refused", badge)
            identity = api_emulator_live.minted[-1].identity
            assert await never_in_room(livekit_server, room_name, identity) == {CALLER}
            assert len(api_emulator_live.minted) == 1  # refused once: not asked again
        finally:
            await monitor.aclose()


async def test_tail_writes_the_refusal_as_an_error_line_and_fails_with_no_room(
    livekit_server: LiveKitServer, api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    room_name = "guard-tail"
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name=room_name)
    async with someone_in(livekit_server, room_name):
        api_emulator_live.unsafe_grants(1, can_publish_data=True)
        stdout = io.StringIO()
        follower = tail.follow(client, conversation.id, tail.JsonLines(stdout), None)
        ended = await asyncio.wait_for(tail.follow_until_stopped(follower, asyncio.Event()), 10)
        lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
        assert [line["event"] for line in lines] == ["error", "ended"]
        assert lines[0]["message"] == ended.message
        assert "(canPublishData is true)" in lines[0]["message"]
        with pytest.raises(tail.TailFailure) as failure:
            tail.exit_for(ended)
        assert failure.value.code is ExitCode.NO_ROOM
        assert failure.value.message == ended.message
        identity = api_emulator_live.minted[-1].identity
        assert await never_in_room(livekit_server, room_name, identity) == {CALLER}


async def test_the_emulator_hook_changes_exactly_the_next_n_tokens(
    api_emulator: ApiEmulator, make_client: Any
) -> None:
    client: AnyreachClient = make_client()
    conversation = api_emulator.create_conversation(status="in_progress", room_name="hook")
    with pytest.raises(ValueError, match="not VideoGrants fields"):
        api_emulator.unsafe_grants(1, invisible=True)
    api_emulator.unsafe_grants(2, hidden=False)
    refusals = [
        check_listener_token((await client.listener_token(conversation.id)).token) for _ in range(3)
    ]
    assert [r is not None and "(hidden is false)" in r for r in refusals] == [True, True, False]
    assert refusals[2] is None
    api_emulator.unsafe_grants(5, can_publish=True)
    api_emulator.clear_faults()  # clears these too
    assert check_listener_token((await client.listener_token(conversation.id)).token) is None

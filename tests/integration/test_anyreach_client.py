"""The Anyreach client against the emulator, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from livekit import api as lk_api

from tests.fixtures.anyreach import ClientFactory
from tui.anyreach import (
    AnyreachClient,
    AnyreachError,
    ApiUnavailable,
    Conversation,
    ConversationNotActive,
    ConversationNotFound,
    ConversationStatus,
    Forbidden,
    ListenerGrant,
    MissingOrganization,
    RetryPolicy,
    Unauthorized,
)
from tui.anyreach.auth import ApiKey
from tui.demo.emulator import SCOPE_READ, ApiEmulator
from tui.demo.livekit_server import DEV_API_KEY, DEV_API_SECRET, free_port

pytestmark = [
    pytest.mark.timeout(30),
    # livekit-server --dev signs with its short well-known secret.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


def live_call(emu: ApiEmulator, room: str = "call-room-1", **fields: object) -> str:
    return emu.create_conversation(status="in_progress", room_name=room, **fields).id


# -- 200 ---------------------------------------------------------------------------------


async def test_listener_token_fields_and_types(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    conversation_id = live_call(api_emulator, "room-a")
    grant = await make_client().listener_token(conversation_id)

    assert isinstance(grant, ListenerGrant)
    assert grant.url == api_emulator.livekit_url
    assert grant.room_name == "room-a"
    assert isinstance(grant.token, str) and grant.token.count(".") == 2
    assert grant.expires_at.tzinfo is not None
    assert grant.expires_at.utcoffset() == timedelta(0)
    assert timedelta(minutes=9) < grant.expires_at - datetime.now(UTC) <= timedelta(minutes=10)


async def test_minted_jwt_carries_exactly_the_listener_grants(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    conversation_id = live_call(api_emulator, "room-grants")
    client = make_client()
    first = await client.listener_token(conversation_id)
    second = await client.listener_token(conversation_id)

    claims = lk_api.TokenVerifier(DEV_API_KEY, DEV_API_SECRET).verify(first.token)
    video = claims.video
    assert video is not None
    assert video.room_join is True and video.room == "room-grants"
    assert video.can_subscribe is True
    assert video.can_publish is False and video.can_publish_data is False
    assert video.hidden is True

    # Exactly these grants: nothing else is in the token's video claim.
    payload = jwt.decode(first.token, options={"verify_signature": False})
    assert payload["video"] == {
        "roomJoin": True,
        "room": "room-grants",
        "canSubscribe": True,
        "canPublish": False,
        "canPublishData": False,
        "hidden": True,
    }
    assert set(payload) <= {"sub", "iss", "nbf", "exp", "name", "video"}
    assert datetime.fromtimestamp(payload["exp"], UTC) == first.expires_at

    # A fresh identity per mint, so two listeners never kick each other out.
    second_claims = lk_api.TokenVerifier(DEV_API_KEY, DEV_API_SECRET).verify(second.token)
    assert claims.identity and second_claims.identity and claims.identity != second_claims.identity


async def test_token_ttl_is_configurable(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    api_emulator.token_ttl = timedelta(seconds=5)
    grant = await make_client().listener_token(live_call(api_emulator))
    exp = jwt.decode(grant.token, options={"verify_signature": False})["exp"]
    assert datetime.fromtimestamp(exp, UTC) == grant.expires_at
    assert timedelta(seconds=3) < grant.expires_at - datetime.now(UTC) <= timedelta(seconds=6)


async def test_pat_with_org_sends_the_org_header_and_ak_sends_none(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    conversation_id = live_call(api_emulator)
    pat = api_emulator.add_key(personal=True)
    await make_client(pat, api_emulator.organization_id).listener_token(conversation_id)
    assert api_emulator.requests[-1].org_header == api_emulator.organization_id
    await make_client().listener_token(conversation_id)
    assert api_emulator.requests[-1].org_header is None


# -- 401 / 403 ---------------------------------------------------------------------------


async def test_bad_key_is_unauthorized_with_advice(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    client = make_client("ak_not_a_real_key")
    with pytest.raises(Unauthorized) as caught:
        await client.listener_token(live_call(api_emulator))
    assert caught.value.status == 401
    assert caught.value.detail
    assert "ANYREACH_API_KEY" in str(caught.value)
    with pytest.raises(Unauthorized):
        await client.active_conversations()
    # No retry of a 4xx: one token request, and one status poll. The first poll reuses the
    # kept-alive connection, so its 401 comes back while the other two are still opening
    # theirs, and the first 401 cancels them: polling stops there, nothing is retried.
    assert api_emulator.request_count("listener_token", 401) == 1
    assert api_emulator.request_count("conversations", 401) == 1
    assert api_emulator.request_count("conversations") == 1


async def test_revoked_key_is_unauthorized(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    key = api_emulator.add_key()
    client = make_client(key)
    assert await client.active_conversations() == []
    api_emulator.revoke_key(key)
    with pytest.raises(Unauthorized):
        await client.active_conversations()


async def test_pat_without_org_is_refused_before_any_request(api_emulator: ApiEmulator) -> None:
    pat = api_emulator.add_key(personal=True)
    with pytest.raises(MissingOrganization) as caught:
        AnyreachClient(api_emulator.url, pat)
    assert isinstance(caught.value, Unauthorized)
    assert "org_id" in str(caught.value) and "ANYREACH_ORG_ID" in str(caught.value)
    assert api_emulator.requests == []


async def test_key_without_either_token_scope_is_forbidden_naming_the_scopes(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    reader = make_client(api_emulator.add_key({SCOPE_READ}))
    conversation_id = live_call(api_emulator)
    assert [c.id for c in await reader.active_conversations()] == [conversation_id]
    with pytest.raises(Forbidden) as caught:
        await reader.listener_token(conversation_id)
    assert caught.value.status == 403
    assert "conversations:read_sensitive" in str(caught.value)
    assert "conversations:manage" in str(caught.value)

    nothing = make_client(api_emulator.add_key(set()))
    with pytest.raises(Forbidden):
        await nothing.active_conversations()


@pytest.mark.parametrize("scope", ["conversations:read_sensitive", "conversations:manage"])
async def test_either_scope_may_mint(
    api_emulator: ApiEmulator, make_client: ClientFactory, scope: str
) -> None:
    client = make_client(api_emulator.add_key({scope}))
    grant = await client.listener_token(live_call(api_emulator, "room-scope"))
    assert grant.room_name == "room-scope"


# -- 404 / 409 ---------------------------------------------------------------------------


async def test_unknown_conversation_is_not_found(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    with pytest.raises(ConversationNotFound) as caught:
        await make_client().listener_token("does-not-exist")
    assert caught.value.status == 404
    assert "does-not-exist" in str(caught.value)
    assert api_emulator.request_count() == 1


async def test_active_conversation_without_room_is_not_found(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    triggered = api_emulator.create_conversation(channel="telephone")  # no room yet
    assert triggered.status == "triggered"
    with pytest.raises(ConversationNotFound) as caught:
        await make_client().listener_token(triggered.id)
    assert "try again" in str(caught.value)


async def test_conversation_of_another_organization_is_not_found(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    other = api_emulator.create_conversation(
        status="in_progress", room_name="theirs", organization_id="org_other"
    )
    with pytest.raises(ConversationNotFound):
        await make_client().listener_token(other.id)


@pytest.mark.parametrize("ended", ["completed", "failed", "transferred", "unanswered"])
async def test_ended_conversation_is_not_active(
    api_emulator: ApiEmulator, make_client: ClientFactory, ended: str
) -> None:
    conversation_id = live_call(api_emulator)
    api_emulator.set_status(conversation_id, ended)
    with pytest.raises(ConversationNotActive) as caught:
        await make_client().listener_token(conversation_id)
    assert caught.value.status == 409


async def test_pending_web_session_is_not_active(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    pending = api_emulator.create_conversation(channel="webrtc", user_id="guest_1")
    assert pending.status == "token_created"
    with pytest.raises(ConversationNotActive):
        await make_client().listener_token(pending.id)


# -- listing -----------------------------------------------------------------------------


async def test_pagination_returns_every_conversation_once_newest_first(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    created = [api_emulator.create_conversation(channel="email").id for _ in range(25)]
    seen = [c.id async for c in make_client().conversations(limit=10)]
    assert seen == list(reversed(created))
    assert api_emulator.request_count("conversations") == 3  # 10 + 10 + 5


async def test_pagination_when_the_last_page_is_full(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    created = {api_emulator.create_conversation(channel="text").id for _ in range(20)}
    seen = [c.id async for c in make_client().conversations(limit=5)]
    assert len(seen) == 20 and set(seen) == created
    assert api_emulator.request_count("conversations") == 5  # the fifth page is empty


async def test_filters_reach_the_api(api_emulator: ApiEmulator, make_client: ClientFactory) -> None:
    emu = api_emulator
    before = emu.create_conversation(channel="webrtc", user_id="guest_old").id
    cutoff = datetime.now(UTC)
    web = emu.create_conversation(
        channel="webrtc",
        user_id="guest_abc",
        status="in_progress",
        room_name="web-1",
        custom_metadata={"team": "blue"},
    ).id
    phone = emu.create_conversation(user_id="+15551230001", agent_number="+18005550100").id
    client = make_client()

    async def ids(*args: object, **filters: object) -> list[str]:
        return [c.id async for c in client.conversations(*args, **filters)]

    assert await ids(channel="webrtc") == [web, before]
    assert await ids(ConversationStatus.IN_PROGRESS) == [web]
    assert await ids(user_id="abc") == [web]
    assert await ids(agent_number="555") == [phone]
    assert await ids(created_after=cutoff) == [phone, web]
    assert await ids(custom_metadata={"team": "blue"}) == [web]
    with pytest.raises(AnyreachError) as caught:
        await ids(channel="carrier-pigeon")
    assert caught.value.status == 422


async def test_active_conversations_is_the_union_newest_first(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    emu = api_emulator
    triggered = emu.create_conversation().id
    ringing = emu.create_conversation(status="ringing", room_name="r-ring").id
    emu.create_conversation(channel="webrtc")  # token_created: not active
    live = emu.create_conversation(status="in_progress", room_name="r-live").id
    done = emu.create_conversation(status="in_progress", room_name="r-done").id
    emu.set_status(done, "completed")

    active = await make_client().active_conversations()
    assert [c.id for c in active] == [live, ringing, triggered]
    assert [c.status for c in active] == ["in_progress", "ringing", "triggered"]
    assert all(isinstance(c, Conversation) for c in active)


def test_conversation_model_tolerates_unknown_and_missing_fields() -> None:
    minimal = Conversation.model_validate(
        {
            "id": "c1",
            "status": "in_progress",
            "created_at": "2025-01-02T03:04:05Z",
            "brand_new_field": {"x": 1},
        }
    )
    assert minimal.status == "in_progress" and minimal.status == ConversationStatus.IN_PROGRESS
    assert minimal.is_active and minimal.agent_name is None and minimal.duration is None
    assert minimal.created_at.tzinfo is not None
    future = Conversation.model_validate(
        {"id": "c2", "status": "on_hold", "created_at": "2025-01-02T03:04:05+02:00"}
    )
    assert future.status == "on_hold" and not future.is_active and not future.is_terminal
    assert future.created_at.hour == 1


# -- retries -----------------------------------------------------------------------------


async def test_two_503_then_200_succeeds(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    conversation_id = live_call(api_emulator, "room-retry")
    api_emulator.fail_next(2, 503)
    grant = await make_client().listener_token(conversation_id)
    assert grant.room_name == "room-retry"
    assert api_emulator.request_count("listener_token", 503) == 2
    assert api_emulator.request_count("listener_token", 200) == 1


async def test_429_is_retried(api_emulator: ApiEmulator, make_client: ClientFactory) -> None:
    live_call(api_emulator)
    api_emulator.fail_next(1, 429, endpoint="conversations")
    assert len(await make_client().active_conversations()) == 1


async def test_always_failing_raises_api_unavailable_within_the_budget(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    api_emulator.fail_for(60, 503)
    budget = 1.5
    client = make_client(
        retries=RetryPolicy(max_retries=1000, base_delay=0.05, max_delay=0.4, budget=budget)
    )
    started = time.monotonic()
    with pytest.raises(ApiUnavailable) as caught:
        await client.listener_token(live_call(api_emulator))
    elapsed = time.monotonic() - started
    assert elapsed < budget + 1.0  # generous: the budget bounds the whole call
    assert caught.value.status == 503 and caught.value.attempts > 2
    assert "api_url" in str(caught.value)


async def test_retries_stop_after_max_retries(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    api_emulator.fail_for(60, 502)
    client = make_client(retries=RetryPolicy(max_retries=2, base_delay=0.01, budget=10))
    with pytest.raises(ApiUnavailable) as caught:
        await client.listener_token(live_call(api_emulator))
    assert caught.value.attempts == 3
    assert api_emulator.request_count("listener_token") == 3


async def test_retry_after_is_honoured(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    conversation_id = live_call(api_emulator, "room-ra")
    api_emulator.fail_next(1, 503, retry_after=1)
    client = make_client(retries=RetryPolicy(max_retries=3, base_delay=0.01, budget=10))
    await client.listener_token(conversation_id)
    first, second = (r for r in api_emulator.requests if r.endpoint == "listener_token")
    assert first.status == 503 and second.status == 200
    # Without Retry-After the backoff would be ~10 ms; the server asked for 1 s.
    assert second.at - first.at >= 0.9


async def test_retry_after_beyond_the_budget_fails_at_once(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    api_emulator.fail_next(1, 503, retry_after=120)
    client = make_client(retries=RetryPolicy(max_retries=3, base_delay=0.01, budget=5))
    started = time.monotonic()
    with pytest.raises(ApiUnavailable) as caught:
        await client.listener_token(live_call(api_emulator))
    assert time.monotonic() - started < 4  # it did not sit out the two minutes
    assert "120" in str(caught.value)


async def test_timeouts_are_retried_then_succeed(
    api_emulator: ApiEmulator, make_client: ClientFactory
) -> None:
    conversation_id = live_call(api_emulator, "room-slow")
    slow, delay, timeout = 3, 2.5, 0.3
    api_emulator.delay_next(slow, delay, endpoint="listener_token")
    started = time.monotonic()
    grant = await make_client(timeout=timeout).listener_token(conversation_id)
    elapsed = time.monotonic() - started
    assert grant.room_name == "room-slow"
    # Each slow attempt was given the whole timeout, and cut there: not one slow answer
    # was waited for (that alone would take `delay`; ignoring the timeout, slow x delay).
    assert slow * timeout <= elapsed < delay
    # The emulator saw every attempt: the slow ones are recorded once their stall ends,
    # and the last of them had arrived before the call returned.
    await asyncio.sleep(delay + 0.3)
    assert api_emulator.request_count("listener_token") == slow + 1


async def test_unreachable_api_raises_api_unavailable(make_client: ClientFactory) -> None:
    client = make_client(url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ApiUnavailable) as caught:
        await client.active_conversations()
    assert caught.value.status is None
    assert "connection failed" in str(caught.value)


# -- secrets -----------------------------------------------------------------------------


async def test_api_key_never_reaches_logs_exceptions_or_reprs(
    api_emulator: ApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "tui", "aiohttp", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    emu = api_emulator
    conversation_id = live_call(emu)
    pending = emu.create_conversation(channel="webrtc").id
    keys = [emu.admin_key, emu.add_key({SCOPE_READ}), emu.add_key(personal=True)]
    wrong_key = "ak_" + "f" * 40
    policy = RetryPolicy(max_retries=2, base_delay=0.01, budget=3)
    errors: list[BaseException] = []
    texts: list[str] = []

    async def attempt(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except AnyreachError as exc:
            errors.append(exc)

    for key in [*keys, wrong_key]:
        org = emu.organization_id if key.startswith("pat_") else None
        async with AnyreachClient(emu.url, key, org, retries=policy) as client:
            texts += [repr(client), str(client)]
            await attempt(client.listener_token(conversation_id))
            await attempt(client.listener_token(pending))
            await attempt(client.listener_token("missing"))
            await attempt(client.active_conversations())
            emu.fail_for(0.5, 503, endpoint="listener_token")
            await attempt(client.listener_token(conversation_id))
            emu.clear_faults()
            grant = await client.listener_token(conversation_id) if key == keys[0] else None
            if grant is not None:
                texts += [repr(grant), str(grant)]
                assert grant.token not in repr(grant)
    with pytest.raises(MissingOrganization) as missing:
        AnyreachClient(emu.url, keys[2])
    errors.append(missing.value)

    assert len(errors) > 10 and any(isinstance(e, Unauthorized) for e in errors)
    assert any(isinstance(e, ApiUnavailable) for e in errors)
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("listener-token" in text for text in texts)  # the logs did see the requests
    for key in [*keys, wrong_key]:
        secret = key.split("_", 1)[1]
        assert not [text for text in texts if secret in text]


def test_a_key_echoed_by_a_server_is_blanked_from_details() -> None:
    key = ApiKey("ak_" + "e" * 40)
    assert key.redact(f"invalid credential {key.reveal()}!") == "invalid credential ***!"
    assert "e" * 40 not in repr(key) and "e" * 40 not in str(key)

"""The API emulator's documented behaviour, checked with raw HTTP (no client in between)."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tui.demo.emulator import SCOPE_MANAGE, ApiEmulator

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


def bearer(key: str, org: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if org:
        headers["X-Anyreach-Org"] = org
    return headers


async def get(
    emu: ApiEmulator, key: str | None = None, org: str | None = None, **params: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=emu.url) as http:
        return await http.get(
            "/core/conversations", params=params, headers=bearer(key or emu.admin_key, org)
        )


async def mint(
    emu: ApiEmulator,
    conversation_id: str,
    key: str | None = None,
    org: str | None = None,
    **kwargs: object,
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=emu.url) as http:
        return await http.post(
            f"/core/conversations/{conversation_id}/listener-token",
            headers=bearer(key or emu.admin_key, org),
            **kwargs,  # type: ignore[arg-type]
        )


def cursor_of(created_at: str) -> str:
    return base64.b64encode(created_at.encode()).decode()


async def test_auth_statuses(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    pat = emu.add_key(personal=True)
    async with httpx.AsyncClient(base_url=emu.url) as http:
        missing = await http.get("/core/conversations")
    assert missing.status_code == 401 and missing.json()["detail"]
    assert (await get(emu, "ak_wrong")).status_code == 401
    no_org = await get(emu, pat)
    assert no_org.status_code == 401 and "X-Anyreach-Org" in no_org.json()["detail"]
    assert (await get(emu, pat, emu.organization_id)).status_code == 200
    assert (await get(emu, pat, "org_not_mine")).status_code == 403
    assert (await get(emu, emu.admin_key, "org_not_mine")).status_code == 403
    assert (await get(emu, emu.add_key(set()))).status_code == 403


async def test_listener_token_statuses_and_bodies(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    live = emu.create_conversation(status="in_progress", room_name="room-live").id
    triggered = emu.create_conversation().id
    pending = emu.create_conversation(channel="webrtc").id
    ok = await mint(emu, live)  # no body at all is fine
    assert ok.status_code == 200
    assert set(ok.json()) == {"url", "token", "room_name", "expires_at"}
    assert (await mint(emu, live, json={})).status_code == 200
    for conversation_id, status in (("nope", 404), (triggered, 404), (pending, 409)):
        response = await mint(emu, conversation_id)
        assert response.status_code == status
        assert isinstance(response.json()["detail"], str)
    only_read = emu.add_key({"conversations:read"})
    assert (await mint(emu, live, only_read)).status_code == 403
    assert (await mint(emu, live, emu.add_key({SCOPE_MANAGE}))).status_code == 200


async def test_unknown_routes_and_methods_answer_json_detail(api_emulator: ApiEmulator) -> None:
    async with httpx.AsyncClient(base_url=api_emulator.url) as http:
        unknown = await http.get("/core/nothing-here")
        wrong_method = await http.delete("/core/conversations")
    assert unknown.status_code == 404 and "detail" in unknown.json()
    assert wrong_method.status_code == 405 and "detail" in wrong_method.json()


async def test_expires_at_is_the_jwt_exp_and_identities_are_unique(
    api_emulator: ApiEmulator,
) -> None:
    emu = api_emulator
    emu.token_ttl = timedelta(seconds=30)
    live = emu.create_conversation(status="ringing", room_name="room-x").id
    bodies = [(await mint(emu, live)).json() for _ in range(3)]
    subs = set()
    for body in bodies:
        payload = jwt.decode(body["token"], options={"verify_signature": False})
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert expires_at.tzinfo is not None and body["expires_at"].endswith("Z")
        assert expires_at == datetime.fromtimestamp(payload["exp"], UTC)
        assert payload["exp"] - payload["nbf"] == 30
        subs.add(payload["sub"])
    assert len(subs) == 3
    assert [m.identity for m in emu.minted] == [
        jwt.decode(b["token"], options={"verify_signature": False})["sub"] for b in bodies
    ]


async def test_created_at_is_unique_and_listing_is_newest_first(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    for _ in range(60):
        emu.create_conversation(channel="text")
    body = (await get(emu, limit="100")).json()
    stamps = [item["created_at"] for item in body]
    assert len(stamps) == 60 and len(set(stamps)) == 60
    assert stamps == sorted(stamps, reverse=True)
    with pytest.raises(ValueError):
        emu.create_conversation(created_at=emu.conversations[0].created_at)


async def test_cursor_page_holds_only_strictly_older_conversations(
    api_emulator: ApiEmulator,
) -> None:
    emu = api_emulator
    ids = [emu.create_conversation(channel="email").id for _ in range(7)]  # oldest first
    first = (await get(emu, limit="3")).json()
    assert [c["id"] for c in first] == ids[::-1][:3]
    second = (await get(emu, limit="3", cursor=cursor_of(first[-1]["created_at"]))).json()
    assert [c["id"] for c in second] == ids[::-1][3:6]
    # A cursor equal to an item's own created_at excludes that item.
    middle = emu.conversation(ids[3])
    page = (await get(emu, limit="10", cursor=cursor_of(middle.to_json()["created_at"]))).json()
    assert [c["id"] for c in page] == ids[:3][::-1]
    assert (await get(emu, cursor="%%%not-base64")).status_code == 422


async def test_filters(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    a = emu.create_conversation(
        user_id="+15551230001",
        agent_number="+18005550100",
        agent_id="agent_a",
        direction="outbound",
    )
    b = emu.create_conversation(
        channel="webrtc",
        user_id="guest_42",
        agent_id="agent_b",
        status="in_progress",
        room_name="web",
        custom_metadata={"vip": True},
    )
    c = emu.create_conversation(
        channel="email", user_id="ann@example.com", agent_id="agent_a", agent_version_id="v2"
    )
    emu.set_status(b.id, "completed")
    emu.update(b.id, duration=95.0)
    emu.update(c.id, duration=10.0)

    async def ids(**params: str) -> list[str]:
        response = await get(emu, **params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()]

    assert await ids(status="triggered") == [a.id]
    assert await ids(status="completed") == [b.id]
    assert await ids(channel="webrtc") == [b.id]
    assert await ids(direction="outbound") == [a.id]
    assert await ids(agent_id="agent_a") == [c.id, a.id]
    assert await ids(agent_version_id="v2") == [c.id]
    assert await ids(user_id="GUEST") == [b.id]  # partial, case-insensitive
    assert await ids(agent_number="5550") == [a.id]
    assert await ids(duration_above="60") == [b.id]
    assert await ids(duration_below="60") == [c.id]
    assert await ids(created_after=b.to_json()["created_at"]) == [c.id]
    assert await ids(created_before=b.to_json()["created_at"]) == [a.id]
    assert await ids(custom_metadata='{"vip": true}') == [b.id]
    for bad in (
        {"status": "paused"},
        {"channel": "fax"},
        {"limit": "0"},
        {"limit": "x"},
        {"created_after": "yesterday"},
        {"custom_metadata": "[1]"},
        {"duration_above": "long"},
    ):
        response = await get(emu, **bad)
        assert response.status_code == 422 and response.json()["detail"], bad


async def test_other_organizations_are_invisible(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    theirs = emu.create_conversation(status="in_progress", room_name="r", organization_id="org_b")
    mine = emu.create_conversation().id
    assert [c["id"] for c in (await get(emu)).json()] == [mine]
    their_key = emu.add_key(organization_id="org_b")
    assert [c["id"] for c in (await get(emu, their_key)).json()] == [theirs.id]
    assert (await mint(emu, theirs.id)).status_code == 404
    assert (await mint(emu, theirs.id, their_key)).status_code == 200


def test_lifecycles_are_enforced(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    phone = emu.create_conversation()
    with pytest.raises(ValueError):
        emu.set_status(phone.id, "ringing")  # ringing means the room exists
    emu.set_status(phone.id, "ringing", room_name="room-p")
    emu.set_status(phone.id, "in_progress")
    emu.set_status(phone.id, "completed")
    assert phone.duration is not None and phone.duration >= 0
    with pytest.raises(ValueError):
        emu.set_status(phone.id, "in_progress")  # terminal is final
    web = emu.create_conversation(channel="webrtc")
    assert web.status == "token_created"
    with pytest.raises(ValueError):
        emu.set_status(web.id, "ringing")
    emu.set_status(web.id, "in_progress", room_name="room-w")
    emu.set_status(web.id, "transferred")


async def test_fault_injection_hooks(api_emulator: ApiEmulator) -> None:
    emu = api_emulator
    live = emu.create_conversation(status="in_progress", room_name="r").id
    emu.fail_next(2, 503, retry_after=3, endpoint="conversations")
    first = await get(emu)
    assert first.status_code == 503 and first.headers["Retry-After"] == "3"
    assert first.json()["detail"]
    assert (await mint(emu, live)).status_code == 200  # other endpoint unaffected
    assert (await get(emu)).status_code == 503
    assert (await get(emu)).status_code == 200  # only the next two

    emu.fail_for(0.5, 500)
    assert (await get(emu)).status_code == 500
    assert (await mint(emu, live)).status_code == 500
    await asyncio.sleep(0.6)
    assert (await get(emu)).status_code == 200  # the window closed by itself

    emu.delay_next(1, 0.5)
    started = time.monotonic()
    assert (await get(emu)).status_code == 200
    assert time.monotonic() - started >= 0.45
    assert emu.request_count("conversations", 503) == 2
    assert emu.request_count("listener_token") == 2

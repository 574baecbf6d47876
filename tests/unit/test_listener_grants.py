"""The token guard (tui/listen/grants.py): each grant that could let the listener publish
or be seen is refused in words naming it; the words never hold the token.

Tokens are minted by ``livekit.api`` from the emulator's one definition of listener
grants (``listener_grants``), changed field by field; ``None`` leaves a grant out of
the JWT, as another minter might.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from livekit import api

from tui.demo.emulator import listener_grants
from tui.listen import check_listener_token

SECRET = "s" * 40


def minted(**overrides: Any) -> str:
    grants = listener_grants("room-1", **overrides)
    token = api.AccessToken("key", SECRET).with_identity("listener-1").with_grants(grants)
    return token.to_jwt()


def hand_made(claims: Any) -> str:
    """A JWT-shaped token whose claims are exactly ``claims`` (signature not checked)."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.c2lnbmF0dXJl"


def video_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    video: dict[str, Any] = claims["video"]
    return video


def assert_refused(token: str, *named: str) -> str:
    message = check_listener_token(token)
    assert message is not None, f"accepted: {token}"
    assert message.startswith("Refused the listener token: ")
    assert message.endswith("— ask Anyreach support.")
    for grant in named:
        assert f"({grant} is" in message, (grant, message)
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in message  # never the token, nor a piece of it
    return message


def test_livekit_defaults_let_a_participant_publish_and_be_seen() -> None:
    """What the guard relies on: livekit-api's VideoGrants defaults (the server's too)."""
    defaults = api.VideoGrants()
    assert defaults.can_publish is True
    assert defaults.can_publish_data is True
    assert defaults.can_subscribe is True
    assert defaults.hidden is None and defaults.room_join is None


def test_the_emulators_listener_token_is_safe() -> None:
    token = minted()
    assert video_claims(token) == {
        "roomJoin": True,
        "room": "room-1",
        "canPublish": False,
        "canSubscribe": True,
        "canPublishData": False,
        "hidden": True,
    }
    assert check_listener_token(token) is None


def test_a_token_minted_with_livekit_defaults_is_refused_for_publishing() -> None:
    grants = api.VideoGrants(room_join=True, room="room-1", hidden=True)
    token = api.AccessToken("key", SECRET).with_identity("l").with_grants(grants).to_jwt()
    message = assert_refused(token, "canPublish", "canPublishData")
    assert "publish audio and video (canPublish is true)" in message
    assert "send data into the call (canPublishData is true)" in message
    assert "hidden" not in message and "roomJoin" not in message


def test_visible_listener_is_refused() -> None:
    message = assert_refused(minted(hidden=False), "hidden")
    assert message == (
        "Refused the listener token: it would let this dashboard be seen by the agent "
        "and the caller (hidden is false) — ask Anyreach support."
    )


def test_missing_hidden_means_seen_and_is_refused() -> None:
    token = minted(hidden=None)
    assert "hidden" not in video_claims(token)
    assert "(hidden is missing)" in assert_refused(token, "hidden")


def test_publishing_listener_is_refused() -> None:
    message = assert_refused(minted(can_publish=True), "canPublish")
    assert message == (
        "Refused the listener token: it would let this dashboard publish audio and video "
        "(canPublish is true) — ask Anyreach support."
    )


def test_missing_can_publish_means_true_and_is_refused_with_the_data_that_follows_it() -> None:
    token = minted(can_publish=None, can_publish_data=None)
    assert not {"canPublish", "canPublishData"} & set(video_claims(token))
    message = assert_refused(token, "canPublish", "canPublishData")
    assert "canPublish is missing, which LiveKit reads as true" in message
    assert "canPublishData is missing, so it follows canPublish" in message


def test_data_publishing_listener_is_refused() -> None:
    message = assert_refused(minted(can_publish_data=True), "canPublishData")
    assert "send data into the call (canPublishData is true)" in message
    assert "(canPublish is" not in message


def test_missing_can_publish_data_follows_a_false_can_publish_and_is_safe() -> None:
    """livekit-server reads an absent canPublishData as canPublish (protocol auth/grants.go)."""
    token = minted(can_publish_data=None)
    assert "canPublishData" not in video_claims(token)
    assert video_claims(token)["canPublish"] is False
    assert check_listener_token(token) is None


@pytest.mark.parametrize("room_join", [None, False])
def test_a_token_that_does_not_grant_joining_is_refused(room_join: bool | None) -> None:
    message = assert_refused(minted(room_join=room_join), "roomJoin")
    said = "missing" if room_join is None else "false"
    assert f"does not grant joining the call's room (roomJoin is {said})" in message


def test_every_problem_is_named_at_once() -> None:
    message = assert_refused(
        minted(hidden=False, can_publish=True, can_publish_data=True, room_join=None),
        "roomJoin",
        "hidden",
        "canPublish",
        "canPublishData",
    )
    assert message == (
        "Refused the listener token: it does not grant joining the call's room "
        "(roomJoin is missing), and it would let this dashboard be seen by the agent and "
        "the caller (hidden is false), publish audio and video (canPublish is true) and "
        "send data into the call (canPublishData is true) — ask Anyreach support."
    )


def test_no_video_grants_at_all_is_refused() -> None:
    assert_refused(hand_made({"sub": "l", "exp": 9999999999}), "roomJoin", "hidden", "canPublish")


@pytest.mark.parametrize(
    ("video", "named"),
    [
        ({"roomJoin": True, "hidden": "true", "canPublish": False}, "hidden"),
        ({"roomJoin": True, "hidden": True, "canPublish": "false"}, "canPublish"),
        ({"roomJoin": True, "hidden": True, "canPublish": 0}, "canPublish"),
        (
            {"roomJoin": True, "hidden": True, "canPublish": False, "canPublishData": 0},
            "canPublishData",
        ),
        ({"roomJoin": 1, "hidden": True, "canPublish": False}, "roomJoin"),
    ],
)
def test_grants_that_are_not_booleans_are_refused(video: dict[str, Any], named: str) -> None:
    message = assert_refused(hand_made({"video": video}), named)
    assert f"({named} is not true or false)" in message


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "it does not have the three parts of a JWT"),
        ("not-a-jwt", "it does not have the three parts of a JWT"),
        ("a.b.c.d", "it does not have the three parts of a JWT"),
        ("header..signature", "it does not have the three parts of a JWT"),
        ("header.***not base64***.signature", "its claims are not Base64url"),
        ("header.%%%%.signature", "its claims are not Base64url"),
        (f"header.{base64.urlsafe_b64encode(b'not json').decode()}.sig", "not JSON"),
        (f"header.{base64.urlsafe_b64encode(bytes([255, 254])).decode()}.sig", "not JSON"),
        (f"header.{base64.urlsafe_b64encode(b'[1, 2]').decode()}.sig", "not a JSON object"),
        (hand_made({"video": ["roomJoin"]}), "its LiveKit grants (video) are not a JSON object"),
    ],
)
def test_a_malformed_token_is_refused_in_words(token: str, why: str) -> None:
    message = assert_refused(token)
    assert message.startswith("Refused the listener token: it is not a readable LiveKit token (")
    assert why in message


def test_the_words_never_hold_the_token_even_when_it_is_long() -> None:
    claims = {"video": {"roomJoin": True, "hidden": False}, "sub": "x" * 5000, "name": "secret"}
    token = hand_made(claims)
    message = assert_refused(token, "hidden", "canPublish")
    assert len(message) < 400
    assert "xxxxxxxx" not in message and "secret" not in message

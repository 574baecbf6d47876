"""The token guard: a listener token must keep this dashboard silent and unseen.

Before joining, the product reads the grants of the listener JWT the Anyreach
API gave it and refuses one that would let it publish or be seen.  The
signature is not checked: this is our own decision about a token we were
handed, and livekit-server checks the signature anyway.

LiveKit's grant semantics (livekit/protocol ``auth/grants.go``, as enforced by
livekit-server; ``livekit.api.VideoGrants`` has the same defaults):

- ``canPublish`` missing means **true**: it must be present and false;
- ``canPublishData`` missing means "the same as ``canPublish``"; present, it
  must be false;
- ``hidden`` missing means false (seen by everyone): it must be true;
- ``roomJoin`` missing means false: without it there is nothing to join.

What is refused is said in words for a person, naming the grant; the token
itself never appears in them.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

_ASK = "ask Anyreach support"
_MISSING = object()


def check_listener_token(token: str) -> str | None:
    """None for a token that keeps the listener hidden and subscribe-only, else why not."""
    video = _video_grants(token)
    if isinstance(video, str):
        return f"Refused the listener token: it is not a readable LiveKit token ({video}) — {_ASK}."
    can_publish = video.get("canPublish", _MISSING)
    can_publish_data = video.get("canPublishData", _MISSING)
    hidden = video.get("hidden", _MISSING)
    allowed: list[str] = []
    if hidden is not True:
        allowed.append(f"be seen by the agent and the caller (hidden is {_said(hidden)})")
    if can_publish is not False:
        said = "missing, which LiveKit reads as true" if can_publish is _MISSING else None
        allowed.append(f"publish audio and video (canPublish is {said or _said(can_publish)})")
    if can_publish_data is _MISSING:
        if can_publish is not False:  # LiveKit then reads canPublishData as canPublish
            allowed.append(
                "send data into the call (canPublishData is missing, so it follows canPublish)"
            )
    elif can_publish_data is not False:
        allowed.append(f"send data into the call (canPublishData is {_said(can_publish_data)})")
    problems: list[str] = []
    if video.get("roomJoin", _MISSING) is not True:
        problems.append(
            "it does not grant joining the call's room "
            f"(roomJoin is {_said(video.get('roomJoin', _MISSING))})"
        )
    if allowed:
        problems.append("it would let this dashboard " + _and(allowed))
    if not problems:
        return None
    return f"Refused the listener token: {', and '.join(problems)} — {_ASK}."


def _video_grants(token: str) -> dict[str, Any] | str:
    """The JWT's ``video`` claim, or what makes the token unreadable (never the token)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return "it does not have the three parts of a JWT"
    payload = parts[1]
    try:
        raw = base64.b64decode(payload + "=" * (-len(payload) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return "its claims are not Base64url"
    try:
        claims = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return "its claims are not JSON"
    if not isinstance(claims, dict):
        return "its claims are not a JSON object"
    video = claims.get("video", {})
    if not isinstance(video, dict):
        return "its LiveKit grants (video) are not a JSON object"
    return video


def _said(value: object) -> str:
    if value is _MISSING:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "not true or false"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


__all__ = ["check_listener_token"]

"""A local, faithful emulator of the Anyreach API endpoints this project uses.

It serves, over real HTTP on loopback, what the documentation describes:

- ``GET  /core/conversations``: newest first, filters, cursor pagination
  (cursor = Base64 of the last item's ``created_at``; a page holds the
  conversations strictly older than it; no ``next_cursor``);
- ``POST /core/conversations/{id}/listener-token``: a real LiveKit JWT for the
  local livekit-server, subscribe-only and hidden.

Keys are random per run and live only in this process.  Conversations live
in memory; the demo stack (or a test) drives their status lifecycle.  Test
hooks inject faults (``fail_next``, ``fail_for``, ``delay_next``, and
``unsafe_grants`` for listener tokens that could publish or be seen) and record
every request (``requests``) so tests can count polls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import itertools
import json
import secrets
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from aiohttp import web
from jwt.warnings import InsecureKeyLengthWarning
from livekit import api as lk_api

SCOPE_READ = "conversations:read"
SCOPE_READ_SENSITIVE = "conversations:read_sensitive"
SCOPE_MANAGE = "conversations:manage"
ALL_SCOPES = frozenset({SCOPE_READ, SCOPE_READ_SENSITIVE, SCOPE_MANAGE})
LIST_SCOPES = ALL_SCOPES
TOKEN_SCOPES = frozenset({SCOPE_READ_SENSITIVE, SCOPE_MANAGE})
ORG_HEADER = "X-Anyreach-Org"

STATUSES = (
    "token_created",
    "triggered",
    "ringing",
    "in_progress",
    "completed",
    "failed",
    "cancelled",
    "transferred",
    "unanswered",
)
ACTIVE = frozenset({"triggered", "ringing", "in_progress"})
TERMINAL = frozenset({"completed", "failed", "cancelled", "transferred", "unanswered"})
CHANNELS = ("telephone", "webrtc", "email", "text")
DIRECTIONS = ("inbound", "outbound")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# Lifecycles as documented: telephone triggered -> ringing -> in_progress -> end;
# webrtc token_created -> in_progress -> end.  A call may also fail or go
# unanswered before it is picked up.
_EARLY_END = frozenset({"failed", "cancelled", "unanswered"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "token_created": frozenset({"in_progress"}) | _EARLY_END,
    "triggered": frozenset({"ringing", "in_progress"}) | _EARLY_END,
    "ringing": frozenset({"in_progress"}) | _EARLY_END,
    "in_progress": TERMINAL,
    **{status: frozenset() for status in TERMINAL},
}

Endpoint = Literal["conversations", "listener_token"]


def iso(moment: datetime) -> str:
    """UTC timestamp with microseconds, as the API writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class QueryError(ValueError):
    """A query parameter the API would reject with 422."""


class ApiError(Exception):
    """Answer ``status`` with ``{"detail": detail}`` (raised from auth checks)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class KeyRecord:
    scopes: frozenset[str]
    organizations: frozenset[str]  # an ak_ key has exactly one
    personal: bool


@dataclass
class EmulatedConversation:
    id: str
    organization_id: str
    channel: str
    direction: str
    status: str
    created_at: datetime
    updated_at: datetime
    user_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    agent_version_id: str | None = None
    agent_number: str | None = None
    room_name: str | None = None  # the LiveKit room; not part of the public JSON
    started_at: datetime | None = None
    duration: float | None = None
    user_turn_count: int | None = None
    summary: str | None = None
    custom_metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization_id": self.organization_id,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "agent_version_id": self.agent_version_id,
            "agent": {"id": self.agent_id, "name": self.agent_name} if self.agent_id else None,
            "agent_number": self.agent_number,
            "channel": self.channel,
            "direction": self.direction,
            "status": self.status,
            "duration": self.duration,
            "user_turn_count": self.user_turn_count,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "summary": self.summary,
            "custom_metadata": self.custom_metadata,
        }


@dataclass
class Fault:
    """Answer ``status`` instead of serving, for ``remaining`` requests or ``until``."""

    status: int
    endpoint: Endpoint | None = None
    remaining: int | None = None
    until: float | None = None  # time.monotonic()
    retry_after: str | None = None
    delay: float = 0.0  # seconds to stall before answering (or before serving, if status==0)

    def matches(self, endpoint: Endpoint | None, now: float) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        if self.until is not None and now >= self.until:
            return False
        return self.remaining is None or self.remaining > 0

    def expired(self, now: float) -> bool:
        return (self.remaining is not None and self.remaining <= 0) or (
            self.until is not None and now >= self.until
        )


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    endpoint: Endpoint | None
    query: dict[str, str]
    status: int
    org_header: str | None
    at: float  # time.monotonic()


@dataclass(frozen=True)
class MintRecord:
    conversation_id: str
    room_name: str
    identity: str
    expires_at: datetime


def listener_grants(room_name: str, **overrides: Any) -> lk_api.VideoGrants:
    """What Anyreach grants a listener: join this room, subscribe, hidden, publish nothing.

    ``overrides`` change fields of it, for fault hooks only (``hidden=False``,
    ``can_publish=True``...); ``None`` leaves that grant out of the JWT.
    """
    grants = lk_api.VideoGrants(
        room_join=True,
        room=room_name,
        can_subscribe=True,
        # VideoGrants defaults both to True: a listener must publish nothing.
        can_publish=False,
        can_publish_data=False,
        hidden=True,
    )
    return dataclasses.replace(grants, **overrides) if overrides else grants


@dataclass
class GrantFault:
    """The next ``remaining`` listener tokens carry ``overrides`` (``unsafe_grants``)."""

    remaining: int
    overrides: dict[str, Any]


class ApiEmulator:
    """``emu = ApiEmulator(lk.url, lk.api_key, lk.api_secret); await emu.start()``."""

    def __init__(
        self,
        livekit_url: str,
        livekit_api_key: str,
        livekit_api_secret: str,
        token_ttl: timedelta = timedelta(minutes=10),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        organization_id: str | None = None,
    ) -> None:
        self.livekit_url = livekit_url
        self._lk_key = livekit_api_key
        self._lk_secret = livekit_api_secret
        self.token_ttl = token_ttl
        self.host = host
        self.port = port
        self.organization_id = organization_id or f"org_{secrets.token_hex(6)}"
        self._keys: dict[str, KeyRecord] = {}
        self.admin_key = self.add_key(ALL_SCOPES)
        self._conversations: dict[str, EmulatedConversation] = {}
        self._created: set[datetime] = set()
        self._last_created: datetime | None = None
        self._faults: list[Fault] = []
        self._grant_faults: list[GrantFault] = []
        self._identities = itertools.count(1)
        self.requests: list[RequestRecord] = []
        self.minted: list[MintRecord] = []
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"ApiEmulator(url={self.url!r}, organization_id={self.organization_id!r})"

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> ApiEmulator:
        app = web.Application(middlewares=[self._record, self._json_errors, self._inject_faults])
        app.router.add_get("/core/conversations", self._list_conversations)
        app.router.add_post(
            "/core/conversations/{conversation_id}/listener-token", self._listener_token
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ApiEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- keys ------------------------------------------------------------------------

    def add_key(
        self,
        scopes: Iterable[str] = ALL_SCOPES,
        *,
        personal: bool = False,
        organization_id: str | None = None,
        organizations: Iterable[str] | None = None,
    ) -> str:
        """A new random key: ``ak_`` for one organization, or ``pat_`` for a user
        who belongs to ``organizations`` (default: this emulator's organization)."""
        orgs = frozenset(organizations or [organization_id or self.organization_id])
        if not personal and len(orgs) != 1:
            raise ValueError("an organization key (ak_) belongs to exactly one organization")
        key = ("pat_" if personal else "ak_") + secrets.token_hex(20)
        self._keys[key] = KeyRecord(frozenset(scopes), orgs, personal)
        return key

    def revoke_key(self, key: str) -> None:
        self._keys.pop(key, None)

    # -- conversations ----------------------------------------------------------------

    def _next_created_at(self) -> datetime:
        moment = datetime.now(UTC)
        if self._last_created is not None and moment <= self._last_created:
            moment = self._last_created + timedelta(microseconds=1)
        return moment

    def create_conversation(
        self,
        *,
        channel: str = "telephone",
        direction: str = "inbound",
        status: str | None = None,
        room_name: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = "agent_demo",
        agent_name: str | None = "Demo Agent",
        agent_version_id: str | None = None,
        agent_number: str | None = None,
        organization_id: str | None = None,
        created_at: datetime | None = None,
        summary: str | None = None,
        custom_metadata: dict[str, Any] | None = None,
        conversation_id: str | None = None,
    ) -> EmulatedConversation:
        """Add a conversation; the status defaults to the start of its channel's lifecycle."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}")
        if status is None:
            status = {"telephone": "triggered", "webrtc": "token_created"}.get(
                channel, "in_progress"
            )
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if (
            status in ACTIVE - {"triggered"}
            and room_name is None
            and channel in ("telephone", "webrtc")
        ):
            raise ValueError(f"a {status} call has a LiveKit room: give room_name")
        moment = created_at.astimezone(UTC) if created_at else self._next_created_at()
        if moment in self._created:
            raise ValueError("created_at must be unique per conversation")
        self._created.add(moment)
        if self._last_created is None or moment > self._last_created:
            self._last_created = moment
        conversation = EmulatedConversation(
            id=conversation_id or str(uuid.uuid4()),
            organization_id=organization_id or self.organization_id,
            channel=channel,
            direction=direction,
            status=status,
            created_at=moment,
            updated_at=moment,
            user_id=user_id,
            agent_id=agent_id,
            agent_name=agent_name,
            agent_version_id=agent_version_id,
            agent_number=agent_number,
            room_name=room_name,
            started_at=moment if status == "in_progress" else None,
            summary=summary,
            custom_metadata=dict(custom_metadata or {}),
        )
        self._conversations[conversation.id] = conversation
        return conversation

    def conversation(self, conversation_id: str) -> EmulatedConversation:
        return self._conversations[conversation_id]

    @property
    def conversations(self) -> list[EmulatedConversation]:
        return sorted(self._conversations.values(), key=lambda c: c.created_at, reverse=True)

    def set_status(
        self,
        conversation_id: str,
        status: str,
        *,
        room_name: str | None = None,
        force: bool = False,
    ) -> EmulatedConversation:
        """Move a conversation along its lifecycle (``force`` skips the lifecycle check)."""
        conversation = self._conversations[conversation_id]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if status == conversation.status and room_name in (None, conversation.room_name):
            return conversation
        if not force and status != conversation.status:
            allowed = TRANSITIONS[conversation.status]
            if status not in allowed:
                raise ValueError(
                    f"conversation {conversation_id} cannot go from "
                    f"{conversation.status} to {status}"
                )
        if room_name is not None:
            conversation.room_name = room_name
        if (
            not force
            and status in ("ringing", "in_progress")
            and conversation.channel in ("telephone", "webrtc")
            and not conversation.room_name
        ):
            raise ValueError(f"a {status} call has a LiveKit room: give room_name")
        now = datetime.now(UTC)
        if status == "in_progress" and conversation.started_at is None:
            conversation.started_at = now
        if status in TERMINAL and conversation.duration is None:
            started = conversation.started_at
            conversation.duration = round((now - started).total_seconds(), 1) if started else 0.0
        conversation.status = status
        conversation.updated_at = now
        return conversation

    def update(self, conversation_id: str, **fields: Any) -> EmulatedConversation:
        """Change other fields (``user_turn_count``, ``summary``...)."""
        conversation = self._conversations[conversation_id]
        for name, value in fields.items():
            if name in ("id", "status", "created_at") or not hasattr(conversation, name):
                raise ValueError(f"cannot update {name!r}")
            setattr(conversation, name, value)
        conversation.updated_at = datetime.now(UTC)
        return conversation

    # -- fault injection ---------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: float | str | None = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        """Answer ``status`` to the next ``count`` matching requests."""
        self._faults.append(Fault(status, endpoint, remaining=count, retry_after=_ra(retry_after)))

    def fail_for(
        self,
        seconds: float,
        status: int = 503,
        *,
        retry_after: float | str | None = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        """Answer ``status`` to every matching request for the next ``seconds``."""
        until = time.monotonic() + seconds
        self._faults.append(Fault(status, endpoint, until=until, retry_after=_ra(retry_after)))

    def delay_next(self, count: int, seconds: float, *, endpoint: Endpoint | None = None) -> None:
        """Stall the next ``count`` matching requests ``seconds`` before serving them."""
        self._faults.append(Fault(0, endpoint, remaining=count, delay=seconds))

    def unsafe_grants(self, count: int = 1, **overrides: Any) -> None:
        """Mint the next ``count`` listener tokens with these grants changed.

        Keyword names are ``livekit.api.VideoGrants`` fields (``hidden=False``,
        ``can_publish=True``, ``can_publish_data=True``, ``room_join=None``...);
        ``None`` leaves the grant out of the JWT, as another minter might.
        """
        unknown = set(overrides) - {f.name for f in dataclasses.fields(lk_api.VideoGrants)}
        if unknown:
            raise ValueError(f"not VideoGrants fields: {sorted(unknown)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._grant_faults.append(GrantFault(count, dict(overrides)))

    def _grant_overrides(self) -> dict[str, Any]:
        """The overrides for the token being minted now (and one fewer to go)."""
        if not self._grant_faults:
            return {}
        fault = self._grant_faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._grant_faults.pop(0)
        return fault.overrides

    def clear_faults(self) -> None:
        self._faults.clear()
        self._grant_faults.clear()

    def request_count(self, endpoint: Endpoint | None = None, status: int | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (endpoint is None or r.endpoint == endpoint)
            and (status is None or r.status == status)
        )

    # -- middlewares --------------------------------------------------------------------

    @staticmethod
    def _endpoint(request: web.Request) -> Endpoint | None:
        if request.path.rstrip("/") == "/core/conversations":
            return "conversations"
        if request.path.endswith("/listener-token"):
            return "listener_token"
        return None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            self.requests.append(
                RequestRecord(
                    request.method,
                    request.path,
                    self._endpoint(request),
                    dict(request.query),
                    status,
                    request.headers.get(ORG_HEADER),
                    time.monotonic(),
                )
            )

    @web.middleware
    async def _json_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every error body is ``{"detail": ...}``, routing errors included."""
        try:
            return await handler(request)
        except ApiError as exc:
            return _error(exc.status, exc.detail)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason, headers=exc.headers)

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = self._endpoint(request)
        now = time.monotonic()
        self._faults = [f for f in self._faults if not f.expired(now)]
        fault = next((f for f in self._faults if f.matches(endpoint, now)), None)
        if fault is None:
            return await handler(request)
        if fault.remaining is not None:
            fault.remaining -= 1
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status == 0:
            return await handler(request)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        return _error(fault.status, "Service temporarily unavailable", headers=headers)

    # -- auth ---------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> tuple[KeyRecord, str]:
        """The key and the organization it acts for, or an HTTP error to answer."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(401, "Missing bearer credential")
        record = self._keys.get(credential.strip())
        if record is None:
            raise ApiError(401, "Invalid or revoked credential")
        org = request.headers.get(ORG_HEADER, "").strip()
        if record.personal:
            if not org:
                raise ApiError(401, f"Personal access tokens must send {ORG_HEADER}")
            if org not in record.organizations:
                raise ApiError(403, "Not a member of this organization")
            return record, org
        (own_org,) = record.organizations
        if org and org != own_org:
            raise ApiError(403, "This API key belongs to another organization")
        return record, own_org

    @staticmethod
    def _require(record: KeyRecord, needed: frozenset[str]) -> None:
        if not record.scopes & needed:
            raise ApiError(403, "Missing scope: requires one of " + ", ".join(sorted(needed)))

    # -- handlers -----------------------------------------------------------------------

    async def _list_conversations(self, request: web.Request) -> web.Response:
        record, org = self._authenticate(request)
        self._require(record, LIST_SCOPES)
        try:
            limit, matches = _filters(request.query)
        except QueryError as exc:
            return _error(422, str(exc))
        page = [
            c.to_json()
            for c in self.conversations  # newest first
            if c.organization_id == org and all(match(c) for match in matches)
        ][:limit]
        return web.json_response(page)

    async def _listener_token(self, request: web.Request) -> web.Response:
        record, org = self._authenticate(request)
        self._require(record, TOKEN_SCOPES)
        conversation = self._conversations.get(request.match_info["conversation_id"])
        if conversation is None or conversation.organization_id != org:
            return _error(404, "Conversation not found")
        if conversation.status not in ACTIVE:
            return _error(409, f"Conversation is not active (status: {conversation.status})")
        if not conversation.room_name:
            return _error(404, "Conversation has no LiveKit room")
        return web.json_response(self._mint(conversation))

    def _mint(self, conversation: EmulatedConversation) -> dict[str, str]:
        assert conversation.room_name is not None
        identity = f"listener-{next(self._identities)}-{secrets.token_hex(4)}"
        grants = listener_grants(conversation.room_name, **self._grant_overrides())
        with warnings.catch_warnings():
            # livekit-server --dev's well-known secret is short; that is its business.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = (
                lk_api.AccessToken(self._lk_key, self._lk_secret)
                .with_identity(identity)
                .with_name("Anyreach listener")
                .with_grants(grants)
                .with_ttl(self.token_ttl)
                .to_jwt()
            )
        # expires_at is read back from the JWT so the two can never disagree.
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        expires_at = datetime.fromtimestamp(exp, UTC)
        self.minted.append(
            MintRecord(conversation.id, conversation.room_name, identity, expires_at)
        )
        return {
            "url": self.livekit_url,
            "token": token,
            "room_name": conversation.room_name,
            "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Match = Callable[[EmulatedConversation], bool]


def _ra(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def _error(status: int, detail: Any, headers: Any = None) -> web.Response:
    response = web.json_response({"detail": detail}, status=status)
    if headers:
        for name, value in dict(headers).items():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
    return response


def _field_equals(name: str, value: object) -> Match:
    return lambda c: bool(getattr(c, name) == value)


def _field_contains(name: str, needle: str) -> Match:
    return lambda c: needle in (getattr(c, name) or "").lower()


def _duration_between(above: float | None, below: float | None) -> Match:
    def match(c: EmulatedConversation) -> bool:
        if c.duration is None:
            return False
        return (above is None or c.duration > above) and (below is None or c.duration < below)

    return match


def _created_between(after: datetime | None, before: datetime | None) -> Match:
    return lambda c: (
        (after is None or c.created_at > after) and (before is None or c.created_at < before)
    )


def _metadata_has(wanted: dict[str, Any]) -> Match:
    return lambda c: all(c.custom_metadata.get(k) == v for k, v in wanted.items())


def _filters(query: Any) -> tuple[int, list[Match]]:
    """The page size and the predicates the query asks for (``QueryError`` if invalid)."""
    matches: list[Match] = []

    def choice(name: str, allowed: Iterable[str]) -> None:
        if name in query:
            value = query[name]
            if value not in allowed:
                raise QueryError(f"Invalid {name}: {value!r}")
            matches.append(_field_equals(name, value))

    def number(name: str) -> float | None:
        if name not in query:
            return None
        try:
            return float(query[name])
        except ValueError:
            raise QueryError(f"Invalid {name}: not a number") from None

    def moment(name: str) -> datetime | None:
        if name not in query:
            return None
        try:
            return parse_iso(query[name])
        except ValueError:
            raise QueryError(f"Invalid {name}: not an ISO 8601 datetime") from None

    choice("status", STATUSES)
    choice("channel", CHANNELS)
    choice("direction", DIRECTIONS)
    for exact in ("agent_id", "agent_version_id"):
        if exact in query:
            matches.append(_field_equals(exact, query[exact]))
    for partial in ("user_id", "agent_number"):
        if partial in query:
            matches.append(_field_contains(partial, query[partial].lower()))
    if (above := number("duration_above")) is not None:
        matches.append(_duration_between(above, None))
    if (below := number("duration_below")) is not None:
        matches.append(_duration_between(None, below))
    if (after := moment("created_after")) is not None:
        matches.append(_created_between(after, None))
    if (before := moment("created_before")) is not None:
        matches.append(_created_between(None, before))
    if "custom_metadata" in query:
        try:
            wanted = json.loads(query["custom_metadata"])
        except json.JSONDecodeError:
            raise QueryError("Invalid custom_metadata: not JSON") from None
        if not isinstance(wanted, dict):
            raise QueryError("Invalid custom_metadata: must be a JSON object")
        matches.append(_metadata_has(wanted))
    if "cursor" in query:
        cursor = _decode_cursor(query["cursor"])
        matches.append(_created_between(None, cursor))
    limit = DEFAULT_PAGE_SIZE
    if "limit" in query:
        try:
            limit = int(query["limit"])
        except ValueError:
            raise QueryError("Invalid limit: not an integer") from None
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise QueryError(f"Invalid limit: must be between 1 and {MAX_PAGE_SIZE}")
    return limit, matches


def _decode_cursor(cursor: str) -> datetime:
    text = cursor.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_")
        return parse_iso(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise QueryError("Invalid cursor") from None

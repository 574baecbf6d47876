"""Async client for the Anyreach API: live conversations and listener tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from tui.anyreach.auth import ApiKey, auth_headers
from tui.anyreach.errors import (
    AnyreachError,
    ApiUnavailable,
    MissingOrganization,
    error_for_status,
)
from tui.anyreach.models import ACTIVE_STATUSES, Conversation, ConversationStatus, ListenerGrant
from tui.anyreach.retry import RetryPolicy, is_retryable_status, parse_retry_after, retry_delay

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.anyreach.ai"
CONVERSATIONS_PATH = "/core/conversations"
DEFAULT_RETRY = RetryPolicy()
MAX_DETAIL_CHARS = 300
# Listed in lifecycle order: when one id shows up under two statuses (it moved
# between our polls), the later status is the truer one.
ACTIVE_ORDER = (
    ConversationStatus.TRIGGERED,
    ConversationStatus.RINGING,
    ConversationStatus.IN_PROGRESS,
)


class AnyreachClient:
    """``async with AnyreachClient(url, key) as client: ...``

    ``retries`` is a :class:`RetryPolicy` or just the number of retries;
    ``timeout`` bounds one HTTP attempt, ``RetryPolicy.budget`` a whole call.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str,
        org_id: str | None = None,
        *,
        timeout: float = 10.0,
        retries: RetryPolicy | int = DEFAULT_RETRY,
    ) -> None:
        self._key = ApiKey(api_key)
        self.org_id = org_id or None
        if self._key.needs_org and not self.org_id:
            raise MissingOrganization()
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retry = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries)
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Accept": "application/json", "User-Agent": "anyreach-tui"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return (
            f"AnyreachClient(api_url={self.api_url!r}, org_id={self.org_id!r}, "
            f"api_key={self._key!r})"
        )

    async def __aenter__(self) -> AnyreachClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- endpoints -------------------------------------------------------------------

    async def listener_token(self, conversation_id: str) -> ListenerGrant:
        """A subscribe-only, hidden LiveKit token for the conversation's room."""
        path = f"{CONVERSATIONS_PATH}/{quote(conversation_id, safe='')}/listener-token"
        response = await self._request(
            "POST",
            path,
            json_body={},
            action=f"listen to conversation {conversation_id}",
            conversation_id=conversation_id,
        )
        body = self._json(response, "listener token")
        try:
            return ListenerGrant.model_validate(body)
        except ValidationError as exc:
            raise self._malformed("listener token", exc) from None

    async def conversations(
        self, status: str | None = None, *, limit: int = 100, **filters: Any
    ) -> AsyncIterator[Conversation]:
        """Every conversation matching the filters, newest first, page after page."""
        params = _query_params({"status": status, **filters})
        params["limit"] = str(limit)
        cursor: str | None = None
        while True:
            page_params = {**params, **({"cursor": cursor} if cursor else {})}
            response = await self._request(
                "GET", CONVERSATIONS_PATH, params=page_params, action="list conversations"
            )
            items = self._json(response, "conversation list")
            if not isinstance(items, list):
                raise self._malformed("conversation list", "not a JSON array")
            for raw in items:
                try:
                    yield Conversation.model_validate(raw)
                except ValidationError as exc:
                    raise self._malformed("conversation", exc) from None
            if len(items) < limit:
                return
            # The cursor is the API's own created_at text of the last item, so no
            # precision is lost by re-formatting a parsed datetime.
            next_cursor = base64.b64encode(str(items[-1]["created_at"]).encode()).decode()
            if next_cursor == cursor:
                raise self._malformed("conversation list", "the page cursor did not advance")
            cursor = next_cursor

    async def active_conversations(self, **filters: Any) -> list[Conversation]:
        """Triggered, ringing and in-progress conversations, one entry per id, newest first."""

        async def collect(status: ConversationStatus) -> list[Conversation]:
            return [c async for c in self.conversations(status, **filters)]

        try:
            # A TaskGroup, unlike gather, cancels the sibling polls when one fails.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(collect(status)) for status in ACTIVE_ORDER]
        except BaseExceptionGroup as failed:
            raise _first_error(failed) from None
        pages = [task.result() for task in tasks]
        merged: dict[str, Conversation] = {}
        for page in pages:  # later lifecycle statuses overwrite earlier ones
            for conversation in page:
                merged[conversation.id] = conversation
        active = [c for c in merged.values() if c.status in ACTIVE_STATUSES]
        return sorted(active, key=lambda c: c.created_at, reverse=True)

    # -- transport -------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        conversation_id: str | None = None,
    ) -> httpx.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.retry.budget
        backoff = self.retry.backoff()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            attempt_timeout = max(0.05, min(self.timeout, remaining))
            retry_after: float | None = None
            status: int | None = None
            detail: str | None = None
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=json_body,
                    headers=auth_headers(self._key, self.org_id),
                    timeout=attempt_timeout,
                )
            except httpx.TimeoutException:
                failure = f"no answer within {attempt_timeout:.1f} s"
            except httpx.TransportError as exc:
                failure = f"connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                log.debug("%s %s -> %s (attempt %d)", method, path, status, attempt)
                if status < 400:
                    return response
                detail = self._detail(response)
                if not is_retryable_status(status):
                    raise error_for_status(
                        status, detail, action=action, conversation_id=conversation_id
                    )
                failure = f"HTTP {status}" + (f": {detail}" if detail else "")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))

            elapsed = loop.time() - started
            if attempt > self.retry.max_retries:
                raise self._unavailable(action, failure, attempt, elapsed, status, detail)
            delay = retry_delay(backoff, retry_after)
            if loop.time() + delay >= deadline:
                why = failure
                if retry_after is not None:
                    why += f"; asked to retry after {retry_after:.0f} s"
                raise self._unavailable(action, why, attempt, elapsed, status, detail)
            log.info(
                "Anyreach API: %s %s failed (%s); retry %d in %.2f s",
                method,
                path,
                failure,
                attempt,
                delay,
            )
            await asyncio.sleep(delay)

    def _unavailable(
        self,
        action: str,
        failure: str,
        attempts: int,
        elapsed: float,
        status: int | None,
        detail: str | None,
    ) -> ApiUnavailable:
        host = urlsplit(self.api_url).netloc or self.api_url
        return ApiUnavailable(
            f"The Anyreach API at {host} is not available: could not {action} "
            f"({failure}) after {attempts} attempt{'s' if attempts != 1 else ''} "
            f"in {elapsed:.1f} s. Check the network and api_url; it will be tried again.",
            status=status,
            detail=detail,
            attempts=attempts,
        )

    def _detail(self, response: httpx.Response) -> str | None:
        """The server's ``detail``, shortened and with any echo of the key removed."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            text = response.text.strip()
        else:
            detail = body.get("detail") if isinstance(body, dict) else body
            if detail is None:
                return None
            text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        if not text:
            return None
        text = self._key.redact(text)
        if len(text) > MAX_DETAIL_CHARS:
            text = text[: MAX_DETAIL_CHARS - 1] + "…"
        return text

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._malformed(what, "not JSON") from None

    def _malformed(self, what: str, problem: object) -> AnyreachError:
        return AnyreachError(
            f"The Anyreach API sent a {what} this client cannot read ({problem}). "
            "Check that api_url points at the Anyreach API; if it does, please report this.",
        )


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report when concurrent polls failed: an API error before anything else."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return next((e for e in leaves if isinstance(e, AnyreachError)), leaves[0])


def _query_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """Filter values as the API expects them in the query string."""
    params: dict[str, str] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            params[name] = value.isoformat()
        elif isinstance(value, (dict, list)):
            params[name] = json.dumps(value, separators=(",", ":"))
        else:
            params[name] = str(value)
    return params

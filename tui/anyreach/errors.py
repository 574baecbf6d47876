"""Errors raised by the Anyreach client.

Every error carries the HTTP ``status`` (``None`` when no response was
received) and the server's ``detail``; its message says what a person should
do next.  No message ever contains the API key: the client never passes it in.

This is also the ONE classification of API failures: each error says what it
means for whoever asked (``kind``), whether asking again can help
(``retryable``), whether it means the call is over (``call_over``), and a
short text for a pane or a banner (``short``).  Callers decide on those,
never on class names.
"""

from __future__ import annotations

from enum import Enum

READ_TOKEN_SCOPES = ("conversations:read_sensitive", "conversations:manage")


class ErrorKind(Enum):
    KEY_REJECTED = "key_rejected"  # 401: no request with this key can succeed
    NO_SCOPE = "no_scope"  # 403: the key works but may not do this
    NOT_FOUND = "not_found"  # 404: unknown, or active with no room yet
    NOT_ACTIVE = "not_active"  # 409: the call is over (or never began)
    UNAVAILABLE = "unavailable"  # network, 5xx, 429, timeouts, after the client's retries
    UNEXPECTED = "unexpected"  # any other answer: an API change or a bug


class AnyreachError(Exception):
    """Base class: any failure talking to the Anyreach API."""

    kind = ErrorKind.UNEXPECTED
    # Asking again later may succeed (a 404 only while the call is known to be active).
    retryable = False
    short = "Unexpected answer from the Anyreach API"

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        if status is not None and self.kind is ErrorKind.UNEXPECTED:
            self.short = f"Unexpected answer from the Anyreach API ({status})"

    @property
    def call_over(self) -> bool:
        """The API says there is nothing (more) to hear: the conversation is not active."""
        return self.kind is ErrorKind.NOT_ACTIVE

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, detail={self.detail!r})"


class Unauthorized(AnyreachError):
    """401: the credential is missing, wrong, revoked, or a ``pat_`` lacks its organization."""

    kind = ErrorKind.KEY_REJECTED
    short = "API key rejected (401)"


class MissingOrganization(Unauthorized):
    """A ``pat_`` personal access token was given without an organization id.

    Raised before any request is made: the API would answer 401 anyway.
    """

    short = "A pat_ key needs an organization id (401)"

    def __init__(self) -> None:
        super().__init__(
            "A personal access token (pat_...) needs an organization id: set org_id "
            "(ANYREACH_ORG_ID) to the organization whose calls you want to monitor, "
            "or use an organization API key (ak_...) instead.",
            status=None,
            detail=None,
        )


class Forbidden(AnyreachError):
    """403: the credential is valid but its scopes do not allow the action."""

    kind = ErrorKind.NO_SCOPE
    short = "Key lacks scope conversations:read_sensitive or :manage (403)"


class ConversationNotFound(AnyreachError):
    """404: no such conversation, or it is active but its LiveKit room does not exist yet."""

    kind = ErrorKind.NOT_FOUND
    retryable = True  # only while the conversation is known (or assumed) to be active
    short = "Conversation not found (404)"


class ConversationNotActive(AnyreachError):
    """409: the conversation is not triggered, ringing or in progress (it ended or never began)."""

    kind = ErrorKind.NOT_ACTIVE
    short = "Call is over (409)"


class ApiUnavailable(AnyreachError):
    """The API could not be reached or kept failing (5xx, 429, timeouts) after retries."""

    kind = ErrorKind.UNAVAILABLE
    retryable = True
    short = "Anyreach API unavailable, retrying…"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        attempts: int = 0,
    ):
        super().__init__(message, status=status, detail=detail)
        self.attempts = attempts


def error_for_status(
    status: int, detail: str | None, *, action: str, conversation_id: str | None = None
) -> AnyreachError:
    """The error a person can act on for a non-retryable HTTP answer.

    ``action`` describes what was attempted ("list conversations", "listen to
    conversation X") and ``detail`` is the server's explanation, already redacted.
    """
    said = f" The server said: {detail.rstrip('.')}." if detail else ""
    subject = f"conversation {conversation_id}" if conversation_id else "the conversation"
    if status == 401:
        return Unauthorized(
            f"The Anyreach API rejected the API key (401) when trying to {action}.{said} "
            "Check api_key (ANYREACH_API_KEY): it may be mistyped, revoked or expired; "
            "a personal access token (pat_...) also needs org_id (ANYREACH_ORG_ID).",
            status=status,
            detail=detail,
        )
    if status == 403:
        scopes = " or ".join(READ_TOKEN_SCOPES)
        return Forbidden(
            f"The API key is valid but not allowed to {action} (403).{said} "
            f"Give the key the {scopes} scope in Anyreach, or use a key that has one.",
            status=status,
            detail=detail,
        )
    if status == 404:
        return ConversationNotFound(
            f"Could not {action}: {subject} does not exist, or its call has no LiveKit "
            f"room yet (404).{said} If the call has just started, try again in a few "
            "seconds; otherwise check the conversation id.",
            status=status,
            detail=detail,
        )
    if status == 409:
        return ConversationNotActive(
            f"Could not {action}: {subject} is not active (409), so there is nothing to "
            f"hear.{said} The call has ended or has not started yet.",
            status=status,
            detail=detail,
        )
    return AnyreachError(
        f"The Anyreach API refused to {action} ({status}).{said} This may be an API "
        "change or a bug in anyreach-tui: please report it with this message.",
        status=status,
        detail=detail,
    )

"""Errors a person can act on, with secrets kept out.

The native layer's connect errors quote the whole JWT ("401 Unauthorized -
invalid token: eyJ..., error: token is expired") and log it too.  Messages are
rewritten into plain sentences, and a logging filter redacts tokens from the
``livekit`` logger, since those records reach log files and screens.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

# One definition, shared with the log file's handler (re-exported for listen's users).
from tui.core.redact import REDACTED as REDACTED
from tui.core.redact import redact_secrets as redact_secrets


class SessionError(Exception):
    """Payload of the ``error`` event; also what a failed ``connect()`` raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"SessionError({self.message!r})"


class SessionClosedError(SessionError):
    """The session is single-use and can no longer connect."""


def describe_server(url: str) -> str:
    """``host:port`` of a URL, for messages (never its query string)."""
    try:
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1] or url
    except ValueError:
        return "the given address"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a LiveKit server address, or None if it looks usable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises on a non-numeric port
    except ValueError:
        return "The LiveKit URL is malformed."
    if parts.scheme not in ("ws", "wss", "http", "https"):
        return "The LiveKit URL must start with wss:// or ws:// (got something else)."
    if not parts.hostname:
        return "The LiveKit URL has no host name."
    del port
    return None


def connect_failure_message(native: str, url: str) -> str:
    """Plain-language reason for a native ``ConnectError`` message."""
    text = native.lower()
    where = describe_server(url)
    if "expired" in text:
        return "The listener token has expired: request a new one."
    if "signature is invalid" in text:
        return (
            "The listener token was not accepted: it was signed with a different key "
            f"than the LiveKit server at {where} uses."
        )
    if "401" in text or "unauthorized" in text or "invalid token" in text:
        return f"The LiveKit server at {where} rejected the listener token (unauthorized)."
    if "403" in text or "permission" in text:
        return "The listener token does not allow joining this call."
    if "parse the url" in text or "invalid url" in text:
        return "The LiveKit URL is malformed."
    if "connection refused" in text:
        return f"Could not reach the LiveKit server at {where}: connection refused."
    if "dns" in text or "failed to lookup" in text or "name or service" in text:
        return f"Could not find the LiveKit server {where} (name lookup failed)."
    if "timed out" in text or "timeout" in text:
        return f"The LiveKit server at {where} did not answer in time."
    return f"Could not join the call at {where}: {redact_secrets(native)}"


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()


def install_log_redaction() -> None:
    """Redact tokens from the livekit logger (idempotent)."""
    for name in ("livekit", "livekit.api"):
        target = logging.getLogger(name)
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)

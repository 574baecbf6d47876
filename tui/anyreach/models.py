"""Data returned by the Anyreach API, as pydantic models.

The models accept unknown fields (the API may add some) and missing optional
ones, so a newer server never breaks an older dashboard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ConversationStatus(StrEnum):
    TOKEN_CREATED = "token_created"
    TRIGGERED = "triggered"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"
    UNANSWERED = "unanswered"

    @property
    def is_active(self) -> bool:
        """Active as the listener-token endpoint counts it (``token_created`` is not)."""
        return self in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


ACTIVE_STATUSES = frozenset(
    {ConversationStatus.TRIGGERED, ConversationStatus.RINGING, ConversationStatus.IN_PROGRESS}
)
TERMINAL_STATUSES = frozenset(
    {
        ConversationStatus.COMPLETED,
        ConversationStatus.FAILED,
        ConversationStatus.CANCELLED,
        ConversationStatus.TRANSFERRED,
        ConversationStatus.UNANSWERED,
    }
)


def aware_utc(value: datetime) -> datetime:
    """The API speaks UTC; a timestamp without an offset is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class AgentRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None


class Conversation(BaseModel):
    """One conversation (call, web session, email or text thread)."""

    model_config = ConfigDict(extra="allow")

    id: str
    # A status this client does not know yet stays a plain string rather than failing.
    status: ConversationStatus | str = Field(union_mode="left_to_right")
    created_at: datetime
    organization_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    agent_version_id: str | None = None
    agent: AgentRef | None = None
    agent_number: str | None = None
    channel: str | None = None
    direction: str | None = None
    duration: float | None = None
    user_turn_count: int | None = None
    updated_at: datetime | None = None
    summary: str | None = None
    custom_metadata: dict[str, Any] | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return aware_utc(value) if value is not None else None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def agent_name(self) -> str | None:
        return self.agent.name if self.agent else None

    @property
    def is_guest(self) -> bool:
        """Anonymous web visitors have ``user_id`` values starting with ``guest_``."""
        return bool(self.user_id and self.user_id.startswith("guest_"))


class ListenerGrant(BaseModel):
    """A subscribe-only LiveKit token for one conversation's room."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str
    token: str = Field(repr=False)  # a bearer secret: never in reprs or logs
    room_name: str
    expires_at: datetime

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return aware_utc(value)

    def expires_in(self, now: datetime | None = None) -> float:
        """Seconds until the token expires (negative once it has)."""
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

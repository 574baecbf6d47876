"""HTTP client for the Anyreach API (no UI): live conversations and listener tokens."""

from tui.anyreach.client import DEFAULT_API_URL, AnyreachClient
from tui.anyreach.errors import (
    AnyreachError,
    ApiUnavailable,
    ConversationNotActive,
    ConversationNotFound,
    ErrorKind,
    Forbidden,
    MissingOrganization,
    Unauthorized,
)
from tui.anyreach.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    AgentRef,
    Conversation,
    ConversationStatus,
    ListenerGrant,
)
from tui.anyreach.retry import RetryPolicy

__all__ = [
    "ACTIVE_STATUSES",
    "DEFAULT_API_URL",
    "TERMINAL_STATUSES",
    "AgentRef",
    "AnyreachClient",
    "AnyreachError",
    "ApiUnavailable",
    "Conversation",
    "ConversationNotActive",
    "ConversationNotFound",
    "ConversationStatus",
    "ErrorKind",
    "Forbidden",
    "ListenerGrant",
    "MissingOrganization",
    "RetryPolicy",
    "Unauthorized",
]

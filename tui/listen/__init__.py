"""Listen layer: one silent, subscribe-only session per monitored call (no UI here)."""

from tui.listen.audio import AudioOutput
from tui.listen.errors import SessionClosedError, SessionError
from tui.listen.grants import check_listener_token
from tui.listen.levels import AudioLevel
from tui.listen.session import (
    STATE_CONNECTED,
    STATE_CONNECTING,
    STATE_DISCONNECTED,
    STATE_IDLE,
    AgentDisconnected,
    ListenSession,
    SessionState,
    listen,
)
from tui.listen.transcripts import Transcript

__all__ = [
    "STATE_CONNECTED",
    "STATE_CONNECTING",
    "STATE_DISCONNECTED",
    "STATE_IDLE",
    "AgentDisconnected",
    "AudioLevel",
    "AudioOutput",
    "ListenSession",
    "SessionClosedError",
    "SessionError",
    "SessionState",
    "Transcript",
    "check_listener_token",
    "listen",
]

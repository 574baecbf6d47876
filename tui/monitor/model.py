"""The UI-free model of the monitored calls.

`Dashboard` holds the calls in display order plus what the supervisor chose (focus,
listening, the mix and each call's volume, filter, zoom, wallboard).  Each
`MonitoredCall` holds what is known about one conversation and its listen session.
Session events are applied by the call's updater (`tui.monitor.apply`) or, in tests,
directly; every change is announced to observers as a small `Change` so a UI can
batch its repaints and repaint only what changed.  Nothing here does I/O, imports a
UI library, or reads the wall clock except through the injectable `clock`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Literal, NamedTuple

from tui.listen import SessionState
from tui.monitor.health import HealthState, attention_score

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ChangeKind = Literal[
    "calls",  # a call was added or removed
    "call",  # a call's header changed: info, state, badge, error
    "transcript",  # a call's transcript changed
    "level",  # a call's audio level changed visibly
    "focus",
    "listening",
    "filter",
    "zoom",
    "wallboard",
    "alert",  # a keyword fired in a call's transcript (ring the bell once)
    "banner",  # the dashboard-wide banner (e.g. discovery failing) changed
    "attention",  # a call's attention score, or the attention order, changed
    "mix",  # a call joined or left the mix, or a call's volume changed
]

# Audio louder than this (RMS, dBFS) counts as someone speaking; for the wallboard's
# highlight, a pane stays "speaking" for SPEAKING_HOLD after the last loud reading so
# the highlight does not flicker between words.
SPEAKING_THRESHOLD_DBFS = -45.0
SPEAKING_HOLD = timedelta(seconds=1.5)
SILENCE_DBFS = -100.0
DEFAULT_MAX_SEGMENTS = 500

# Mix mode: the focused call plays at the centre and the mix's other calls alternately
# left and right of it, by their order in the mix (the first added is on the left), so
# a call keeps its side while focus moves.  0.7, not 1: with the router's pan law that
# is 12.4 dB between the ears, apart enough to tell calls by side, and each ear still
# hears something of every call (one call alone in one ear tires on headphones).
MIX_PAN = 0.7
VOLUME_DEFAULT = 100  # percent of the call's level as received
VOLUME_STEP = 10
VOLUME_MAX = 150  # louder clips sooner than it helps: a quiet call is what needs it


def utc_now() -> datetime:
    return datetime.now(UTC)


class Placement(NamedTuple):
    """Where a heard call plays: the audio router's ``(gain, pan)``."""

    gain: float  # 1.0: as received
    pan: float  # -1 left, 0 centre, +1 right


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    call_id: str | None = None


Observer = Callable[[Change], None]


def _field(source: Any, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class ConversationInfo:
    """What the API says about a conversation (all optional: a pane may start on an id)."""

    conversation_id: str
    user_id: str | None = None
    agent_name: str | None = None
    channel: str | None = None
    direction: str | None = None
    started_at: datetime | None = None
    status: str | None = None

    @property
    def caller(self) -> str:
        """The caller as a supervisor should read it: anonymous web guests are "Guest"."""
        if not self.user_id:
            return "Unknown caller"
        if self.user_id.startswith("guest_"):
            return "Guest"
        return self.user_id

    @classmethod
    def from_api(cls, conversation: Any) -> ConversationInfo:
        """Build from an API conversation, given as a dict or an object with attributes."""
        agent = _field(conversation, "agent")
        agent_name = _field(agent, "name") if agent is not None else None
        return cls(
            conversation_id=str(_field(conversation, "id")),
            user_id=_field(conversation, "user_id"),
            agent_name=agent_name,
            channel=_field(conversation, "channel"),
            direction=_field(conversation, "direction"),
            started_at=_parse_time(_field(conversation, "created_at")),
            status=_field(conversation, "status"),
        )


@dataclass
class Segment:
    """One transcript segment.  Interim text is replaced in place until it is final."""

    id: str
    role: str  # "agent" | "user"
    text: str
    final: bool
    first_seen: datetime
    revision: int = 0
    alert: bool = False  # a keyword alert fired in this line: highlight it


class Transcript:
    """Segments keyed by id, in order of first appearance, with a bounded history."""

    def __init__(self, max_segments: int = DEFAULT_MAX_SEGMENTS) -> None:
        self._segments: OrderedDict[str, Segment] = OrderedDict()
        self._max_segments = max_segments
        self.revision = 0  # bumped on every change, so a view can tell it is stale

    def __len__(self) -> int:
        return len(self._segments)

    @property
    def segments(self) -> list[Segment]:
        return list(self._segments.values())

    def get(self, segment_id: str) -> Segment | None:
        return self._segments.get(segment_id)

    def apply(self, segment_id: str, role: str, text: str, final: bool, at: datetime) -> bool:
        """Add or update a segment; return whether anything visible changed."""
        existing = self._segments.get(segment_id)
        if existing is None:
            self._segments[segment_id] = Segment(segment_id, role, text, final, at)
            while len(self._segments) > self._max_segments:
                self._segments.popitem(last=False)
        else:
            if existing.final and not final:
                # A late interim for a settled segment (e.g. replayed after a
                # reconnect) must not turn settled words back into guesses.
                return False
            if existing.text == text and existing.final == final and existing.role == role:
                return False
            existing.text, existing.final, existing.role = text, final, role
            existing.revision += 1
        self.revision += 1
        return True

    def contains(self, needle_casefolded: str) -> bool:
        return any(needle_casefolded in s.text.casefold() for s in self._segments.values())


class BadgeKind(Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    WAITING = "waiting"
    ENDED = "ended"
    ERROR = "error"


@dataclass(frozen=True)
class Badge:
    text: str
    kind: BadgeKind


@dataclass(frozen=True)
class AudioLevelReading:
    peak_dbfs: float = SILENCE_DBFS
    rms_dbfs: float = SILENCE_DBFS


class MonitoredCall:
    """One conversation being monitored: its info, session state and transcript."""

    def __init__(
        self,
        conversation_id: str,
        info: ConversationInfo | None,
        *,
        clock: Clock,
        notify: Observer,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
    ) -> None:
        self.conversation_id = conversation_id
        self.info = info or ConversationInfo(conversation_id)
        self.state: SessionState = "idle"
        self.error: str | None = None
        self.ended = False
        self.waiting = False  # the API says the room is not ready yet (404 while active)
        self.ever_connected = False
        self.alerted = False  # a keyword alert fired in this call: flag the pane
        self.health = HealthState()  # agent-health flags (tui.monitor.health)
        self.level = AudioLevelReading()
        self.last_voice_at: datetime | None = None
        self.transcript = Transcript(max_segments)
        self.added_at = clock()
        self._clock = clock
        self._notify = notify

    def __repr__(self) -> str:
        return f"MonitoredCall({self.conversation_id!r}, state={self.state!r})"

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- derived, for display -------------------------------------------------

    @property
    def badge(self) -> Badge:
        if self.error is not None:
            return Badge(self.error, BadgeKind.ERROR)
        if self.ended:
            return Badge("Ended", BadgeKind.ENDED)
        if self.waiting:
            return Badge("Waiting for room…", BadgeKind.WAITING)
        if self.state == "connected":
            return Badge("LIVE", BadgeKind.LIVE)
        if self.ever_connected:
            # A session that was connected and dropped or is connecting again: the
            # follower rejoins while the call is active (the ends are set above).
            return Badge("Reconnecting…", BadgeKind.RECONNECTING)
        return Badge("Connecting…", BadgeKind.CONNECTING)

    @property
    def is_live(self) -> bool:
        return self.state == "connected" and not self.ended and self.error is None

    def duration(self) -> timedelta:
        start = self.info.started_at or self.added_at
        return max(timedelta(0), self._clock() - start)

    def speaking(self) -> bool:
        if self.last_voice_at is None or not self.is_live:
            return False
        return self._clock() - self.last_voice_at <= SPEAKING_HOLD

    @property
    def attention(self) -> int:
        """How urgently this call needs the supervisor (0: not at all), from its flags."""
        return attention_score(self.health, alerted=self.alerted, ended=self.ended)

    def matches(self, needle: str) -> bool:
        """Whether the filter text appears in the caller, agent or transcript."""
        folded = needle.casefold().strip()
        if not folded:
            return True
        fields = (self.info.caller, self.info.user_id or "", self.info.agent_name or "")
        return any(folded in f.casefold() for f in fields) or self.transcript.contains(folded)

    # -- updates (from session events or the API) -----------------------------

    def set_info(self, info: ConversationInfo) -> None:
        if info != self.info:
            self.info = info
            self._notify(Change("call", self.conversation_id))

    def set_state(self, state: SessionState) -> None:
        if state == self.state:
            return
        self.state = state
        if state == "connected":
            self.ever_connected = True
            self.waiting = False
            self.error = None
        self._notify(Change("call", self.conversation_id))

    def add_transcript(self, segment_id: str, role: str, text: str, final: bool) -> None:
        if self.transcript.apply(segment_id, role, text, final, self._clock()):
            self._notify(Change("transcript", self.conversation_id))

    def set_level(self, peak_dbfs: float, rms_dbfs: float) -> None:
        reading = AudioLevelReading(peak_dbfs, rms_dbfs)
        if rms_dbfs >= SPEAKING_THRESHOLD_DBFS:
            self.last_voice_at = self._clock()
        # Only whole-dB steps can show on a meter; smaller ones would only cost repaints.
        visible_change = round(reading.rms_dbfs) != round(self.level.rms_dbfs) or round(
            reading.peak_dbfs
        ) != round(self.level.peak_dbfs)
        self.level = reading
        if visible_change:
            self._notify(Change("level", self.conversation_id))

    def set_speaking(self, speaking: bool) -> None:
        """Someone talks, by a source other than the level (the server's active speakers)."""
        was = self.speaking()
        if speaking:
            self.last_voice_at = self._clock()
        if self.speaking() != was:
            self._notify(Change("level", self.conversation_id))

    def set_health(self, health: HealthState) -> None:
        if health == self.health:
            return
        before = self.attention
        self.health = health
        self._notify(Change("call", self.conversation_id))
        if self.attention != before:
            self._notify(Change("attention", self.conversation_id))

    def set_error(self, message: str | None) -> None:
        if message != self.error:
            self.error = message
            self._notify(Change("call", self.conversation_id))

    def set_waiting(self, waiting: bool) -> None:
        if waiting != self.waiting:
            self.waiting = waiting
            self._notify(Change("call", self.conversation_id))

    def mark_ended(self) -> None:
        if not self.ended:
            self.ended = True
            self.level = AudioLevelReading()
            self._notify(Change("call", self.conversation_id))

    def flag_alert(self, segment_id: str) -> bool:
        """A keyword fired in a segment: highlight its line, flag the pane (once per line).

        Returns whether it flagged now (False: no such line, or flagged before).
        """
        segment = self.transcript.get(segment_id)
        if segment is None or segment.alert:
            return False
        segment.alert = True
        segment.revision += 1
        self.transcript.revision += 1
        before, self.alerted = self.attention, True
        self._notify(Change("transcript", self.conversation_id))
        self._notify(Change("call", self.conversation_id))
        self._notify(Change("alert", self.conversation_id))
        if self.attention != before:
            self._notify(Change("attention", self.conversation_id))
        return True

    def reset_for_reconnect(self) -> None:
        """A new session will be attached: clear the end/error, keep the transcript."""
        self.ended = False
        self.error = None
        self._notify(Change("call", self.conversation_id))


class Dashboard:
    """All monitored calls, in display order, and the supervisor's choices about them."""

    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        wallboard: bool = False,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
    ) -> None:
        self.clock = clock
        self._calls: dict[str, MonitoredCall] = {}
        self._observers: list[Observer] = []
        self._max_segments = max_segments
        self.focused_id: str | None = None
        self.listening = False  # off at start: nobody hears a call without asking
        self.filter_text = ""
        self.zoomed = False
        self.wallboard = wallboard
        self.banner: str | None = None  # one dashboard-wide problem, e.g. discovery failing
        self._attention_order: bool | None = None  # None: by attention on the wallboard only
        self.mix: tuple[str, ...] = ()  # calls heard beside the focused one, in order added
        self._volumes: dict[str, int] = {}  # percent, for calls not at VOLUME_DEFAULT

    # -- observers -------------------------------------------------------------

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def _notify(self, change: Change) -> None:
        # One broken observer must not silence the others, nor fail whoever changed
        # the model (a session event, discovery, a key press).
        for observer in list(self._observers):
            try:
                observer(change)
            except Exception:
                logger.exception("observer of %s failed on %s", change.call_id, change.kind)

    # -- calls -------------------------------------------------------------------

    @property
    def calls(self) -> list[MonitoredCall]:
        return list(self._calls.values())

    def get(self, conversation_id: str) -> MonitoredCall | None:
        return self._calls.get(conversation_id)

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._calls

    def add_call(self, conversation_id: str, info: ConversationInfo | None = None) -> MonitoredCall:
        """Add a call (or return the existing one: a conversation is shown once)."""
        existing = self._calls.get(conversation_id)
        if existing is not None:
            if info is not None:
                existing.set_info(info)
            return existing
        call = MonitoredCall(
            conversation_id,
            info,
            clock=self.clock,
            notify=self._call_changed,
            max_segments=self._max_segments,
        )
        self._calls[conversation_id] = call
        self._notify(Change("calls", conversation_id))
        if self.focused_id is None and self._is_visible(call):
            # Focus follows the first call so keys act on something; listening stays
            # off, so an automatic focus never makes a call audible.
            self.focus(conversation_id)
        return call

    def remove_call(self, conversation_id: str) -> None:
        if conversation_id not in self._calls:
            return
        visible_before = [c.conversation_id for c in self.visible_calls()]
        del self._calls[conversation_id]
        # Gone from the mix and its volume forgotten before anyone hears of it: the
        # "calls" change is the one that tells what is heard now.
        self.mix = tuple(cid for cid in self.mix if cid != conversation_id)
        self._volumes.pop(conversation_id, None)
        self._notify(Change("calls", conversation_id))
        if self.focused_id == conversation_id:
            self.focused_id = None
            remaining = [c.conversation_id for c in self.visible_calls()]
            if remaining:
                index = (
                    visible_before.index(conversation_id)
                    if (conversation_id in visible_before)
                    else 0
                )
                self.focus(remaining[min(index, len(remaining) - 1)])
            else:
                if self.zoomed:
                    self.set_zoom(False)
                self._notify(Change("focus"))

    def _call_changed(self, change: Change) -> None:
        """A call's own change; one that ended leaves the mix (nothing of it plays)."""
        self._notify(change)
        cid = change.call_id
        if change.kind == "call" and cid in self.mix:
            call = self._calls.get(cid)
            if call is not None and call.ended:
                self.mix = tuple(c for c in self.mix if c != cid)
                self._notify(Change("mix", cid))

    def _is_visible(self, call: MonitoredCall) -> bool:
        return call.matches(self.filter_text)

    def visible_calls(self) -> list[MonitoredCall]:
        """The calls the filter lets through, in display order (zoom is the UI's job).

        In attention order the most urgent come first; equals keep the order they came in.
        """
        visible = [c for c in self._calls.values() if self._is_visible(c)]
        if self.sort_by_attention:
            visible.sort(key=lambda c: -c.attention)
        return visible

    @property
    def sort_by_attention(self) -> bool:
        """Whether the grid is in attention order: chosen by ``s``, else on the wallboard."""
        return self.wallboard if self._attention_order is None else self._attention_order

    def set_sort_by_attention(self, on: bool) -> None:
        changed = on != self.sort_by_attention
        self._attention_order = on  # chosen: the wallboard's default no longer applies
        if changed:
            self._notify(Change("attention"))

    def toggle_sort_by_attention(self) -> None:
        self.set_sort_by_attention(not self.sort_by_attention)

    def needing_attention(self) -> int:
        """How many calls have a flag or an alert (for the status line)."""
        return sum(1 for call in self._calls.values() if call.attention > 0)

    def counts(self) -> dict[str, int]:
        """How many calls are in each badge kind (for a status line)."""
        result = {kind.value: 0 for kind in BadgeKind}
        for call in self._calls.values():
            result[call.badge.kind.value] += 1
        return result

    # -- focus -------------------------------------------------------------------

    @property
    def focused(self) -> MonitoredCall | None:
        return self._calls.get(self.focused_id) if self.focused_id else None

    def focus(self, conversation_id: str | None) -> None:
        if conversation_id is not None and conversation_id not in self._calls:
            return
        if conversation_id != self.focused_id:
            self.focused_id = conversation_id
            self._notify(Change("focus", conversation_id))

    def focus_index(self, index: int) -> None:
        """Focus the visible pane at ``index`` (0-based); out of range does nothing."""
        visible = self.visible_calls()
        if 0 <= index < len(visible):
            self.focus(visible[index].conversation_id)

    def _focused_index(self, visible: list[MonitoredCall]) -> int | None:
        for i, call in enumerate(visible):
            if call.conversation_id == self.focused_id:
                return i
        return None

    def focus_step(self, step: int) -> None:
        """Cycle focus through the visible panes (tab / shift+tab)."""
        visible = self.visible_calls()
        if not visible:
            return
        current = self._focused_index(visible)
        index = 0 if current is None else (current + step) % len(visible)
        self.focus(visible[index].conversation_id)

    def focus_move(self, dx: int, dy: int, columns: int) -> None:
        """Move focus in a grid of ``columns`` columns; stops at the edges."""
        visible = self.visible_calls()
        if not visible:
            return
        current = self._focused_index(visible)
        if current is None:
            self.focus(visible[0].conversation_id)
            return
        columns = max(1, columns)
        row, col = divmod(current, columns)
        row, col = row + dy, col + dx
        if col < 0 or col >= columns or row < 0:
            return
        target = row * columns + col
        if target >= len(visible):
            if dy > 0 and row * columns < len(visible):
                target = len(visible) - 1  # moving down onto a short last row
            else:
                return
        self.focus(visible[target].conversation_id)

    # -- listening -----------------------------------------------------------------

    @property
    def heard_id(self) -> str | None:
        """The focused call while listening is on: the centre of what is heard."""
        if self.listening and not self.wallboard:
            return self.focused_id
        return None

    @property
    def placements(self) -> dict[str, Placement]:
        """Every call heard now and where it plays: what the router plays, the audit records.

        The focused call at the centre, the mix's other calls at their sides, each at
        its volume; only while listening is on, never on the wallboard.  A call that is
        over, or at 0 %, is not heard.  The focused call comes first, then the mix's order.
        """
        if self.heard_id is None:
            return {}
        placed: dict[str, Placement] = {}
        for cid in (self.heard_id, *self.mix):
            call = self._calls.get(cid)
            pan = self.pan(cid)
            volume = self.volume(cid)
            if call is not None and not call.ended and pan is not None and volume > 0:
                placed.setdefault(cid, Placement(volume / 100, pan))
        return placed

    @property
    def heard(self) -> frozenset[str]:
        """The ids of the calls heard now (``placements`` without where)."""
        return frozenset(self.placements)

    def pan(self, conversation_id: str) -> float | None:
        """Where the call plays, or would while listening: 0 focused, +-MIX_PAN in the mix.

        None: neither focused nor in the mix.
        """
        if conversation_id == self.focused_id:
            return 0.0
        if conversation_id not in self.mix:
            return None
        return -MIX_PAN if self.mix.index(conversation_id) % 2 == 0 else MIX_PAN

    def toggle_mix(self, conversation_id: str | None = None) -> None:
        """The call (default: the focused one) joins the mix, or leaves it.

        A call that is over cannot join: nothing of it would play.
        """
        cid = conversation_id or self.focused_id
        call = self._calls.get(cid) if cid is not None else None
        if cid is None or call is None:
            return
        if cid in self.mix:
            self.mix = tuple(c for c in self.mix if c != cid)
        elif call.ended:
            return
        else:
            self.mix = (*self.mix, cid)
        self._notify(Change("mix", cid))

    def volume(self, conversation_id: str) -> int:
        """The call's volume in percent (VOLUME_DEFAULT until changed)."""
        return self._volumes.get(conversation_id, VOLUME_DEFAULT)

    def change_volume(self, steps: int, conversation_id: str | None = None) -> None:
        """Louder (steps > 0) or quieter by VOLUME_STEP each, within 0..VOLUME_MAX percent."""
        cid = conversation_id or self.focused_id
        if cid is None or cid not in self._calls:
            return
        before = self.volume(cid)
        after = min(VOLUME_MAX, max(0, before + steps * VOLUME_STEP))
        if after == before:
            return
        if after == VOLUME_DEFAULT:
            del self._volumes[cid]
        else:
            self._volumes[cid] = after
        self._notify(Change("mix", cid))

    def set_listening(self, listening: bool) -> None:
        if self.wallboard:
            listening = False  # the wallboard is read-only: it never plays audio
        if listening != self.listening:
            self.listening = listening
            self._notify(Change("listening"))

    def toggle_listening(self) -> None:
        self.set_listening(not self.listening)

    # -- view options ----------------------------------------------------------------

    def set_filter(self, text: str) -> None:
        if text == self.filter_text:
            return
        self.filter_text = text
        self._notify(Change("filter"))
        visible = self.visible_calls()
        if self.focused_id not in {c.conversation_id for c in visible}:
            self.focus(visible[0].conversation_id if visible else None)

    def set_zoom(self, zoomed: bool) -> None:
        if zoomed and self.focused is None:
            return
        if zoomed != self.zoomed:
            self.zoomed = zoomed
            self._notify(Change("zoom"))

    def set_banner(self, banner: str | None) -> None:
        if banner != self.banner:
            self.banner = banner
            self._notify(Change("banner"))

    def set_wallboard(self, wallboard: bool) -> None:
        if wallboard == self.wallboard:
            return
        self.wallboard = wallboard
        if wallboard:
            self.set_listening(False)
        self._notify(Change("wallboard"))

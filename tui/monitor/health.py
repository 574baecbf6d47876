"""Agent-health signals of one call, from what every call receives (UI-free).

A `HealthTracker` is fed the follower's transcript events (when each role's
segment first appears, when it settles), the call's live state and, where there is
one, a "someone is speaking" reading (the room's active speakers, as
``MonitoredCall.last_voice_at``); a periodic ``tick`` notices silences.  Nothing
here reads the wall clock but through the injected ``clock``, and nothing decodes
audio: an unheard call is judged as well as the heard one.

The flags, each reported once as a `HealthFlag` when it is raised:

- ``slow``: the agent's response time, from the settling of the caller's last
  final segment to the first appearance of the agent's next segment, is over
  ``response_s`` (value: that response time, seconds).  Every response time is
  kept: the pane shows the last and the call's median.
- ``dead_air``: nobody has spoken (no transcript activity of either role, no
  speaking reading) for more than ``dead_air_s`` while the call is live; one flag
  per silent stretch (value: seconds of silence when flagged; the state keeps
  growing the length until someone speaks).
- ``talk_over``: a caller segment and an agent segment both still open (first seen,
  not settled) for more than ``talk_over_s`` at once; counted once per overlap
  (value: the call's count so far).
- ``loop``: the agent says the same or nearly the same normalised sentence (case,
  punctuation and spacing ignored; similarity at least ``LOOP_SIMILARITY``;
  sentences of fewer than ``LOOP_MIN_WORDS`` words ignored) for the
  ``loop_repeats``-th time or more (value: how many times it was said).
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from difflib import SequenceMatcher
from typing import Literal

from tui.monitor.follow import Ended, FollowEvent, StateChanged, TranscriptReceived

FlagKind = Literal["slow", "dead_air", "talk_over", "loop"]
FLAG_KINDS: tuple[FlagKind, ...] = ("slow", "dead_air", "talk_over", "loop")

DEFAULT_RESPONSE_S = 3.0
DEFAULT_DEAD_AIR_S = 8.0
DEFAULT_TALK_OVER_S = 1.5
DEFAULT_LOOP_REPEATS = 3
LOOP_SIMILARITY = 0.85  # difflib ratio of two normalised sentences: "nearly the same"
LOOP_MIN_WORDS = 3  # "Okay." or "Yes, sure." said three times is no loop

# Attention weights: what a supervisor should look at first.
ATTENTION_WEIGHTS: dict[str, int] = {
    "dead_air_now": 50,  # a silence going on right now: the caller may be hanging up
    "loop": 40,
    "alert": 30,
    "slow": 20,
    "talk_over": 10,  # plus one per talk-over beyond the first
    "dead_air_past": 5,
}

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class HealthThresholds:
    response_s: float = DEFAULT_RESPONSE_S
    dead_air_s: float = DEFAULT_DEAD_AIR_S
    talk_over_s: float = DEFAULT_TALK_OVER_S
    loop_repeats: int = DEFAULT_LOOP_REPEATS


@dataclass(frozen=True)
class HealthFlag:
    """One flag raised: its kind, its value (see the module's docstring) and when."""

    kind: FlagKind
    value: float
    at: datetime


@dataclass(frozen=True)
class HealthState:
    """What the pane shows of a call's health (immutable: a new one on every change)."""

    response_times: tuple[float, ...] = ()
    slow: bool = False  # the last response time is over the threshold
    dead_air_s: float | None = None  # the current (or, once over, the last) flagged silence
    dead_air_now: bool = False  # that silence is still going on
    talk_overs: int = 0
    loops: int = 0  # loop flags raised

    @property
    def last_response_s(self) -> float | None:
        return self.response_times[-1] if self.response_times else None

    @property
    def median_response_s(self) -> float | None:
        return statistics.median(self.response_times) if self.response_times else None

    @property
    def flagged(self) -> bool:
        return self.slow or self.dead_air_s is not None or self.talk_overs > 0 or self.loops > 0


def attention_score(health: HealthState, *, alerted: bool = False, ended: bool = False) -> int:
    """How urgently a call needs the supervisor: 0 is not at all; higher first."""
    if ended:
        return 0
    w = ATTENTION_WEIGHTS
    score = 0
    if health.dead_air_now:
        score += w["dead_air_now"]
    elif health.dead_air_s is not None:
        score += w["dead_air_past"]
    if health.loops:
        score += w["loop"]
    if alerted:
        score += w["alert"]
    if health.slow:
        score += w["slow"]
    if health.talk_overs:
        score += w["talk_over"] + health.talk_overs - 1
    return score


_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def normalise_sentence(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


def sentences(text: str) -> list[str]:
    """The normalised sentences of an utterance, without the too-short ones."""
    result = []
    for sentence in _SENTENCE_END.split(text):
        normal = normalise_sentence(sentence)
        if len(normal.split()) >= LOOP_MIN_WORDS:
            result.append(normal)
    return result


@dataclass
class _Said:
    sentence: str
    times: int = 1


@dataclass
class _Open:
    """Segments of one role first seen and not yet settled: since when."""

    ids: dict[str, datetime] = field(default_factory=dict)

    def since(self) -> datetime | None:
        return min(self.ids.values()) if self.ids else None


class HealthTracker:
    """The health of one call; every ``on_*`` and ``tick`` returns the flags it raised."""

    def __init__(self, thresholds: HealthThresholds | None = None, *, clock: Clock) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self.state = HealthState()
        self._clock = clock
        self._live = False
        self._last_activity: datetime | None = None  # someone spoke, or the call went live
        self._open: dict[str, _Open] = {"agent": _Open(), "user": _Open()}
        self._seen: set[str] = set()  # segment ids seen (first appearance counted once)
        self._settled: set[str] = set()
        self._awaiting_reply_since: datetime | None = None  # the caller's last final words
        self._overlap_since: datetime | None = None
        self._overlap_counted = False
        self._said: list[_Said] = []

    # -- inputs -------------------------------------------------------------------

    def on_live(self, live: bool) -> list[HealthFlag]:
        """The call is (or stops being) connected; silence counts only while live."""
        now = self._clock()
        flags = self._check(now)
        if live and not self._live:
            self._last_activity = now
        self._live = live
        if not live:
            self._end_silence()
            for role in self._open.values():
                role.ids.clear()  # a dropped session settles nothing: forget what was open
            self._overlap_since, self._overlap_counted = None, False
        return flags

    def on_transcript(self, segment_id: str, role: str, text: str, final: bool) -> list[HealthFlag]:
        now = self._clock()
        flags = self._check(now)  # a talk-over that lasted long enough before this event
        if segment_id in self._settled:
            return flags  # a replay after a rejoin: said before
        self._activity(now)
        first = segment_id not in self._seen
        self._seen.add(segment_id)
        if first and role == "agent" and self._awaiting_reply_since is not None:
            flags += self._response((now - self._awaiting_reply_since).total_seconds(), now)
        if first and role == "user":
            self._awaiting_reply_since = None  # the caller speaks again: wait for the final
        opened = self._open.get(role)
        if final:
            self._settled.add(segment_id)
            if opened is not None:
                opened.ids.pop(segment_id, None)
            if role == "user":
                self._awaiting_reply_since = now
            elif role == "agent":
                flags += self._loop(text, now)
        elif opened is not None and segment_id not in opened.ids:
            opened.ids[segment_id] = now
        flags += self._overlap(now)
        return flags

    def on_speaking(self, last_voice_at: datetime | None) -> list[HealthFlag]:
        """The room says someone spoke at ``last_voice_at`` (None: not yet)."""
        if last_voice_at is not None and (
            self._last_activity is None or last_voice_at > self._last_activity
        ):
            self._activity(last_voice_at)
        return self.tick()

    def tick(self) -> list[HealthFlag]:
        """Time passed: a silence or an overlap may have grown past its threshold."""
        return self._check(self._clock())

    # -- the rules --------------------------------------------------------------------

    def _check(self, now: datetime) -> list[HealthFlag]:
        flags = self._overlap(now)
        if not self._live or self._last_activity is None:
            return flags
        silent = (now - self._last_activity).total_seconds()
        if any(role.ids for role in self._open.values()):
            return flags  # a segment is being said: not silence
        if self.state.dead_air_now:
            if int(silent) != int(self.state.dead_air_s or 0):
                self.state = replace(self.state, dead_air_s=silent)
        elif silent > self.thresholds.dead_air_s:
            self.state = replace(self.state, dead_air_s=silent, dead_air_now=True)
            flags.append(HealthFlag("dead_air", round(silent, 1), now))
        return flags

    def _activity(self, now: datetime) -> None:
        if self.state.dead_air_now:
            silent = (now - self._last_activity).total_seconds() if self._last_activity else 0.0
            self.state = replace(self.state, dead_air_s=silent, dead_air_now=False)
        self._last_activity = now

    def _end_silence(self) -> None:
        if self.state.dead_air_now:
            self.state = replace(self.state, dead_air_now=False)

    def _response(self, seconds: float, now: datetime) -> list[HealthFlag]:
        self._awaiting_reply_since = None
        seconds = max(0.0, seconds)
        slow = seconds > self.thresholds.response_s
        self.state = replace(
            self.state, response_times=(*self.state.response_times, seconds), slow=slow
        )
        return [HealthFlag("slow", round(seconds, 1), now)] if slow else []

    def _overlap(self, now: datetime) -> list[HealthFlag]:
        agent, user = self._open["agent"].since(), self._open["user"].since()
        if agent is None or user is None:
            self._overlap_since, self._overlap_counted = None, False
            return []
        if self._overlap_since is None:
            self._overlap_since = max(agent, user)
        lasted = (now - self._overlap_since).total_seconds()
        if self._overlap_counted or lasted <= self.thresholds.talk_over_s:
            return []
        self._overlap_counted = True
        self.state = replace(self.state, talk_overs=self.state.talk_overs + 1)
        return [HealthFlag("talk_over", float(self.state.talk_overs), now)]

    def _loop(self, text: str, now: datetime) -> list[HealthFlag]:
        flags: list[HealthFlag] = []
        for sentence in sentences(text):
            said = next((s for s in self._said if _similar(s.sentence, sentence)), None)
            if said is None:
                self._said.append(_Said(sentence))
                continue
            said.times += 1
            if said.times >= self.thresholds.loop_repeats:
                self.state = replace(self.state, loops=self.state.loops + 1)
                flags.append(HealthFlag("loop", float(said.times), now))
        return flags


HEALTH_TICK_S = 0.5  # how often a silence or an overlap is looked at; not a repaint


class PolledVoice:
    """A ``speaking`` source for `FollowerHealth` from a yes/no reading (the session's
    ``speaking``, the server's active speakers) looked at on each health tick.

    Where there is no model to keep ``last_voice_at`` (``tail``), this keeps it: an
    agent speaking without transcription, or a line begun before the listener joined
    (its text stream never reaches it), is voice, not dead air.
    """

    def __init__(self, is_speaking: Callable[[], bool], clock: Clock) -> None:
        self._is_speaking = is_speaking
        self._clock = clock
        self.last_voice_at: datetime | None = None

    def __call__(self) -> datetime | None:
        if self._is_speaking():
            self.last_voice_at = self._clock()
        return self.last_voice_at


class FollowerHealth:
    """A `HealthTracker` fed by one follower's events, with its own periodic tick.

    ``on_flag`` gets every flag raised; ``on_state`` every new `HealthState`.
    ``speaking`` (optional) says when the room last heard someone (the dashboard's
    ``MonitoredCall.last_voice_at``; `PolledVoice` in ``tail``).  The tick's timer
    starts with the first event fed inside a running loop and stops when the call ends
    (``tick_s=None``: no timer, the owner calls ``tick``).
    """

    def __init__(
        self,
        thresholds: HealthThresholds | None = None,
        *,
        clock: Clock,
        on_flag: Callable[[HealthFlag], None],
        on_state: Callable[[HealthState], None] = lambda _state: None,
        speaking: Callable[[], datetime | None] | None = None,
        tick_s: float | None = HEALTH_TICK_S,
    ) -> None:
        self.tracker = HealthTracker(thresholds, clock=clock)
        self._on_flag = on_flag
        self._on_state = on_state
        self._speaking = speaking
        self._tick_s = tick_s
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def state(self) -> HealthState:
        return self.tracker.state

    def feed(self, event: FollowEvent) -> None:
        tracker = self.tracker
        match event:
            case StateChanged(state):
                self._report(tracker.on_live(state == "connected"))
            case TranscriptReceived(segment):
                self._report(
                    tracker.on_transcript(
                        segment.id, segment.role, segment.text, bool(segment.final)
                    )
                )
            case Ended():
                self._report(tracker.on_live(False))
                self.close()
                return
            case _:
                return
        self._start_timer()

    def tick(self) -> None:
        tracker = self.tracker
        flags = tracker.on_speaking(self._speaking()) if self._speaking else tracker.tick()
        self._report(flags)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _report(self, flags: list[HealthFlag]) -> None:
        for flag in flags:  # the flag first (to disk), then what the pane shows
            self._on_flag(flag)
        self._on_state(self.tracker.state)

    def _start_timer(self) -> None:
        if self._tick_s is None or self._timer is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(self._tick_s, self._timed_tick)

    def _timed_tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        self.tick()
        self._start_timer()


def _similar(a: str, b: str) -> bool:
    return a == b or SequenceMatcher(None, a, b).ratio() >= LOOP_SIMILARITY


__all__ = [
    "ATTENTION_WEIGHTS",
    "FLAG_KINDS",
    "HEALTH_TICK_S",
    "FlagKind",
    "FollowerHealth",
    "HealthFlag",
    "HealthState",
    "HealthThresholds",
    "HealthTracker",
    "PolledVoice",
    "attention_score",
    "normalise_sentence",
    "sentences",
]

"""Applies one follower's events to its call in the model, and to the transcript store.

The dashboard's half of the one call engine: the follower (tui.monitor.follow)
says what happened, this says what a pane shows.  A settled line goes to disk
before it goes on screen, so a line shown as settled is never lost to a crash.
Every event also feeds the call's health (tui.monitor.health): its state goes on
the model (``MonitoredCall.health``), each flag raised into the call's file as an
event line, disk first here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tui.listen import Transcript
from tui.monitor.alerts import AlertMatcher
from tui.monitor.follow import (
    AgentLeft,
    ApiProblem,
    Ended,
    FollowEvent,
    Recovered,
    SessionFailed,
    StateChanged,
    TranscriptReceived,
    WaitingForRoom,
)
from tui.monitor.health import HEALTH_TICK_S, FollowerHealth, HealthFlag, HealthThresholds
from tui.monitor.model import MonitoredCall
from tui.monitor.store import TranscriptStore

log = logging.getLogger(__name__)


class CallUpdater:
    def __init__(
        self,
        call: MonitoredCall,
        *,
        store: TranscriptStore | None = None,
        alerts: AlertMatcher | None = None,
        on_alert: Callable[[MonitoredCall], None] = lambda _call: None,
        on_store_error: Callable[[str | None], None] = lambda _text: None,
        on_event: Callable[[MonitoredCall, FollowEvent], None] = lambda _call, _event: None,
        health: HealthThresholds | None = None,
        on_health: Callable[[MonitoredCall, HealthFlag], None] = lambda _call, _flag: None,
        health_tick_s: float | None = HEALTH_TICK_S,
    ) -> None:
        self.call = call
        self._store = store
        self._alerts = alerts
        self._on_alert = on_alert
        self._on_store_error = on_store_error
        self._on_event = on_event
        self._on_health = on_health
        self.health = FollowerHealth(
            health,
            clock=call.clock,
            on_flag=self._flag,
            on_state=call.set_health,
            speaking=lambda: call.last_voice_at,  # the room's speaking, heard or not
            tick_s=health_tick_s,
        )

    def apply(self, event: FollowEvent) -> None:
        call = self.call
        match event:
            case StateChanged(state):
                call.set_state(state)
            case WaitingForRoom(waiting):
                if waiting:
                    call.set_error(None)
                call.set_waiting(waiting)
            case TranscriptReceived(segment):
                self._transcript(segment)
            case AgentLeft():
                pass  # the follower decides whether that ends the call (it says so by Ended)
            case SessionFailed(message):
                call.set_error(message)
            case ApiProblem(error):
                call.set_error(error.short)
            case Recovered():
                call.set_error(None)
            case Ended(reason, message):
                if reason == "call_over":
                    call.mark_ended()
                elif reason in ("gave_up", "no_room") and message:
                    call.set_error(message)
        self.health.feed(event)
        self._on_event(call, event)

    def tick(self) -> None:
        """Time passed (for owners that tick themselves: ``health_tick_s=None``)."""
        self.health.tick()

    def _flag(self, flag: HealthFlag) -> None:
        call = self.call
        if self._store is not None:
            try:
                self._store.append_event(
                    call.conversation_id,
                    "health",
                    {"flag": flag.kind, "value": flag.value},
                    at=flag.at,
                )
            except OSError as error:
                log.warning("could not save a health flag of %s: %s", call.conversation_id, error)
        self._on_health(call, flag)

    def _transcript(self, segment: Transcript) -> None:
        call, final = self.call, bool(segment.final)
        if final and self._store is not None:
            try:
                self._store.append(call.conversation_id, segment, settled_at=call.clock())
            except OSError as error:
                log.warning(
                    "could not save a transcript line of %s: %s", call.conversation_id, error
                )
                self._on_store_error(
                    f"Transcripts not saved: {error.strerror or error} (kept, retried)"
                )
            else:
                self._on_store_error(None)  # saving works (again): kept lines are written
        call.add_transcript(segment.id, segment.role, segment.text, final)
        if self._alerts is not None and self._alerts.matches(segment.text):
            if call.flag_alert(segment.id):  # the model flags each line once
                self._on_alert(call)

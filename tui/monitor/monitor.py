"""Keeps the outside world in step with the dashboard model, and the model with it.

`Monitor` watches a `Dashboard`: when a call is added it starts that call's
:class:`~tui.monitor.follow.CallFollower` and applies the follower's events to
the call (:mod:`tui.monitor.apply`); when a call is removed it stops the
follower; when focus, listening or the mix change it tells the audio router
which sessions are heard and where (the model's ``placements``).  Around that
it runs discovery (active calls get panes, up to ``max_panes``; calls no longer
listed end), retires ended panes after ``retire_after_s`` unless pinned, keeps
the one banner of the dashboard, and reads every call's audio level for the
meters.

The UI only changes the model; it never talks to followers, the router or the API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from tui.anyreach import Conversation, ErrorKind, ListenerGrant
from tui.listen import AudioOutput
from tui.monitor.alerts import AlertMatcher
from tui.monitor.apply import CallUpdater
from tui.monitor.discovery import (
    KEY_REJECTED_BANNER,
    ActiveConversationSource,
    DiscoveryPoller,
    DiscoveryUpdate,
)
from tui.monitor.follow import (
    END_TIMEOUT_S,
    WHILE_LISTED_POLICY,
    ApiProblem,
    CallFollower,
    Ended,
    FollowEvent,
    FollowPolicy,
    ListenFactory,
    Session,
    SessionOpener,
    TokenSource,
    listen_session,
)
from tui.monitor.health import HealthThresholds
from tui.monitor.model import Change, ConversationInfo, Dashboard, MonitoredCall, Placement
from tui.monitor.store import TranscriptStore

log = logging.getLogger(__name__)

LEVEL_POLL_INTERVAL_S = 0.1  # 10 Hz is plenty for a meter and a "speaking" highlight
# Banner sources, most important first: only one banner shows at a time.
_BANNER_PRIORITY = ("key", "discovery", "store")
# A dashboard pane keeps trying for as long as its call is active.
DASHBOARD_POLICY = WHILE_LISTED_POLICY


class AudioRouter(Protocol):
    """The part of ``tui.audio.AudioRouter`` the monitor uses."""

    def output_for(self, session_id: str) -> AudioOutput: ...
    def set_heard(self, heard: Mapping[str, tuple[float, float]]) -> None: ...
    def remove(self, session_id: str) -> None: ...


class ApiClient(TokenSource, ActiveConversationSource, Protocol):
    """Mints listener tokens and lists active conversations."""


class Monitor:
    def __init__(
        self,
        dashboard: Dashboard,
        client: ApiClient | None,
        router: AudioRouter | None = None,
        *,
        pinned: Iterable[str] = (),
        discovery: bool = True,
        interval_s: float = 2.0,
        max_panes: int = 9,
        retire_after_s: float = 30.0,
        store: TranscriptStore | None = None,
        alerts: AlertMatcher | None = None,
        focus_on_alert: bool = False,
        policy: FollowPolicy = DASHBOARD_POLICY,
        listen: ListenFactory = listen_session,
        health: HealthThresholds | None = None,
    ) -> None:
        self.dashboard = dashboard
        self.client = client
        self.router = router
        self.pinned: list[str] = list(dict.fromkeys(pinned))
        self.max_panes = max_panes
        self.retire_after_s = retire_after_s
        self.focus_on_alert = focus_on_alert
        self.store = store
        self.alerts = alerts
        self.policy = policy
        self.health = health  # None: the defaults (tui/monitor/health.py)
        self._listen = listen
        self.poller = (
            DiscoveryPoller(client, interval_s, on_update=self._on_discovery)
            if discovery and client is not None
            else None
        )
        self.followers: dict[str, CallFollower] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._closing: list[CallFollower] = []  # the followers aclose is ending
        self._banners: dict[str, str] = {}
        self._retire_timers: dict[str, asyncio.TimerHandle] = {}
        self._retiring: set[str] = set()
        self._dismissed: set[str] = set()  # closed by the user or retired: not re-attached
        self._background: set[asyncio.Task[None]] = set()
        self._levels: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._placed: dict[str, Placement] = {}  # as last told to the followers and router
        # Pinned panes exist from the start, before any UI mounts (which then shows them).
        for conversation_id in self.pinned:
            dashboard.add_call(conversation_id)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Begin watching the model (call inside the running event loop)."""
        if self._unsubscribe is not None:
            return
        self._unsubscribe = self.dashboard.subscribe(self._on_change)
        for call in self.dashboard.calls:
            self._start_call(call)
            self._maybe_schedule_retire(call)  # it may have ended before we watched
        self._sync_router()
        self._levels = asyncio.get_running_loop().create_task(self._poll_levels())
        if self.poller is not None:
            self.poller.start()

    async def aclose(self, grace: float = END_TIMEOUT_S) -> None:
        """End every session at once; returns within about ``grace`` seconds."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for timer in self._retire_timers.values():
            timer.cancel()
        self._retire_timers.clear()
        if self._levels is not None:
            self._levels.cancel()
        if self.router is not None:
            self.router.set_heard({})
        # The sessions' ends start first: on a starved loop every step costs, and a
        # listener left in a room is what a supervisor must never leave behind.
        self._closing = list(self.followers.values())
        loop = asyncio.get_running_loop()
        pending = {loop.create_task(self._stop_follower(f, grace)) for f in self._closing}
        pending |= set(self._stopping.values())
        self.followers.clear()
        if self.poller is not None:
            pending.add(loop.create_task(self.poller.stop()))
        if pending:
            await asyncio.wait(pending, timeout=grace)
        if self.store is not None:
            self.store.close_all()

    @property
    def still_open(self) -> list[str]:
        """Conversations whose session has not ended: at exit, those abandoned.

        Not "disconnected" yet, or its teardown (leaving the room) still running: a
        session whose end was forced at its deadline reports "disconnected" while it
        may still be in the room, as livekit-server sees it.  Followers ``aclose`` has
        not reached yet (a starved loop) count too.
        """
        abandoned = []
        for follower in [*self._closing, *self.followers.values()]:
            # ListenSession.closed: its background teardown is over (not in the Protocol).
            closed = getattr(follower.session, "closed", None)
            if follower.still_open or (closed is not None and not closed.done()):
                abandoned.append(follower.conversation_id)
        return abandoned

    def add(self, conversation_id: str, info: ConversationInfo | None = None) -> MonitoredCall:
        return self.dashboard.add_call(conversation_id, info)

    def pin(self, conversation_id: str) -> None:
        """Pin a pane (it will not retire) and attach it if it is not shown."""
        if conversation_id not in self.pinned:
            self.pinned.append(conversation_id)
        timer = self._retire_timers.pop(conversation_id, None)
        if timer is not None:
            timer.cancel()
        self._dismissed.discard(conversation_id)
        self.dashboard.add_call(conversation_id)

    # -- the model changed -------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        cid = change.call_id
        if change.kind == "calls" and cid is not None:
            call = self.dashboard.get(cid)
            if call is not None:
                self._start_call(call)
            else:
                self._call_removed(cid)
            self._sync_router()
        elif change.kind in ("focus", "listening", "wallboard", "mix"):
            self._sync_router()
        elif change.kind == "call" and cid is not None:
            call = self.dashboard.get(cid)
            if call is not None:
                self._maybe_schedule_retire(call)
            if self.dashboard.placements != self._placed:  # a heard call ended
                self._sync_router()

    def _sync_router(self) -> None:
        placed = self.dashboard.placements
        self._placed = placed
        for cid, follower in self.followers.items():
            follower.set_heard(cid in placed)  # only the heard calls decode their audio
        if self.router is not None:
            self.router.set_heard(placed)

    # -- one follower per call ---------------------------------------------------------

    def _start_call(self, call: MonitoredCall) -> None:
        cid = call.conversation_id
        if cid in self.followers:
            return
        if self.client is None:
            call.set_error("No API configured")
            return
        follower = CallFollower(
            cid,
            self.client,
            self._updater_for(call).apply,
            policy=self.policy,
            is_active=self._is_active,
            open_session=self._session_opener(cid),
        )
        self.followers[cid] = follower
        stopping = self._stopping.get(cid)
        if stopping is None:
            self._run(call, follower)
            return

        # The same call was closed a moment ago: its old follower's stop ends by
        # removing the router's output for this id, which would silence the new one.
        def start_when_stopped(_: asyncio.Task[None]) -> None:
            if self.followers.get(cid) is follower:
                self._run(call, follower)

        stopping.add_done_callback(start_when_stopped)

    def _session_opener(self, cid: str) -> SessionOpener:
        """Sessions of this call play into the router's output for it.

        The output is asked for when a session opens, not before: a call closed and
        added again at once gets it only after the old follower's stop removed its own.
        """
        router, listen = self.router, self._listen

        def open_session(grant: ListenerGrant) -> Session:
            return listen(grant, router.output_for(cid) if router is not None else None)

        return open_session

    def _updater_for(self, call: MonitoredCall) -> CallUpdater:
        return CallUpdater(
            call,
            store=self.store,
            alerts=self.alerts,
            on_alert=self._alert,
            on_store_error=lambda text: self._set_banner("store", text),
            on_event=self._follower_event,
            health=self.health,
        )

    def _run(self, call: MonitoredCall, follower: CallFollower) -> None:
        task = asyncio.get_running_loop().create_task(
            self._follow(call, follower), name=f"follow {call.conversation_id}"
        )
        self._runs[call.conversation_id] = task
        task.add_done_callback(lambda done: self._runs.pop(call.conversation_id, None))

    async def _follow(self, call: MonitoredCall, follower: CallFollower) -> None:
        try:
            await follower.run()
        except Exception:
            # A bug in one pane's run shows in that pane (and the log), never stays
            # silent, and never reaches another pane.
            log.exception("following %s failed", call.conversation_id)
            call.set_error("Internal error: see the log file")
            call.mark_ended()

    def _follower_event(self, call: MonitoredCall, event: FollowEvent) -> None:
        """What a follower's event means beyond its own pane."""
        if isinstance(event, ApiProblem) and event.error.kind is ErrorKind.KEY_REJECTED:
            self._key_rejected(event.error.message)

    def _call_removed(self, cid: str) -> None:
        follower = self.followers.pop(cid, None)
        timer = self._retire_timers.pop(cid, None)
        if timer is not None:
            timer.cancel()
        if cid not in self._retiring:
            self._dismissed.add(cid)  # the user closed it: discovery must not bring it back
        if self.store is not None:
            self.store.close(cid)
        if follower is None:
            return
        task = asyncio.get_running_loop().create_task(self._stop_follower(follower))
        self._stopping[cid] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._stopping.get(cid) is done:
                del self._stopping[cid]

        task.add_done_callback(forget)

    async def _stop_follower(self, follower: CallFollower, grace: float = END_TIMEOUT_S) -> None:
        run = self._runs.get(follower.conversation_id)
        await follower.stop(grace)
        if run is not None and follower.session is None:
            run.cancel()  # still waiting for a token: plain HTTP, safe to cancel
        if self.router is not None:
            self.router.remove(follower.conversation_id)

    async def _poll_levels(self) -> None:
        while True:
            for cid, follower in list(self.followers.items()):
                call = self.dashboard.get(cid)
                session = follower.session
                level = session.level if session is not None else None
                if (
                    call is not None
                    and session is not None
                    and level is not None
                    and not call.ended
                ):
                    call.set_level(level.peak_dbfs, level.rms_dbfs)  # silence when not heard
                    call.set_speaking(session.speaking)  # the server's, heard or not
            await asyncio.sleep(LEVEL_POLL_INTERVAL_S)

    # -- discovery ---------------------------------------------------------------------

    def _is_active(self, conversation_id: str) -> bool | None:
        return self.poller.is_active(conversation_id) if self.poller is not None else None

    def _on_discovery(self, update: DiscoveryUpdate) -> None:
        if update.stopped:
            self._set_banner("key", update.banner or KEY_REJECTED_BANNER)
            return
        self._set_banner("discovery", update.banner)
        if update.banner is not None:
            return  # a failed poll says nothing about the calls: keep every pane
        for conversation_id in update.gone:
            self._conversation_over(conversation_id)
        room = self.max_panes - len(self.dashboard.calls)
        for conversation in update.active:  # newest first
            existing = self.dashboard.get(conversation.id)
            if existing is not None:
                existing.set_info(_info(conversation))
                self._revive_pinned(existing)
            elif room > 0 and conversation.id not in self._dismissed:
                self.dashboard.add_call(conversation.id, _info(conversation))
                room -= 1

    def _conversation_over(self, conversation_id: str) -> None:
        follower = self.followers.get(conversation_id)
        if follower is None:
            return
        follower.conversation_over()
        call = self.dashboard.get(conversation_id)
        if follower.ended is not None and call is not None:
            # It gave up earlier (403, a final 404...): nothing else will end the pane,
            # and an unretired pane would hold a slot of max_panes for good.
            call.mark_ended()

    def _revive_pinned(self, call: MonitoredCall) -> None:
        """A pinned id given before its call began got 409 (not active): now it is, join."""
        cid = call.conversation_id
        follower = self.followers.get(cid)
        if cid not in self.pinned or follower is None or follower.ended is None:
            return
        # Not after a 403 or 401: asking again every poll would not change the answer.
        error = follower.ended.error
        if follower.ended.reason == "call_over" or (
            error is not None and error.kind is ErrorKind.NOT_FOUND
        ):
            del self.followers[cid]
            call.reset_for_reconnect()
            self._start_call(call)

    def _key_rejected(self, message: str) -> None:
        log.error("listener token refused: %s", message)
        self._set_banner("key", KEY_REJECTED_BANNER)
        if self.poller is not None:
            task = asyncio.get_running_loop().create_task(self.poller.stop())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _set_banner(self, source: str, text: str | None) -> None:
        if text is None:
            self._banners.pop(source, None)
        else:
            self._banners[source] = text
        shown = next((self._banners[s] for s in _BANNER_PRIORITY if s in self._banners), None)
        self.dashboard.set_banner(shown)

    # -- alerts and retiring ----------------------------------------------------------

    def _alert(self, call: MonitoredCall) -> None:
        if self.focus_on_alert and not self.dashboard.wallboard:
            self.dashboard.focus(call.conversation_id)

    def _maybe_schedule_retire(self, call: MonitoredCall) -> None:
        cid = call.conversation_id
        if not call.ended or cid in self.pinned or cid in self._retire_timers:
            return
        loop = asyncio.get_running_loop()
        self._retire_timers[cid] = loop.call_later(self.retire_after_s, self._retire, cid)

    def _retire(self, conversation_id: str) -> None:
        self._retire_timers.pop(conversation_id, None)
        self._retiring.add(conversation_id)
        self._dismissed.add(conversation_id)
        try:
            self.dashboard.remove_call(conversation_id)
        finally:
            self._retiring.discard(conversation_id)


def _info(conversation: Conversation) -> ConversationInfo:
    return ConversationInfo.from_api(conversation)


__all__ = ["DASHBOARD_POLICY", "ApiClient", "AudioRouter", "Ended", "Monitor"]

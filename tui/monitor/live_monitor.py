"""The dashboard fed by live data: discovery attaches calls, ended ones retire by themselves.

`LiveMonitor` is a `Monitor` (the app starts and closes it the same way) whose
calls are run by `LiveCallController`s and whose panes come and go with the API:

- every discovery poll attaches active conversations not shown yet, newest
  first, while fewer than ``max_panes`` panes exist; ids pinned in the config or
  on the command line are attached at start and never retire;
- a conversation the API stops listing is over: its pane shows ``Ended`` and,
  unless pinned, retires ``retire_after_s`` later (so does one whose agent left);
  a pane the user closed or that retired is not attached again;
- a failing poll shows one banner and keeps every pane; a rejected key (401,
  from discovery or from a token request) stops discovery with one message.

UI-free: the dashboard model carries the banner, panes and alerts to the UI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from tui.anyreach import Conversation
from tui.monitor.alerts import AlertMatcher
from tui.monitor.backoff import Backoff
from tui.monitor.controller import (
    END_TIMEOUT,
    Monitor,
    RouterLike,
    SessionFactory,
    _default_session_factory,
)
from tui.monitor.discovery import (
    KEY_REJECTED_BANNER,
    ActiveConversationSource,
    DiscoveryPoller,
    DiscoveryUpdate,
)
from tui.monitor.live import NOT_FOUND_WORDS, RESUME_STALL_S, LiveCallController, LiveHooks
from tui.monitor.model import Change, ConversationInfo, Dashboard, MonitoredCall
from tui.monitor.store import TranscriptStore

log = logging.getLogger(__name__)

# Banner sources, most important first: only one banner shows at a time.
_BANNER_PRIORITY = ("key", "discovery", "store")


class LiveMonitor(Monitor):
    def __init__(
        self,
        dashboard: Dashboard,
        client: ActiveConversationSource | None,
        router: RouterLike | None = None,
        *,
        pinned: Iterable[str] = (),
        discovery: bool = True,
        interval_s: float = 2.0,
        max_panes: int = 9,
        retire_after_s: float = 30.0,
        store: TranscriptStore | None = None,
        alerts: AlertMatcher | None = None,
        focus_on_alert: bool = False,
        session_factory: SessionFactory = _default_session_factory,
        backoff: Callable[[], Backoff] = Backoff,
        resume_stall_s: float = RESUME_STALL_S,
    ) -> None:
        self.pinned: list[str] = list(dict.fromkeys(pinned))
        self.max_panes = max_panes
        self.retire_after_s = retire_after_s
        self.focus_on_alert = focus_on_alert
        self.store = store
        self.poller = (
            DiscoveryPoller(client, interval_s, on_update=self._on_discovery)
            if discovery and client is not None
            else None
        )
        self.hooks = LiveHooks(
            store=store,
            alerts=alerts,
            is_active=self._is_active,
            on_key_rejected=self._key_rejected,
            on_alert=self._alert,
            on_store_error=lambda text: self._set_banner("store", text),
            backoff=backoff,
            resume_stall_s=resume_stall_s,
        )
        super().__init__(
            dashboard,
            client,  # type: ignore[arg-type]  # the client mints tokens too
            router,
            session_factory=session_factory,
            controller_factory=self._make_controller,
        )
        self._session_factory = session_factory
        self._banners: dict[str, str] = {}
        self._retire_timers: dict[str, asyncio.TimerHandle] = {}
        self._retiring: set[str] = set()
        self._dismissed: set[str] = set()  # closed by the user or retired: not re-attached
        self._background: set[asyncio.Task[None]] = set()
        self._closing: list[object] = []  # the controllers aclose is ending
        # Pinned panes exist from the start, before any UI mounts (which then shows them).
        for conversation_id in self.pinned:
            dashboard.add_call(conversation_id)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        super().start()
        # The model may already hold calls that ended before we watched it.
        for call in self.dashboard.calls:
            self._maybe_schedule_retire(call)
        if self.poller is not None:
            self.poller.start()

    async def aclose(self, grace: float = END_TIMEOUT) -> None:
        if self.poller is not None:
            await self.poller.stop()
        for timer in self._retire_timers.values():
            timer.cancel()
        self._retire_timers.clear()
        self._closing = list(self.controllers.values())
        await super().aclose(grace)
        if self.store is not None:
            self.store.close_all()

    @property
    def still_open(self) -> list[str]:
        """Conversations whose session has not ended since ``aclose`` began."""
        return [
            c.conversation_id
            for c in self._closing
            if isinstance(c, LiveCallController)
            and c.session is not None
            and c.session.get_state() != "disconnected"
        ]

    def _make_controller(self, call: MonitoredCall) -> LiveCallController:
        return LiveCallController(
            call,
            self.client,
            self.router,
            hooks=self.hooks,
            session_factory=self._session_factory,
        )

    # -- discovery -----------------------------------------------------------------------

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
            controller = self.controllers.get(conversation_id)
            if isinstance(controller, LiveCallController):
                controller.conversation_over()
        room = self.max_panes - len(self.dashboard.calls)
        for conversation in update.active:  # newest first
            existing = self.dashboard.get(conversation.id)
            if existing is not None:
                existing.set_info(_info(conversation))
                self._revive_pinned(existing)
            elif room > 0 and conversation.id not in self._dismissed:
                self.dashboard.add_call(conversation.id, _info(conversation))
                room -= 1

    def _revive_pinned(self, call: MonitoredCall) -> None:
        """A pinned id given before its call began got 409 (not active): now it is, join."""
        cid = call.conversation_id
        controller = self.controllers.get(cid)
        if cid not in self.pinned or not isinstance(controller, LiveCallController):
            return
        # Not after a 403 or 401: asking again every poll would not change the answer.
        if controller.finished and (call.ended or call.error == NOT_FOUND_WORDS):
            del self.controllers[cid]
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

    # -- alerts --------------------------------------------------------------------------

    def _alert(self, call: MonitoredCall) -> None:
        if self.focus_on_alert and not self.dashboard.wallboard:
            self.dashboard.focus(call.conversation_id)

    # -- ended calls retire --------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        super()._on_change(change)
        cid = change.call_id
        if cid is None:
            return
        if change.kind == "calls" and cid not in self.dashboard:
            timer = self._retire_timers.pop(cid, None)
            if timer is not None:
                timer.cancel()
            if cid not in self._retiring:
                self._dismissed.add(cid)  # the user closed it: discovery must not bring it back
            if self.store is not None:
                self.store.close(cid)
        elif change.kind == "call":
            call = self.dashboard.get(cid)
            if call is not None:
                self._maybe_schedule_retire(call)

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

    def pin(self, conversation_id: str) -> None:
        """Pin a pane (it will not retire) and attach it if it is not shown."""
        if conversation_id not in self.pinned:
            self.pinned.append(conversation_id)
        timer = self._retire_timers.pop(conversation_id, None)
        if timer is not None:
            timer.cancel()
        self._dismissed.discard(conversation_id)
        self.dashboard.add_call(conversation_id)


def _info(conversation: Conversation) -> ConversationInfo:
    return ConversationInfo.from_api(conversation)


__all__ = ["LiveMonitor"]

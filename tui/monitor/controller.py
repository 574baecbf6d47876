"""Connects the model to the outside world: API tokens, listen sessions, the audio router.

`Monitor` watches a `Dashboard`: when a call is added it starts a `CallController`
(token -> listen session -> model updates), when one is removed it ends its session,
and when focus or listening change it tells the router which session to play.  The
UI only changes the model; it never talks to sessions, the router or the API.

The live-data work (discovery, reconnects, waiting for rooms) plugs in here: it may
subclass `CallController` or pass its own `controller_factory`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from tui.monitor.model import Change, ConversationInfo, Dashboard, MonitoredCall

logger = logging.getLogger(__name__)

END_TIMEOUT = 3.0  # every session ends within this when the app quits
LEVEL_POLL_INTERVAL = 0.1  # 10 Hz is plenty for a meter and a "speaking" highlight


class AudioOutputLike(Protocol):
    def write(self, frame: bytes) -> None: ...
    def flush(self) -> None: ...


class RouterLike(Protocol):
    def output_for(self, session_id: str) -> Any: ...
    def set_heard(self, session_ids: Iterable[str]) -> None: ...
    def remove(self, session_id: str) -> None: ...


class SessionLike(Protocol):
    def on(self, event: str, fn: Callable[..., Any]) -> Any: ...
    async def connect(self) -> None: ...
    async def start_audio(self) -> None: ...
    async def end(self) -> None: ...
    def get_state(self) -> str: ...
    @property
    def level(self) -> Any: ...


class TokenSource(Protocol):
    async def listener_token(self, conversation_id: str) -> Any: ...


SessionFactory = Callable[..., SessionLike]  # (url, token, *, output) -> session


def _default_session_factory(url: str, token: str, *, output: Any = None) -> SessionLike:
    from tui.listen import listen  # imported late: the session layer pulls in livekit

    return listen(url, token, output=output)


def describe_api_error(error: BaseException) -> str:
    """An API failure in words a supervisor can act on (never the key or the token)."""
    kind = type(error).__name__
    words = {
        "MissingOrganization": "A pat_ key needs an organization id (401)",
        "Unauthorized": "API key rejected (401)",
        "Forbidden": "Key lacks scope conversations:read_sensitive or :manage (403)",
        "ConversationNotFound": "Conversation not found or its room not ready (404)",
        "ConversationNotActive": "Call is over (409)",
        "ApiUnavailable": "Anyreach API unavailable",
    }
    return words.get(kind, f"Could not get a listener token ({kind})")


class CallController:
    """Runs one call: mint a listener token, open the session, feed the model."""

    def __init__(
        self,
        call: MonitoredCall,
        client: TokenSource | None,
        router: RouterLike | None,
        *,
        session_factory: SessionFactory = _default_session_factory,
    ) -> None:
        self.call = call
        self.client = client
        self.router = router
        self.session_factory = session_factory
        self.session: SessionLike | None = None
        self._task: asyncio.Task[None] | None = None
        self._level_task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def conversation_id(self) -> str:
        return self.call.conversation_id

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self.run(), name=f"call {self.conversation_id}"
        )
        self._task.add_done_callback(self._report_crash)

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        """A bug in one pane's run shows in that pane (and the log), never stays silent."""
        if task.cancelled() or task.exception() is None:
            return
        logger.error("call %s failed", self.conversation_id, exc_info=task.exception())
        self.call.set_error("Internal error: see the log file")
        self.call.mark_ended()

    async def run(self) -> None:
        if self.client is None:
            self.call.set_error("No API configured")
            return
        try:
            grant = await self.client.listener_token(self.conversation_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "ConversationNotActive":
                self.call.mark_ended()
            self.call.set_error(describe_api_error(exc))
            return
        if self._stopped:
            return
        session = self._open_session(grant)
        self.session = session
        self._wire(session)
        self.call.set_state("connecting")
        try:
            await session.connect()
            await session.start_audio()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The session reports its own failure through "error" too; this covers a
            # connect that fails without one (e.g. a timeout), in words.
            if self.call.error is None:
                self.call.set_error(str(exc) or f"Could not connect ({type(exc).__name__})")
            return
        self._level_task = asyncio.get_running_loop().create_task(self._poll_level())

    def _open_session(self, grant: Any) -> SessionLike:
        """A session for ``grant`` that plays into the router."""
        output = self.router.output_for(self.conversation_id) if self.router else None
        return self.session_factory(grant.url, grant.token, output=output)

    def _wire(self, session: SessionLike) -> None:
        call = self.call
        session.on("stateChange", lambda state: call.set_state(state))
        session.on(
            "transcript",
            lambda seg: call.add_transcript(seg.id, seg.role, seg.text, bool(seg.final)),
        )
        session.on("agentDisconnected", lambda _payload=None: call.mark_ended())
        session.on("error", lambda err: call.set_error(getattr(err, "message", str(err))))
        session.on("ended", lambda *_: call.mark_ended())

    async def _poll_level(self) -> None:
        session = self.session
        while session is not None and not self.call.ended:
            level = session.level
            if level is not None:
                self.call.set_level(level.peak_dbfs, level.rms_dbfs)
            await asyncio.sleep(LEVEL_POLL_INTERVAL)

    async def stop(self, grace: float = END_TIMEOUT) -> None:
        """End the session (waiting at most ``grace`` seconds) and release the router's output."""
        self._stopped = True
        if self._level_task is not None:
            self._level_task.cancel()
        if self.session is None and self._task is not None:
            self._task.cancel()  # still waiting for the token: plain HTTP, safe to cancel
        if self.session is not None:
            # Never cancel end() (it may be inside room.disconnect()); shield it and
            # stop waiting after the timeout instead.  end() also rejects an in-flight
            # connect(), which lets the run task finish on its own.
            try:
                await asyncio.wait_for(asyncio.shield(self.session.end()), timeout=grace)
            except Exception:
                logger.warning("session of %s did not end in time", self.conversation_id)
        if self.router is not None:
            self.router.remove(self.conversation_id)


ControllerFactory = Callable[[MonitoredCall], CallController]


class Monitor:
    """Keeps sessions and the audio router in step with the dashboard model."""

    def __init__(
        self,
        dashboard: Dashboard,
        client: TokenSource | None,
        router: RouterLike | None = None,
        *,
        session_factory: SessionFactory = _default_session_factory,
        controller_factory: ControllerFactory | None = None,
    ) -> None:
        self.dashboard = dashboard
        self.client = client
        self.router = router
        self.controllers: dict[str, CallController] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._stopping_by_id: dict[str, asyncio.Task[None]] = {}
        self._controller_factory = controller_factory or (
            lambda call: CallController(call, client, router, session_factory=session_factory)
        )
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        """Begin watching the model (call inside the running event loop)."""
        if self._unsubscribe is not None:
            return
        self._unsubscribe = self.dashboard.subscribe(self._on_change)
        for call in self.dashboard.calls:
            self._start_call(call)
        self._sync_router()

    def add(self, conversation_id: str, info: ConversationInfo | None = None) -> MonitoredCall:
        return self.dashboard.add_call(conversation_id, info)

    def _on_change(self, change: Change) -> None:
        if change.kind == "calls" and change.call_id is not None:
            call = self.dashboard.get(change.call_id)
            if call is not None:
                self._start_call(call)
            else:
                self._stop_call(change.call_id)
            self._sync_router()
        elif change.kind in ("focus", "listening", "wallboard"):
            self._sync_router()

    def _start_call(self, call: MonitoredCall) -> None:
        conversation_id = call.conversation_id
        if conversation_id in self.controllers:
            return
        controller = self._controller_factory(call)
        self.controllers[conversation_id] = controller
        stopping = self._stopping_by_id.get(conversation_id)
        if stopping is None:
            controller.start()
            return

        # The same call was closed a moment ago: its old controller's stop() ends by
        # removing the router's output for this id, which would silence the new one.
        def start_when_stopped(_: asyncio.Task[None]) -> None:
            if self.controllers.get(conversation_id) is controller:
                controller.start()

        stopping.add_done_callback(start_when_stopped)

    def _stop_call(self, conversation_id: str) -> None:
        controller = self.controllers.pop(conversation_id, None)
        if controller is None:
            return
        task = asyncio.get_running_loop().create_task(controller.stop())
        self._stopping.add(task)
        self._stopping_by_id[conversation_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            self._stopping.discard(done)
            if self._stopping_by_id.get(conversation_id) is done:
                del self._stopping_by_id[conversation_id]

        task.add_done_callback(forget)

    def _sync_router(self) -> None:
        if self.router is None:
            return
        self.router.set_heard([] if self.dashboard.heard_id is None else [self.dashboard.heard_id])

    async def aclose(self, grace: float = END_TIMEOUT) -> None:
        """End every session at once; returns within about ``grace`` seconds."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.router is not None:
            self.router.set_heard([])
        controllers = list(self.controllers.values())
        self.controllers.clear()
        loop = asyncio.get_running_loop()
        pending = {loop.create_task(c.stop(grace)) for c in controllers} | self._stopping
        if pending:
            await asyncio.wait(pending, timeout=grace)

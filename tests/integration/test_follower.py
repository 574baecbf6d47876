"""The one call follower against the real stack: livekit-server, the emulator, simulated calls.

These are the follower's own tests, once: what the dashboard's panes and
``tail`` do on top of it is tested in their own files (thinly: that they use it).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.fixtures.anyreach import FAST_RETRY
from tui.anyreach import AnyreachClient, ErrorKind
from tui.core.backoff import Backoff
from tui.demo.calls import CallOptions, SimulatedCall
from tui.demo.emulator import ApiEmulator
from tui.demo.livekit_server import LiveKitServer
from tui.monitor.follow import (
    AgentLeft,
    ApiProblem,
    CallFollower,
    Ended,
    FollowEvent,
    FollowPolicy,
    Recovered,
    SessionFailed,
    StateChanged,
    TranscriptReceived,
    WaitingForRoom,
)

pytestmark = pytest.mark.timeout(120)

FAST = FollowPolicy(patience_s=None, backoff=lambda: Backoff(initial=0.2, maximum=1.0))


class Recorded:
    """A follower's events, in order, with ways to wait for them."""

    def __init__(self) -> None:
        self.events: list[FollowEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: FollowEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[str]:
        return [e.state for e in self.of(StateChanged)]

    async def until(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"never happened: {what}; events: {self.events}") from None


@pytest.fixture
async def client(api_emulator_live: ApiEmulator) -> AsyncIterator[AnyreachClient]:
    client = AnyreachClient(
        api_emulator_live.url, api_emulator_live.admin_key, retries=FAST_RETRY, timeout=2.0
    )
    yield client
    await client.aclose()


def tone_call(server: LiveKitServer, room: str, **options: Any) -> SimulatedCall:
    options.setdefault("time_scale", 0.3)
    return SimulatedCall(
        server.url, server.api_key, server.api_secret, room, CallOptions(mode="tone", **options)
    )


@pytest.mark.slow
async def test_follows_a_call_until_the_agent_leaves(
    livekit_server: LiveKitServer, api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name="f-one")
    events = Recorded()
    follower = CallFollower(conversation.id, client, events, policy=FAST)
    run = asyncio.create_task(follower.run())
    await events.until(lambda: "connected" in events.states(), 30, "connected")
    call = tone_call(livekit_server, "f-one", max_lines=3)
    await call.start()
    try:
        ended = await asyncio.wait_for(run, 90)
    finally:
        await call.stop()

    assert ended == Ended("call_over")
    assert events.events[-1] == ended and events.of(Ended) == [ended]
    assert events.states() == ["connecting", "connected", "disconnected"]
    assert [type(e) for e in events.events if not isinstance(e, TranscriptReceived)] == [
        StateChanged,
        StateChanged,
        AgentLeft,
        StateChanged,
        Ended,
    ]
    settled = [e.segment.id for e in events.of(TranscriptReceived) if e.segment.final]
    assert settled == [s.segment_id for s in call.sent_segments if s.final]
    assert (follower.mints, follower.joins) == (1, 1)


@pytest.mark.slow
async def test_rejoins_after_a_server_restart_with_a_fresh_token_without_repeats(
    livekit_server: LiveKitServer, api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name="f-rs")
    events = Recorded()
    # A short stall bound: LiveKit's own resume is not waited for, a fresh token is.
    policy = dataclasses.replace(FAST, resume_stall_s=1.0)
    follower = CallFollower(conversation.id, client, events, policy=policy)
    run = asyncio.create_task(follower.run())
    call = tone_call(livekit_server, "f-rs", max_lines=8)
    try:
        await events.until(lambda: "connected" in events.states(), 30, "connected")
        await call.start()
        await events.until(
            lambda: any(e.segment.final for e in events.of(TranscriptReceived)), 30, "a line"
        )
        await asyncio.to_thread(livekit_server.kill)
        await asyncio.sleep(2.0)  # down for longer than the stall bound
        await asyncio.to_thread(livekit_server.start)
        await events.until(lambda: events.states().count("connected") >= 2, 60, "joined again")
        ended = await asyncio.wait_for(run, 90)
    finally:
        await follower.stop()
        await call.stop()

    assert ended.reason == "call_over"
    assert follower.mints >= 2, "the rejoin used a fresh token"
    minted = [m for m in api_emulator_live.minted if m.conversation_id == conversation.id]
    assert len(minted) == follower.mints
    settled = [e.segment.id for e in events.of(TranscriptReceived) if e.segment.final]
    assert len(settled) == len(set(settled)), "a settled segment was delivered twice"
    sent = [s.segment_id for s in call.sent_segments if s.final]
    assert [s for s in sent if s in settled] == [s for s in settled if s in sent], "order"
    last_join = max(i for i, e in enumerate(events.events) if e == StateChanged("connected"))
    assert any(isinstance(e, TranscriptReceived) for e in events.events[last_join:])


@pytest.mark.slow
async def test_a_stalled_resume_is_given_up_and_joined_afresh(
    livekit_server: LiveKitServer, api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name="f-st")
    events = Recorded()
    policy = dataclasses.replace(FAST, resume_stall_s=1.0)
    follower = CallFollower(conversation.id, client, events, policy=policy)
    run = asyncio.create_task(follower.run())
    try:
        await events.until(lambda: "connected" in events.states(), 30, "connected")
        livekit_server.freeze()  # the connection hangs: LiveKit starts resuming
        try:
            await events.until(
                lambda: follower.mints >= 2, 40, "a fresh token after the stall bound"
            )
        finally:
            livekit_server.thaw()
        await events.until(lambda: events.states().count("connected") >= 2, 60, "joined again")
    finally:
        await follower.stop()
        ended = await asyncio.wait_for(run, 10)
    assert follower.joins == 2
    assert ended == Ended("stopped")
    # Lost while resuming, the stalled session was ended: it said so before the new one.
    states = events.states()
    assert states[: states.index("connected") + 1] == ["connecting", "connected"]
    assert "disconnected" in states[states.index("connected") :]


async def test_waits_for_the_room_while_the_call_is_active_then_joins(
    livekit_server: LiveKitServer, api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    conversation = api_emulator_live.create_conversation(status="triggered")  # no room yet
    events = Recorded()
    follower = CallFollower(conversation.id, client, events, policy=FAST, is_active=lambda _: True)
    run = asyncio.create_task(follower.run())
    try:
        await events.until(lambda: WaitingForRoom(True) in events.events, 20, "waiting")
        assert follower.mints == 0
        api_emulator_live.set_status(conversation.id, "in_progress", room_name="f-404")
        await events.until(lambda: "connected" in events.states(), 30, "connected")
    finally:
        await follower.stop()
        await asyncio.wait_for(run, 10)
    assert events.of(WaitingForRoom)[-1] == WaitingForRoom(False)
    assert events.events.index(WaitingForRoom(False)) < events.events.index(
        StateChanged("connected")
    )
    assert not events.of(ApiProblem), "a room not ready yet is no API problem"


async def test_an_unknown_conversation_is_refused_after_the_unknown_wait(
    api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    events = Recorded()
    policy = dataclasses.replace(FAST, unknown_wait_s=0.5)
    follower = CallFollower("no-such-conversation", client, events, policy=policy)
    ended = await asyncio.wait_for(follower.run(), 20)
    assert ended.reason == "refused"
    assert ended.error is not None and ended.error.kind is ErrorKind.NOT_FOUND
    assert events.of(ApiProblem)[-1].error.short == "Conversation not found (404)"


async def test_a_call_that_is_over_ends_without_a_session(
    api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    conversation = api_emulator_live.create_conversation(status="completed")
    events = Recorded()
    ended = await asyncio.wait_for(
        CallFollower(conversation.id, client, events, policy=FAST).run(), 20
    )
    assert ended == Ended("call_over") and events.events == [ended]

    # A one-shot command asked for it while it was over: that is a refusal to report.
    one_shot = dataclasses.replace(FAST, fail_fast=True)
    events = Recorded()
    ended = await asyncio.wait_for(
        CallFollower(conversation.id, client, events, policy=one_shot).run(), 20
    )
    assert ended.reason == "refused"
    assert ended.error is not None and ended.error.call_over
    assert events.of(ApiProblem)[0].error.short == "Call is over (409)"


@pytest.mark.parametrize(
    ("key_kind", "words"),
    [
        ("bad", "API key rejected (401)"),
        ("no scope", "Key lacks scope conversations:read_sensitive or :manage (403)"),
    ],
)
async def test_a_refused_key_is_told_in_words_and_never_retried(
    api_emulator_live: ApiEmulator, key_kind: str, words: str
) -> None:
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name="f-k")
    key = "ak_not_a_real_key" if key_kind == "bad" else api_emulator_live.add_key(scopes=())
    client = AnyreachClient(api_emulator_live.url, key, retries=FAST_RETRY, timeout=2.0)
    events = Recorded()
    try:
        ended = await asyncio.wait_for(
            CallFollower(conversation.id, client, events, policy=FAST).run(), 20
        )
    finally:
        await client.aclose()
    assert ended.reason == "refused"
    problems = events.of(ApiProblem)
    assert len(problems) == 1 and not problems[0].retrying
    assert problems[0].error.short == words
    assert key not in repr(events.events) and key not in (ended.message or "")
    asked = [r for r in api_emulator_live.requests if "listener-token" in r.path]
    assert len(asked) == 1, "a refused key is asked once"


async def test_gives_up_after_its_patience_while_the_api_is_down_and_recovers_before(
    api_emulator_live: ApiEmulator, client: AnyreachClient
) -> None:
    conversation = api_emulator_live.create_conversation(status="in_progress", room_name="f-p")
    # Down for longer than the patience: gives up, naming what it kept hitting.
    api_emulator_live.fail_for(30.0, 503)
    events = Recorded()
    patient = dataclasses.replace(FAST, patience_s=1.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ended = await asyncio.wait_for(
        CallFollower(conversation.id, client, events, policy=patient).run(), 30
    )
    assert ended.reason == "gave_up"
    assert loop.time() - started >= 1.5
    assert ended.error is not None and ended.error.kind is ErrorKind.UNAVAILABLE
    assert all(p.retrying for p in events.of(ApiProblem))
    api_emulator_live.clear_faults()

    # Down for less than the patience: recovers, and says so.
    # More failures than the client retries by itself (FAST_RETRY: 1 + 4 attempts).
    api_emulator_live.fail_next(6, 503, endpoint="listener_token")
    events = Recorded()
    follower = CallFollower(conversation.id, client, events, policy=patient)
    run = asyncio.create_task(follower.run())
    try:
        await events.until(lambda: follower.mints == 1, 30, "a token at last")
    finally:
        await follower.stop()
        await asyncio.wait_for(run, 10)
    assert events.of(ApiProblem) and events.of(Recovered)
    assert events.events.index(Recovered()) > events.events.index(events.of(ApiProblem)[-1])


async def test_a_room_that_refuses_every_join_is_given_up_after_the_patience(
    api_emulator: ApiEmulator, make_client: Callable[..., AnyreachClient]
) -> None:
    # The emulator mints tokens for a LiveKit URL nothing listens on.
    conversation = api_emulator.create_conversation(status="in_progress", room_name="f-x")
    events = Recorded()
    policy = dataclasses.replace(FAST, patience_s=2.0)
    ended = await asyncio.wait_for(
        CallFollower(conversation.id, make_client(), events, policy=policy).run(), 60
    )
    assert ended.reason == "gave_up"
    assert ended.message is not None and "gave up after 2 s" in ended.message
    assert events.of(SessionFailed), "each failed join said why"
    assert "connected" not in events.states()

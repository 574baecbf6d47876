"""Token refusals in words on their pane, a failing discovery, a rejected key."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.anyreach import FAST_RETRY, StackFactory
from tests.fixtures.live import FAST_POLICY, POLL_INTERVAL, LiveFactory, until
from tui.anyreach import AnyreachClient
from tui.demo.calls import CallOptions
from tui.demo.emulator import SCOPE_READ, ApiEmulator
from tui.demo.livekit_server import DEV_API_KEY, DEV_API_SECRET
from tui.monitor.discovery import KEY_REJECTED_BANNER
from tui.monitor.model import Dashboard
from tui.monitor.monitor import Monitor

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

ENDLESS = CallOptions(mode="tone", loop=True, time_scale=0.3)


@pytest.mark.timeout(90)
async def test_room_not_ready_waits_then_goes_live(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0, dial_delay=3.0)
    entry = stack.start_call("support", channel="telephone", options=ENDLESS)
    monitor = live_monitor(stack, pinned=[entry.conversation_id])
    call = monitor.dashboard.get(entry.conversation_id)
    assert call is not None
    # Active ("triggered") but no room while dialling: the API answers 404.
    await until(
        lambda: call.badge.text == "Waiting for room…", 20, "waiting badge", monitor.dashboard
    )
    await until(lambda: call.is_live, 40, "LIVE once the room exists", monitor.dashboard)
    assert stack.emulator.request_count("listener_token", status=404) >= 1


@pytest.mark.timeout(60)
async def test_each_refusal_shows_its_words_in_its_pane(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    emulator = stack.emulator
    over = emulator.create_conversation(status="completed")
    active = emulator.create_conversation(status="in_progress", room_name="room-x")
    gone = "no-such-conversation"
    read_only = emulator.add_key([SCOPE_READ])

    ok = live_monitor(stack, pinned=[over.id, gone], discovery=False)
    ended, missing = ok.dashboard.get(over.id), ok.dashboard.get(gone)
    assert ended is not None and missing is not None
    await until(lambda: ended.badge.text == "Ended", 20, "409 shows Ended", ok.dashboard)

    scoped = live_monitor(stack, api_key=read_only, pinned=[active.id], discovery=False)
    forbidden = scoped.dashboard.get(active.id)
    assert forbidden is not None
    await until(lambda: forbidden.error is not None, 20, "403 in words", scoped.dashboard)
    assert "403" in forbidden.badge.text
    assert "conversations:read_sensitive" in forbidden.badge.text
    assert ":manage" in forbidden.badge.text

    # Without discovery nothing says the unknown id is active: it is waited for a
    # while, then named.  With discovery running it is named at once (next test).
    assert missing.badge.text == "Waiting for room…"


@pytest.mark.timeout(60)
async def test_unknown_conversation_is_named_when_discovery_says_it_is_not_active(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    monitor = live_monitor(stack, pinned=["no-such-conversation"])
    call = monitor.dashboard.get("no-such-conversation")
    assert call is not None
    await until(
        lambda: call.badge.text == "Conversation not found (404)",
        20,
        "404 in words",
        monitor.dashboard,
    )


@pytest.mark.timeout(60)
async def test_rejected_key_stops_discovery_with_one_banner(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    key = stack.emulator.add_key()
    monitor = live_monitor(stack, api_key=key)
    poller = monitor.poller
    assert poller is not None
    await until(lambda: poller.polls >= 1, 20, "a first poll")
    assert monitor.dashboard.banner is None
    stack.emulator.revoke_key(key)
    await until(lambda: poller.stopped, 20, "discovery stops", monitor.dashboard)
    assert monitor.dashboard.banner == KEY_REJECTED_BANNER
    listings = stack.emulator.request_count("conversations", status=401)
    stack.start_call("support", channel="telephone", options=ENDLESS)
    polls = poller.polls
    await asyncio.sleep(3 * POLL_INTERVAL)  # three poll intervals: no poll may happen
    assert poller.polls == polls
    assert stack.emulator.request_count("conversations", status=401) == listings
    assert not monitor.dashboard.calls


@pytest.mark.timeout(90)
async def test_discovery_failing_shows_a_banner_keeps_panes_and_recovers(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    first = stack.start_call("support", channel="webrtc", options=ENDLESS)
    await stack.wait_in_progress(1)
    monitor = live_monitor(stack)
    dashboard, poller = monitor.dashboard, monitor.poller
    assert poller is not None
    await until(lambda: first.conversation_id in dashboard, 20, "a pane")
    call = dashboard.get(first.conversation_id)
    assert call is not None
    await until(lambda: call.is_live, 30, "LIVE", dashboard)

    stack.emulator.fail_for(4.0, 503, endpoint="conversations")
    await until(lambda: dashboard.banner is not None, 20, "a banner", dashboard)
    assert "Discovery failing" in (dashboard.banner or "")
    failed_polls = poller.polls
    await until(lambda: poller.polls >= failed_polls + 2, 20, "more failing polls")
    assert [c.conversation_id for c in dashboard.calls] == [first.conversation_id]
    assert call.is_live  # the session does not depend on discovery

    second = stack.start_call("support", channel="telephone", options=ENDLESS)
    await until(lambda: dashboard.banner is None, 30, "the banner goes", dashboard)
    await until(
        lambda: second.conversation_id in dashboard, 20, "new calls attach again", dashboard
    )
    assert first.conversation_id in dashboard


@pytest.mark.timeout(60)
async def test_a_refused_pane_retires_when_its_call_is_over(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    """A pane stuck on a 403 must not hold a slot of max_panes for the rest of the shift."""
    stack = await demo_stack(calls=0)
    emulator = stack.emulator
    active = emulator.create_conversation(status="in_progress", room_name="room-y")
    read_only = emulator.add_key([SCOPE_READ])  # may list calls, may not listen
    monitor = live_monitor(stack, api_key=read_only, retire_after_s=0.5)
    await until(lambda: active.id in monitor.dashboard, 20, "discovered", monitor.dashboard)
    refused = monitor.dashboard.get(active.id)
    assert refused is not None
    await until(lambda: refused.error is not None, 20, "403 in words", monitor.dashboard)
    emulator.set_status(active.id, "completed")
    await until(
        lambda: active.id not in monitor.dashboard, 20, "refused pane retired", monitor.dashboard
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_room_that_never_answers_shows_the_15_s_timeout_and_retries(
    silent_port: str,
) -> None:
    """The real 15 s default: the pane says so in words, then joins again with backoff."""
    async with ApiEmulator(silent_port, DEV_API_KEY, DEV_API_SECRET) as emulator:
        conversation = emulator.create_conversation(status="in_progress", room_name="mute")
        client = AnyreachClient(emulator.url, emulator.admin_key, retries=FAST_RETRY)
        dashboard = Dashboard()
        monitor = Monitor(
            dashboard, client, pinned=[conversation.id], discovery=False, policy=FAST_POLICY
        )
        monitor.start()
        pane = dashboard.get(conversation.id)
        assert pane is not None
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await until(lambda: pane.error is not None, 30, "the timeout in words", dashboard)
            waited = loop.time() - started
            assert pane.error is not None and "within 15 s" in pane.error, pane.error
            assert 14.0 <= waited <= 20.0, f"the timeout came after {waited:.1f} s"
            await until(
                lambda: monitor.followers[conversation.id].mints >= 2, 30, "a retry", dashboard
            )
            assert not pane.ended, "the pane keeps trying while the call is active"
        finally:
            await monitor.aclose()
            await client.aclose()

"""Discovery attaches calls by itself; ended calls show Ended and retire; pinned ones stay."""

from __future__ import annotations

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.live import LiveFactory, until
from tui.demo.calls import CallOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

SHORT_CALL = CallOptions(mode="tone", max_lines=6, time_scale=0.3)
LONG_CALL = CallOptions(mode="tone", loop=True, time_scale=0.3)


@pytest.mark.timeout(120)
async def test_new_call_gets_a_pane_within_two_polls_then_ends_and_retires_unless_pinned(
    demo_stack: StackFactory, live_monitor: LiveFactory
) -> None:
    stack = await demo_stack(calls=0)
    pinned = stack.start_call("support", channel="webrtc", options=LONG_CALL)
    monitor = live_monitor(stack, pinned=[pinned.conversation_id], retire_after_s=1.0)
    dashboard, poller = monitor.dashboard, monitor.poller
    assert poller is not None
    await until(lambda: poller.polls >= 1, 20, "a first poll")

    # A phone call is active ("triggered", dialling) from the moment it exists.
    entry = stack.start_call("support", channel="telephone", options=SHORT_CALL)
    assert entry.status == "triggered"
    polls_when_created = poller.polls
    await until(lambda: entry.conversation_id in dashboard, 30, "a pane for the new call")
    # The poll in flight when the call began may have missed it; the next one may not.
    assert poller.polls - polls_when_created <= 2

    new_call = dashboard.get(entry.conversation_id)
    pinned_call = dashboard.get(pinned.conversation_id)
    assert new_call is not None and pinned_call is not None
    await until(lambda: new_call.is_live, 30, "the new call LIVE", dashboard)
    await until(lambda: pinned_call.is_live, 30, "the pinned call LIVE", dashboard)

    await until(lambda: new_call.badge.text == "Ended", 60, "the new call shows Ended", dashboard)
    await until(lambda: entry.conversation_id not in dashboard, 10, "the ended call retires")
    # The pinned call ends too (its agent hangs up), and stays.
    assert pinned.call is not None
    await pinned.call.stop()
    await until(lambda: pinned_call.badge.text == "Ended", 60, "pinned shows Ended", dashboard)
    polls = poller.polls
    await until(lambda: poller.polls >= polls + 3, 20, "three more polls")
    assert pinned.conversation_id in dashboard
    assert entry.conversation_id not in dashboard  # retired calls are not attached again

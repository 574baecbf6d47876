"""The dashboard against the real stack: livekit-server, API emulator, simulated calls,
real listen sessions, the real audio router (and PulseAudio, recorded, for routing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.audio_analysis import assert_only, assert_silent, is_silent, ms, onset, windows
from tests.fixtures.anyreach import StackFactory
from tests.fixtures.app import screen_text
from tests.fixtures.audio import PulseServer, wait_until_playing
from tui.anyreach import AnyreachClient
from tui.app.app import DashboardApp
from tui.audio import AudioRouter, PyAudioDevice, open_output_device
from tui.demo.calls import CallOptions
from tui.monitor.model import Dashboard
from tui.monitor.monitor import Monitor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

A_HZ, B_HZ = 440.0, 1000.0
CLEAN = 0.6
SUSTAIN = ms(100)


async def until(
    predicate: Callable[[], bool], within: float, what: str, dashboard: Dashboard | None = None
) -> None:
    try:
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110  (state owned by other components)
                await asyncio.sleep(0.05)
    except TimeoutError:
        badges = [c.badge.text for c in dashboard.calls] if dashboard else []
        raise AssertionError(f"never happened: {what} {badges}") from None


@pytest.mark.timeout(120)
async def test_panes_show_live_and_transcripts_and_q_ends_every_session(
    demo_stack: StackFactory,
) -> None:
    stack = await demo_stack(calls=0)
    options = CallOptions(mode="tone", loop=True, time_scale=0.3)
    entries = [stack.start_call("support", channel="webrtc", options=options) for _ in range(2)]
    client = AnyreachClient(stack.api_url, stack.api_key)
    dashboard = Dashboard()
    router = AudioRouter(open_output_device(None, no_audio=True))
    monitor = Monitor(dashboard, client, router, discovery=False)
    # Open panes once the calls are in progress (waiting for a room is the live-data work).
    await until(lambda: all(e.status == "in_progress" for e in entries), 30, "calls in progress")
    for entry in entries:
        dashboard.add_call(entry.conversation_id)
    app = DashboardApp(dashboard, monitor)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await until(
                lambda: all(c.is_live for c in dashboard.calls), 30, "both calls LIVE", dashboard
            )
            await pilot.pause(0.1)
            assert screen_text(app).count("LIVE") == 2  # once per pane, nowhere else

            def some_sent_text_on_screen() -> bool:
                text = screen_text(app)
                return all(
                    any(seg.text[:20] in text for seg in entry.call.sent_segments if seg.final)
                    for entry in entries
                    if entry.call is not None
                )

            await until(some_sent_text_on_screen, 40, "each call's transcript on screen")
            sessions = [f.session for f in monitor.followers.values()]
            assert len(sessions) == 2 and all(s is not None for s in sessions)
            await pilot.press("q")
            await until(lambda: not app.is_running, 10, "the app exits after q")
        assert app.return_value == 0
        assert all(s.get_state() == "disconnected" for s in sessions if s is not None)
    finally:
        router.close()
        await client.aclose()


@pytest.mark.timeout(150)
async def test_with_listening_on_moving_focus_moves_what_is_heard(
    demo_stack: StackFactory,
    pulse_server: PulseServer,
) -> None:
    stack = await demo_stack(calls=0)
    entries = [
        stack.start_call(
            "support", channel="webrtc", options=CallOptions(mode="tone", tone_hz=hz, loop=True)
        )
        for hz in (A_HZ, B_HZ)
    ]
    client = AnyreachClient(stack.api_url, stack.api_key)
    device = open_output_device(None)
    assert isinstance(device, PyAudioDevice), device.notice
    router = AudioRouter(device)
    dashboard = Dashboard()
    monitor = Monitor(dashboard, client, router, discovery=False)
    # Open panes once the calls are in progress (waiting for a room is the live-data work).
    await until(lambda: all(e.status == "in_progress" for e in entries), 30, "calls in progress")
    for entry in entries:
        dashboard.add_call(entry.conversation_id)
    a_id, b_id = (e.conversation_id for e in entries)
    app = DashboardApp(dashboard, monitor)
    try:
        await wait_until_playing(device)
        async with app.run_test(size=(160, 40)) as pilot:
            await until(
                lambda: all(c.is_live for c in dashboard.calls), 30, "both calls LIVE", dashboard
            )
            await asyncio.sleep(1.0)  # the bots' tones are flowing by now
            assert router.heard == frozenset()  # focused automatically, but not listening
            recorder = await asyncio.to_thread(pulse_server.record)
            await asyncio.sleep(1.0)  # listening is off: nothing may play
            at_space = recorder.recorded_samples()
            await pilot.press("space")
            assert router.heard == {a_id}
            await asyncio.sleep(2.0)
            at_switch = recorder.recorded_samples()
            await pilot.press("right")
            assert router.heard == {b_id}
            await asyncio.sleep(2.0)
            at_m = recorder.recorded_samples()
            await pilot.press("m")
            assert router.heard == frozenset()
            await asyncio.sleep(1.0)
            samples = await asyncio.to_thread(recorder.stop)
            await pilot.press("q")
            await until(lambda: not app.is_running, 10, "the app exits after q")
    finally:
        router.close()
        device.close()
        await client.aclose()

    # Positions are recorded-sample counts read at each key press: the sound of a
    # press can only come after its mark.
    assert_silent(samples, 0, at_space, (A_HZ, B_HZ))
    a_onset = onset(samples, A_HZ, start=at_space, sustain=SUSTAIN)
    assert a_onset is not None, "space did not make the focused call heard"
    a_dropouts = assert_only(samples, a_onset + ms(20), at_switch, A_HZ, B_HZ, CLEAN)
    b_first = onset(samples, B_HZ, start=at_switch, sustain=ms(20))
    assert b_first is not None, "after moving focus, the other call was never heard"
    # From B's first sound on, A is never heard again (it faded out within 5 ms).
    b_dropouts = assert_only(samples, b_first + ms(20), at_m, B_HZ, A_HZ, CLEAN)
    silent_from = next(
        (at for at, w in windows(samples, at_m, samples.size, ms(10)) if is_silent(w)), None
    )
    assert silent_from is not None, "m never silenced the output"
    assert_silent(samples, silent_from, samples.size, (A_HZ, B_HZ))
    print(
        f"\naudio truth: A heard {(a_onset - at_space) / 48:.0f} ms after space, "
        f"switch {(b_first - at_switch) / 48:.0f} ms, silent {(silent_from - at_m) / 48:.0f} ms "
        f"after m; dropout windows A {a_dropouts[0]}/{a_dropouts[1]}, "
        f"B {b_dropouts[0]}/{b_dropouts[1]}; no bleed"
    )
    # The target is 100 ms (printed above, measured 70-90 ms here); the assertion is
    # the behaviour, with room for a loaded machine: m never leaves audio playing.
    assert silent_from - at_m <= ms(300), "m did not silence the output at once"

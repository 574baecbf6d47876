"""Pure-logic checks of the router's mixing: fades, flushes, priming, muting.

The device here is a stand-in that lets the test pull samples as the audio
thread would; everything audible is checked for real in test_audio_routing.py.
"""

from __future__ import annotations

import numpy as np

from tui.audio import AudioRouter
from tui.audio.device import Renderer, StatusListener

FRAME = 480
FADE = 240  # 5 ms


class PullDevice:
    name = "pull"
    available = True
    notice: str | None = None

    def __init__(self) -> None:
        self.render: Renderer | None = None

    def set_renderer(self, render: Renderer | None) -> None:
        self.render = render

    def add_status_listener(self, listener: StatusListener) -> None:
        pass

    def close(self) -> None:
        pass

    def pull(self, n: int) -> np.ndarray:
        assert self.render is not None
        return np.frombuffer(self.render(n), dtype="<i2").astype(np.int32)


def const(value: int, n: int = FRAME) -> bytes:
    return np.full(n, value, dtype="<i2").tobytes()


def feed(router: AudioRouter, values: dict[str, int], frames: int = 1) -> None:
    for _ in range(frames):
        for sid, value in values.items():
            router.output_for(sid).write(const(value))


def test_nothing_plays_until_listening_then_only_the_focused_session() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.focus("a")
    assert router.listening is False and router.heard is None
    feed(router, {"a": 1000, "b": -1000}, frames=5)
    assert not device.pull(FRAME * 4).any()
    router.set_listening(True)
    assert router.heard == "a"
    feed(router, {"a": 1000, "b": -1000}, frames=5)
    out = device.pull(FRAME * 4)
    assert out.min() >= 0 and out.max() == 1000  # fades in, never a sample of b


def test_a_switch_crossfades_within_10_ms_without_a_jump() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.focus("a")
    router.set_listening(True)
    feed(router, {"a": 8000, "b": -8000}, frames=6)
    device.pull(FRAME)  # a is playing at full level
    assert device.pull(FRAME)[-1] == 8000
    router.focus("b")
    feed(router, {"a": 8000, "b": -8000}, frames=6)
    out = device.pull(FRAME * 2)
    assert (out[FADE:] == -8000).all()  # a gone and b at full level within 5 ms
    assert np.abs(np.diff(out)).max() <= 2 * 8000 / FADE + 2  # a ramp, no click


def test_flush_drops_buffered_audio_at_once_with_a_short_fade() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.focus("a")
    router.set_listening(True)
    out_a = router.output_for("a")
    for _ in range(6):
        out_a.write(const(5000))
    device.pull(FRAME)
    out_a.flush()
    out = device.pull(FRAME * 2)
    assert (out[FADE:] == 0).all()  # 50 ms of buffered audio gone after a 5 ms fade
    assert out[0] > 0 and np.abs(np.diff(out)).max() <= 5000 / FADE + 2


def test_a_dry_buffer_plays_silence_and_is_counted() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.focus("a")
    router.set_listening(True)
    feed(router, {"a": 3000}, frames=4)
    device.pull(FRAME * 6)
    assert router.underruns == 1
    assert not device.pull(FRAME).any()  # waits to re-prime instead of stuttering


def test_mix_mode_plays_several_calls_at_their_volumes() -> None:
    device = PullDevice()
    router = AudioRouter(device, mix=True)
    router.set_listening(True)
    router.output_for("a")
    router.output_for("b")
    router.set_volume("b", 0.5)
    feed(router, {"a": 1000, "b": 2000}, frames=6)
    out = device.pull(FRAME * 3)
    assert out[-1] == 2000  # 1000 * 1.0 + 2000 * 0.5
    assert sorted(router.audible()) == ["a", "b"]


def test_writes_accept_any_buffer_and_removed_sessions_are_ignored() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    out = router.output_for("a", level=lambda: -20.0)
    out.write(memoryview(const(7)))
    out.write(np.full(FRAME, 7, dtype=np.int16))
    assert router.level("a") == -20.0
    router.focus("a")
    router.remove("a")
    assert router.focused is None and router.level("a") is None
    out.write(const(7))  # a late frame from an ending session: accepted, dropped

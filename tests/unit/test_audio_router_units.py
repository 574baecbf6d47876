"""Pure-logic checks of the router's mixing: fades, flushes, priming, muting, panning.

The device here is a stand-in that lets the test pull samples as the audio
thread would; everything audible is checked for real in test_audio_routing.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tui.audio import AudioRouter, channel_gains
from tui.audio.device import FRAME_BYTES, Renderer, StatusListener

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

    def pull_stereo(self, n: int) -> np.ndarray:
        """(n, 2): the left and right samples of n frames."""
        assert self.render is not None
        data = self.render(n)
        assert len(data) == FRAME_BYTES * n
        return np.frombuffer(data, dtype="<i2").astype(np.int32).reshape(n, 2)

    def pull(self, n: int) -> np.ndarray:
        """n frames of sessions heard at the centre: both channels carry the same samples."""
        stereo = self.pull_stereo(n)
        assert (stereo[:, 0] == stereo[:, 1]).all(), "a centred session plays the same both sides"
        return stereo[:, 0]


def const(value: int, n: int = FRAME) -> bytes:
    return np.full(n, value, dtype="<i2").tobytes()


def feed(router: AudioRouter, values: dict[str, int], frames: int = 1) -> None:
    for _ in range(frames):
        for sid, value in values.items():
            router.output_for(sid).write(const(value))


def test_nothing_plays_until_a_session_is_heard_then_only_that_one() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    assert router.heard == frozenset()
    feed(router, {"a": 1000, "b": -1000}, frames=5)
    assert not device.pull(FRAME * 4).any()
    router.set_heard(["a"])
    assert router.heard == {"a"}
    feed(router, {"a": 1000, "b": -1000}, frames=5)
    out = device.pull(FRAME * 4)
    assert out.min() >= 0 and out.max() == 1000  # fades in, never a sample of b


def test_a_switch_crossfades_within_10_ms_without_a_jump() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
    feed(router, {"a": 8000, "b": -8000}, frames=6)
    device.pull(FRAME)  # a is playing at full level
    assert device.pull(FRAME)[-1] == 8000
    router.set_heard(["b"])
    feed(router, {"a": 8000, "b": -8000}, frames=6)
    out = device.pull(FRAME * 2)
    assert (out[FADE:] == -8000).all()  # a gone and b at full level within 5 ms
    assert np.abs(np.diff(out)).max() <= 2 * 8000 / FADE + 2  # a ramp, no click


def test_hearing_nothing_fades_out_to_silence() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
    feed(router, {"a": 6000}, frames=6)
    assert device.pull(FRAME * 2)[-1] == 6000
    router.set_heard([])
    assert router.heard == frozenset()
    feed(router, {"a": 6000}, frames=6)
    out = device.pull(FRAME * 2)
    assert (out[FADE:] == 0).all()  # silent within 5 ms
    assert out[0] > 0 and np.abs(np.diff(out)).max() <= 6000 / FADE + 2


def test_flush_drops_buffered_audio_at_once_with_a_short_fade() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
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
    router.set_heard(["a"])
    feed(router, {"a": 3000}, frames=4)
    device.pull(FRAME * 6)
    assert router.underruns == 1
    assert not device.pull(FRAME).any()  # waits to re-prime instead of stuttering


def test_several_heard_sessions_play_as_their_sum() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(iter(["a", "b"]))  # any iterable
    assert router.heard == {"a", "b"}
    feed(router, {"a": 1000, "b": 2000, "c": 4000}, frames=6)
    out = device.pull(FRAME * 3)
    assert out[-1] == 3000  # a + b, never c
    assert out[0] >= 0 and np.abs(np.diff(out)).max() <= 3000 / FADE + 2  # both fade in


def test_a_mix_fades_one_session_out_and_keeps_the_other() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a", "b"])
    feed(router, {"a": 1000, "b": 2000}, frames=6)
    assert device.pull(FRAME * 2)[-1] == 3000
    router.set_heard(["a"])
    feed(router, {"a": 1000, "b": 2000}, frames=6)
    out = device.pull(FRAME * 2)
    assert (out[FADE:] == 1000).all()  # b gone within 5 ms, a untouched
    assert np.abs(np.diff(out)).max() <= 2000 / FADE + 2
    router.set_heard(["a", "b"])  # and back into the mix
    feed(router, {"a": 1000, "b": 2000}, frames=6)
    out = device.pull(FRAME * 2)
    assert (out[FADE:] == 3000).all() and np.abs(np.diff(out)).max() <= 2000 / FADE + 2


def test_clipping_a_loud_mix_saturates_instead_of_wrapping() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a", "b"])
    feed(router, {"a": 30000, "b": 30000}, frames=6)
    assert device.pull(FRAME * 3)[-1] == 32767


def test_writes_accept_any_buffer() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
    out = router.output_for("a")
    out.write(memoryview(const(7)))
    out.write(np.full(FRAME, 7, dtype=np.int16))
    out.write(const(7)[:-1])  # an odd byte is dropped, not a crash
    out.write(const(7))
    assert device.pull(FRAME * 3)[-1] == 7


def test_removed_sessions_are_ignored() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
    out = router.output_for("a")
    feed(router, {"a": 4000}, frames=8)
    assert device.pull(FRAME)[-1] > 0  # a plays
    router.remove("a")
    # Its buffered audio is gone at once, and late frames from the ending session
    # (enough to prime a buffer) are accepted and dropped.
    for _ in range(8):
        out.write(const(4000))
    assert not device.pull(FRAME * 4).any()
    assert router.heard == {"a"}  # what is heard is the caller's to change
    # A new output for the same id starts afresh and plays, since "a" is still heard.
    feed(router, {"a": 2000}, frames=8)
    assert device.pull(FRAME * 4)[-1] == 2000


def test_removed_sessions_keep_counting_their_underruns() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
    feed(router, {"a": 3000}, frames=4)
    device.pull(FRAME * 6)
    router.remove("a")
    assert router.underruns == 1


# -- stereo: where a heard session sits, and how loud -------------------------------------


def test_the_pan_law_is_constant_power_and_unity_at_the_centre() -> None:
    assert channel_gains(1.0, 0.0) == (1.0, 1.0)  # a call alone sounds as received
    assert channel_gains(0.5, 0.0) == (0.5, 0.5)
    for pan in (-1.0, -0.7, -0.3, 0.2, 0.7, 1.0):
        left, right = channel_gains(1.0, pan)
        assert math.isclose(left**2 + right**2, 2.0)  # as loud wherever it sits
    left, right = channel_gains(1.0, -0.7)
    assert math.isclose(left, 1.375, abs_tol=1e-3) and math.isclose(right, 0.330, abs_tol=1e-3)
    assert math.isclose(20 * math.log10(left / right), 12.4, abs_tol=0.05)
    assert channel_gains(1.0, 0.7) == pytest.approx((right, left))  # the mirror image
    assert channel_gains(1.0, -5.0) == pytest.approx((math.sqrt(2), 0.0))  # clamped
    assert channel_gains(-1.0, 0.0) == (0.0, 0.0)


def test_placed_sessions_play_at_their_side_and_gain() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard({"a": (1.0, 0.0), "b": (1.0, -0.7), "c": (0.5, 0.7)})
    assert router.heard == {"a", "b", "c"}  # heard stays the ids
    assert router.placements == {"a": (1.0, 0.0), "b": (1.0, -0.7), "c": (0.5, 0.7)}
    feed(router, {"a": 1000}, frames=6)
    assert (device.pull_stereo(FRAME * 3)[-1] == (1000, 1000)).all()
    router.set_heard({"b": (1.0, -0.7)})
    feed(router, {"b": 1000}, frames=6)
    left, right = device.pull_stereo(FRAME * 3)[-1]
    assert abs(left - 1375) <= 1 and abs(right - 330) <= 1
    router.set_heard({"c": (0.5, 0.7)})
    feed(router, {"c": 1000}, frames=6)
    left, right = device.pull_stereo(FRAME * 3)[-1]
    assert abs(left - 165) <= 1 and abs(right - 687) <= 1


def test_plain_ids_play_at_the_centre_with_gain_one() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard(["a"])
    assert router.placements == {"a": (1.0, 0.0)}
    feed(router, {"a": 1234}, frames=6)
    assert (device.pull_stereo(FRAME * 3)[-1] == (1234, 1234)).all()


def test_a_session_moving_side_or_volume_glides_there_within_5_ms() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard({"a": (1.0, 0.0)})
    feed(router, {"a": 8000}, frames=6)
    assert (device.pull_stereo(FRAME * 2)[-1] == (8000, 8000)).all()
    router.set_heard({"a": (1.5, -1.0)})  # the loudest move there is: 8000 -> 16970 left
    feed(router, {"a": 8000}, frames=6)
    out = device.pull_stereo(FRAME * 2)
    assert abs(out[FADE, 0] - 16970) <= 2 and out[FADE, 1] == 0  # there within 5 ms
    assert (out[FADE:] == out[FADE]).all()  # and resting
    steps = np.abs(np.diff(out, axis=0)).max(axis=0)
    assert steps[0] <= (16970 - 8000) / FADE + 2 and steps[1] <= 8000 / FADE + 2  # no click


def test_a_session_leaving_a_stereo_mix_fades_out_on_both_sides() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard({"a": (1.0, 0.0), "b": (1.0, 0.7)})
    feed(router, {"a": 1000, "b": 2000}, frames=6)
    left, right = device.pull_stereo(FRAME * 2)[-1]
    assert abs(left - (1000 + 660)) <= 2 and abs(right - (1000 + 2750)) <= 2
    router.set_heard({"a": (1.0, 0.0)})
    feed(router, {"a": 1000, "b": 2000}, frames=6)
    out = device.pull_stereo(FRAME * 2)
    assert (out[FADE:] == 1000).all()  # b gone from both channels within 5 ms
    assert np.abs(np.diff(out, axis=0)).max() <= 2750 / FADE + 2


def test_a_flushed_panned_session_fades_out_on_its_side() -> None:
    device = PullDevice()
    router = AudioRouter(device)
    router.set_heard({"a": (1.0, -0.7)})
    out_a = router.output_for("a")
    for _ in range(6):
        out_a.write(const(4000))
    device.pull_stereo(FRAME)
    out_a.flush()
    out = device.pull_stereo(FRAME * 2)
    assert (out[FADE:] == 0).all() and out[0, 0] > out[0, 1] > 0
    assert np.abs(np.diff(out, axis=0)).max() <= 4000 * 1.375 / FADE + 2

"""Pure-logic units of the listen layer: levels, the event emitter, the mixer, messages."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from tui.listen.audio import BLOCK_SAMPLES, MAX_LAG_SAMPLES, FrameMixer
from tui.listen.errors import connect_failure_message, install_log_redaction, redact_secrets
from tui.listen.events import EventEmitter
from tui.listen.levels import SILENCE_DBFS, measure, measure_pcm

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsaXN0ZW5lciJ9.c2lnbmF0dXJlLWJ5dGVz"


def sine(hz: float, amplitude: float, samples: int = 480) -> np.ndarray:
    t = np.arange(samples) / 48_000
    return (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype(np.int16)


# ---- levels -------------------------------------------------------------------------
def test_full_scale_sine_peaks_near_0_dbfs_with_rms_3_db_lower() -> None:
    level = measure(sine(1000, 1.0, 4800))
    assert level.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert level.rms_dbfs == pytest.approx(-3.01, abs=0.05)


def test_half_scale_is_minus_6_dbfs() -> None:
    assert measure(sine(1000, 0.5, 4800)).peak_dbfs == pytest.approx(-6.02, abs=0.05)


def test_silence_and_empty_frames_sit_at_the_floor() -> None:
    assert measure(np.zeros(480, dtype=np.int16)).rms_dbfs == SILENCE_DBFS
    assert measure_pcm(b"").peak_dbfs == SILENCE_DBFS


def test_most_negative_sample_does_not_overflow() -> None:
    assert measure(np.full(10, -32768, dtype=np.int16)).peak_dbfs == pytest.approx(0.0)


def test_measure_pcm_reads_little_endian_bytes() -> None:
    frame = sine(440, 0.25).astype("<i2").tobytes()
    assert measure_pcm(frame).peak_dbfs == pytest.approx(-12.04, abs=0.1)


# ---- event emitter --------------------------------------------------------------------
async def test_failing_handlers_are_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter("t")
    seen: list[str] = []

    def broken(value: str) -> None:
        raise RuntimeError("boom")

    async def broken_async(value: str) -> None:
        raise RuntimeError("async boom")

    emitter.on("x", broken)
    emitter.on("x", broken_async)
    emitter.on("x", seen.append)
    with caplog.at_level(logging.ERROR):
        emitter.emit("x", "hello")
        await emitter.drain(grace=1.0)
    assert seen == ["hello"]
    assert sum("handler failed" in r.message for r in caplog.records) == 2


async def test_slow_async_handler_does_not_delay_emit_or_others() -> None:
    emitter = EventEmitter("t")
    release = asyncio.Event()
    slow_seen: list[int] = []
    fast_seen: list[int] = []

    async def slow(value: int) -> None:
        await release.wait()
        slow_seen.append(value)

    emitter.on("x", slow)
    emitter.on("x", fast_seen.append)
    for value in range(3):
        emitter.emit("x", value)  # returns at once although slow() is blocked
    assert fast_seen == [0, 1, 2]
    assert slow_seen == []
    release.set()
    await emitter.drain(grace=1.0)
    assert slow_seen == [0, 1, 2]  # in order, each run after the previous one


async def test_off_removes_a_handler_and_drain_cancels_stragglers() -> None:
    emitter = EventEmitter("t")
    seen: list[int] = []
    emitter.on("x", seen.append)
    emitter.off("x", seen.append)
    emitter.emit("x", 1)
    assert seen == []

    async def forever(value: int) -> None:
        await asyncio.Event().wait()

    emitter.on("x", forever)
    emitter.emit("x", 1)
    await emitter.drain(grace=0.05)
    assert emitter.pending == 0


# ---- mixer ----------------------------------------------------------------------------
def test_mixer_sums_two_tracks_block_by_block() -> None:
    blocks: list[np.ndarray] = []
    mixer = FrameMixer(blocks.append)
    mixer.add_source("agent")
    mixer.add_source("caller")
    mixer.push("agent", np.full(480, 1000, dtype=np.int16))
    assert blocks == []  # waits for the caller's block
    mixer.push("caller", np.full(480, 234, dtype=np.int16))
    assert len(blocks) == 1 and np.all(blocks[0] == 1234)


def test_mixer_clips_instead_of_wrapping() -> None:
    blocks: list[np.ndarray] = []
    mixer = FrameMixer(blocks.append)
    mixer.add_source("a")
    mixer.add_source("b")
    for key in ("a", "b"):
        mixer.push(key, np.full(480, 30000, dtype=np.int16))
    assert np.all(blocks[0] == 32767)


def test_mixer_does_not_wait_forever_for_a_stalled_track() -> None:
    blocks: list[np.ndarray] = []
    mixer = FrameMixer(blocks.append)
    mixer.add_source("agent")
    mixer.add_source("caller")  # never delivers
    for _ in range(MAX_LAG_SAMPLES // BLOCK_SAMPLES):
        mixer.push("agent", np.full(480, 7, dtype=np.int16))
    assert len(blocks) >= 1 and np.all(blocks[0] == 7)


def test_mixer_releases_waiting_audio_when_a_track_goes_away() -> None:
    blocks: list[np.ndarray] = []
    mixer = FrameMixer(blocks.append)
    mixer.add_source("agent")
    mixer.add_source("caller")
    mixer.push("agent", np.full(960, 5, dtype=np.int16))
    mixer.remove_source("caller")
    assert len(blocks) == 2


# ---- messages and secrets ---------------------------------------------------------------
def test_connect_errors_become_plain_sentences_without_the_token() -> None:
    native = (
        "engine: signal failure: client error: 401 Unauthorized - invalid token: "
        f"{JWT}, error: token has invalid claims: token is expired"
    )
    message = connect_failure_message(native, "wss://lk.example.com")
    assert message == "The listener token has expired: request a new one."
    wrong_key = native.replace(
        "token has invalid claims: token is expired",
        "token signature is invalid: signature is invalid",
    )
    message = connect_failure_message(wrong_key, "wss://lk.example.com")
    assert "different key" in message and "lk.example.com" in message and "eyJ" not in message
    refused = "engine: signal failure: transport connection error: IO error: Connection refused"
    assert "connection refused" in connect_failure_message(refused, "ws://127.0.0.1:1")
    unknown = connect_failure_message(f"weird failure {JWT}", "ws://h:1?access_token=" + JWT)
    assert "eyJ" not in unknown


def test_redaction_covers_query_tokens_and_the_livekit_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert "secret-value" not in redact_secrets("ws://h/rtc?access_token=secret-value&x=1")
    install_log_redaction()
    with caplog.at_level(logging.ERROR, logger="livekit"):
        logging.getLogger("livekit").error("signal failed: invalid token: %s", JWT)
    assert caplog.records and "eyJ" not in caplog.text

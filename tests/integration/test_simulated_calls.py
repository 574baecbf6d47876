"""Simulated calls against the real livekit-server, seen by a plain rtc subscriber."""

from __future__ import annotations

import asyncio
import os
import re

import numpy as np
import pytest
from livekit import rtc

from tests.fixtures.calls import CallObserver
from tui.demo.bot_process import BotProcess, CallSpec
from tui.demo.bots import SentSegment
from tui.demo.calls import CallOptions, SimulatedCall
from tui.demo.livekit_server import LiveKitServer
from tui.demo.scenarios import (
    MAX_FIRST_PAUSE,
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_names,
)
from tui.demo.tts import AGENT_VOICE, CALLER_VOICE, SAMPLE_RATE, duration_of, synthesize

SEGMENT_ID = re.compile(r"^SG_[0-9a-f]{12}$")
CALLER = "+15551230001"
AGENT = "agent-ava"
VOICES = {"agent": AGENT_VOICE, "caller": CALLER_VOICE}


async def settle(observer: CallObserver, call: SimulatedCall, seconds: float = 2.0) -> None:
    """Give the last packets time to arrive after the call ended."""
    await asyncio.wait_for(call.wait_ended(), 60)
    await asyncio.sleep(seconds)


def band_fractions(samples: np.ndarray, bands: list[tuple[float, float]]) -> list[float]:
    """Share of the signal's energy (above 20 Hz) inside each band; one FFT for all."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    total = spectrum[freqs > 20].sum()
    if not total:
        return [0.0 for _ in bands]
    return [float(spectrum[(freqs >= lo) & (freqs <= hi)].sum() / total) for lo, hi in bands]


def band_fraction(samples: np.ndarray, low: float, high: float) -> float:
    return band_fractions(samples, [(low, high)])[0]


def rms_dbfs(samples: np.ndarray) -> float:
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) / 32768
    return float(20 * np.log10(max(rms, 1e-9)))


def check_streams(observer: CallObserver, sent: list[SentSegment]) -> None:
    """Every stream update the bots sent arrived with the right sender, id and finality."""
    sent_streams = [s for s in sent if s.channel == "stream"]
    assert sent_streams, "the bots sent no transcription"
    roles = {"agent": AGENT, "caller": CALLER}
    received = observer.streams
    for stream in received:
        assert stream.error is None, stream
        assert SEGMENT_ID.match(stream.segment_id), stream
        assert stream.header.get("lk.transcription_final") in {"true", "false"}
        assert stream.attributes.get("lk.transcribed_track_id", "").startswith("TR_")

    for segment_id in {s.segment_id for s in sent_streams}:
        updates = [s for s in sent_streams if s.segment_id == segment_id]
        role = updates[0].role
        got = [r for r in received if r.segment_id == segment_id]
        assert got, f"segment {segment_id} never arrived"
        assert {r.sender for r in got} == {roles[role]}
        final_text = updates[-1].text
        if role == "agent":
            # one stream per segment: chunks appended, header not final, trailer final
            assert len(got) == 1
            assert got[0].header["lk.transcription_final"] == "false"
            assert got[0].final and got[0].text == final_text
            assert len(got[0].chunks) == len(final_text.split())
        else:
            # one short stream per update, each with the full text so far
            assert [(r.text, r.final) for r in got] == [(u.text, u.final) for u in updates]
            assert [r.header["lk.transcription_final"] for r in got][-1] == "true"
            assert all(not r.final for r in got[:-1])


# -- scenarios (data files) ------------------------------------------------------------


def test_shipped_scenarios_hold_the_call_contract() -> None:
    """Each default scenario lasts >= 60 s, speaks within 5 s, never pauses over 4 s."""
    names = scenario_names()
    assert {"support", "billing_dispute", "escalation", "long_call"} <= set(names)
    assert "agent_leaves_early" not in names  # runs only when asked for
    assert "agent_leaves_early" in scenario_names(include_on_demand=True)
    for name in names:
        scenario = load_scenario(name)
        roles = {line.role for line in scenario.lines}
        assert roles == {"agent", "caller"}
        assert scenario.lines[0].pause_before <= MAX_FIRST_PAUSE < 5
        assert max(line.pause_before for line in scenario.lines) < 4
        total = sum(
            line.pause_before + duration_of(synthesize(line.text, VOICES[line.role]))
            for line in scenario.lines
        )
        assert total >= 60, f"{name} lasts only {total:.0f} s"
    escalation = " ".join(line.text.lower() for line in load_scenario("escalation").lines)
    assert "cancel" in escalation and "supervisor" in escalation
    early = load_scenario("agent_leaves_early")
    assert early.on_demand and early.agent_leaves_after is not None


@pytest.mark.parametrize(
    "data",
    [
        {"lines": []},
        {"lines": [{"role": "robot", "text": "hi"}]},
        {"lines": [{"role": "agent", "text": "  "}]},
        {"lines": [{"role": "agent", "text": "hi", "pause_before": 9}]},
        {"lines": [{"role": "agent", "text": "hi", "volume": 3}]},
        {"lines": [{"role": "agent", "text": "hi"}], "agent_leaves_after": 5},
    ],
)
def test_invalid_scenarios_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ScenarioError):
        parse_scenario("bad", data)


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ScenarioError, match="unknown scenario"):
        load_scenario("no_such_call")
    with pytest.raises(ScenarioError):
        load_scenario("../support")


def test_speech_differs_per_role() -> None:
    text = "Thank you for calling."
    agent, caller = synthesize(text, AGENT_VOICE), synthesize(text, CALLER_VOICE)
    assert agent.dtype == np.int16 and rms_dbfs(agent) > -35
    assert len(agent) != len(caller) or not np.array_equal(agent, caller)
    assert synthesize(text, AGENT_VOICE) is agent  # cached per text and voice


# -- live calls ------------------------------------------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_tone_call_audio_and_transcripts_reach_a_plain_subscriber(
    livekit_server: LiveKitServer, simulated_call, call_observer
) -> None:
    observer = await call_observer(livekit_server, "tone-room")
    options = CallOptions(
        scenario="support", mode="tone", tone_hz=1000.0, max_lines=4, time_scale=0.3
    )
    # Each event with the number of segments the bots had sent by then.
    seen: list[tuple[str, int]] = []
    call = await simulated_call(
        livekit_server,
        "tone-room",
        options,
        on_event=lambda name, call: seen.append((name, len(call.sent_segments))),
    )
    await settle(observer, call)

    assert observer.kinds[AGENT] == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    assert observer.kinds[CALLER] == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
    agent_audio = observer.samples(AGENT)
    assert len(agent_audio) > SAMPLE_RATE  # over a second of the agent's tone
    steady = agent_audio[SAMPLE_RATE // 2 : SAMPLE_RATE // 2 + SAMPLE_RATE]
    assert rms_dbfs(steady) > -20
    assert band_fraction(steady, 980, 1020) > 0.9
    caller_audio = observer.samples(CALLER)
    assert len(caller_audio) == 0 or rms_dbfs(caller_audio) < -60  # the caller stays silent

    check_streams(observer, call.sent_segments)
    assert {s.role for s in call.sent_segments} == {"agent", "caller"}
    assert observer.legacy == []  # legacy packets only when asked for
    assert AGENT in observer.left  # the agent leaves the room at the end
    # The order calls.py promises: both bots join (each once; they start together, so
    # which of the two is first is not promised) before the script says anything; the
    # agent leaves after the last segment, and only then is the call over.
    sent = len(call.sent_segments)
    assert sent > 0
    assert sorted(seen[:2]) == [("agent_joined", 0), ("caller_joined", 0)]
    assert seen[2:] == [("agent_left", sent), ("ended", sent)]
    assert call.events == [name for name, _ in seen]
    assert call.agent.joins == call.caller.joins == 1


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_speech_call_carries_speech_like_audio_for_both_roles(
    livekit_server: LiveKitServer, simulated_call, call_observer
) -> None:
    observer = await call_observer(livekit_server, "speech-room")
    # the early-leaver's first two lines are short; the agent is still there for both
    options = CallOptions(scenario="agent_leaves_early", max_lines=2, time_scale=0.2)
    call = await simulated_call(livekit_server, "speech-room", options)
    await settle(observer, call)

    for identity in (AGENT, CALLER):
        audio = observer.samples(identity)
        voiced = audio[np.abs(audio) > 0]
        assert len(voiced) > SAMPLE_RATE, identity  # seconds of speech, not a blip
        assert rms_dbfs(voiced) > -40, identity
        voice_band, *narrow = band_fractions(
            voiced, [(80, 4000), *((f, f + 40) for f in range(80, 4000, 40))]
        )
        assert voice_band > 0.8, identity
        assert max(narrow) < 0.5, identity  # no single tone dominates: speech, not a sine
        envelope = np.array([rms_dbfs(w) for w in np.array_split(voiced, len(voiced) // 2400)])
        assert envelope.std() > 3, identity  # syllables come and go
    check_streams(observer, call.sent_segments)


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_legacy_transcription_uses_ids_of_its_own(
    livekit_server: LiveKitServer, simulated_call, call_observer
) -> None:
    observer = await call_observer(livekit_server, "legacy-room")
    options = CallOptions(
        scenario="billing_dispute",
        mode="tone",
        max_lines=2,
        time_scale=0.3,
        legacy_transcription=True,
    )
    call = await simulated_call(livekit_server, "legacy-room", options)
    await settle(observer, call)

    check_streams(observer, call.sent_segments)
    sent_legacy = [s for s in call.sent_segments if s.channel == "legacy"]
    assert {(s.segment_id, s.text, s.final) for s in sent_legacy} == {
        (r.segment_id, r.text, r.final) for r in observer.legacy
    }
    finals = {r.participant: r.text for r in observer.legacy if r.final}
    lines = load_scenario("billing_dispute").lines
    assert finals == {AGENT: lines[0].text, CALLER: lines[1].text}
    stream_ids = {s.segment_id for s in observer.streams}
    assert stream_ids and not stream_ids & {r.segment_id for r in observer.legacy}


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_old_agent_sends_legacy_packets_only(
    livekit_server: LiveKitServer, simulated_call, call_observer
) -> None:
    observer = await call_observer(livekit_server, "old-agent-room")
    options = CallOptions(
        scenario="support", mode="tone", max_lines=2, time_scale=0.3, stream_transcription=False
    )
    call = await simulated_call(livekit_server, "old-agent-room", options)
    await settle(observer, call)

    assert observer.streams == []
    assert {r.participant for r in observer.legacy if r.final} == {AGENT, CALLER}


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_agent_leaving_early_leaves_the_caller_alone(
    livekit_server: LiveKitServer, simulated_call, call_observer
) -> None:
    observer = await call_observer(livekit_server, "early-room")
    events: list[str] = []
    options = CallOptions(scenario="agent_leaves_early", mode="tone", time_scale=0.2)
    call = await simulated_call(
        livekit_server, "early-room", options, on_event=lambda name, _call: events.append(name)
    )
    await asyncio.wait_for(call.wait_ended(), 60)
    await asyncio.sleep(1.0)
    assert events[-2:] == ["agent_left", "ended"]
    assert AGENT in observer.left and CALLER not in observer.left  # the caller is still there
    said = {s.text for s in call.sent_segments if s.final}
    assert "Hello? Are you still there?" not in said  # nobody transcribes once the agent left


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_bots_rejoin_and_carry_on_after_the_server_restarts(
    livekit_server: LiveKitServer, simulated_call
) -> None:
    options = CallOptions(scenario="long_call", mode="tone", time_scale=0.3)
    call = await simulated_call(livekit_server, "restart-room", options)
    for _ in range(100):
        if any(s.final for s in call.sent_segments):
            break
        await asyncio.sleep(0.2)
    livekit_server.kill()  # as a crash: the room and its participants are gone
    await asyncio.sleep(1.0)
    livekit_server.start()  # same ports

    observer = CallObserver(livekit_server, "restart-room", "late-observer")
    await observer.connect()
    try:
        for _ in range(300):
            finals = {r.sender for r in observer.streams if r.final}
            if finals == {AGENT, CALLER} and observer.samples(AGENT).size > SAMPLE_RATE:
                break
            await asyncio.sleep(0.2)
        assert call.agent.rejoins >= 1 and call.caller.rejoins >= 1
        assert {r.sender for r in observer.streams if r.final} == {AGENT, CALLER}
        assert band_fraction(observer.samples(AGENT)[-SAMPLE_RATE:], 420, 460) > 0.9
        assert not call.ended  # the script carried on
    finally:
        await observer.close()


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_bot_process_runs_calls_in_another_process(
    livekit_server: LiveKitServer, call_observer
) -> None:
    observer = await call_observer(livekit_server, "proc-room-1")
    specs = [
        CallSpec(
            f"proc-room-{n}",
            CallOptions(mode="tone", tone_hz=700.0, max_lines=2, time_scale=0.3),
            caller_identity=f"+1555123000{n}",
        )
        for n in (1, 2)
    ]
    bots = BotProcess(livekit_server.url, livekit_server.api_key, livekit_server.api_secret, specs)
    with bots:
        ready = await bots.wait_ready_async()
        assert ready["rooms"] == ["proc-room-1", "proc-room-2"]
        assert bots.pid != os.getpid() and bots.running()
        await asyncio.to_thread(bots.wait_for, lambda m: m["event"] == "done", 60)
        pid = bots.pid
    assert pid is not None and not bots.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    await asyncio.sleep(1.0)
    assert band_fraction(observer.samples(AGENT)[:SAMPLE_RATE], 680, 720) > 0.9
    finals = [(room, s) for room, s in bots.sent_segments if s.final]
    assert {room for room, _ in finals} == {"proc-room-1", "proc-room-2"}
    room_one = [s for room, s in bots.sent_segments if room == "proc-room-1"]
    check_streams(observer, room_one)
    assert "api_secret" not in repr(bots) and livekit_server.api_secret not in repr(bots)

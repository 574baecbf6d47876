"""Eight sessions on eight calls in one process: each gets its own call, nothing else.

The bots run in a separate OS process (BotProcess) so this process holds only
the listeners, as the dashboard will.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.fixtures.listen import (
    MakeSession,
    RecordingOutput,
    dominant_hz,
    listener_token,
)
from tui.demo.bot_process import BotProcess, CallSpec
from tui.demo.calls import CallOptions
from tui.demo.livekit_server import LiveKitServer
from tui.listen import Transcript

pytestmark = pytest.mark.slow

CALLS = 8
TONES = [400.0 + 110.0 * n for n in range(CALLS)]  # 400..1170 Hz, far apart in an FFT


def band_energy(samples: np.ndarray, hz: float, width: float = 20.0) -> float:
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 48_000)
    return float(spectrum[(freqs > hz - width) & (freqs < hz + width)].sum())


@pytest.mark.timeout(180)
async def test_eight_sessions_each_receive_only_their_own_call(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    rooms = [f"many-{n}" for n in range(CALLS)]
    outputs = [RecordingOutput() for _ in rooms]
    sessions = [
        listen_session(livekit_server.url, listener_token(livekit_server, room), output=out)
        for room, out in zip(rooms, outputs, strict=True)
    ]
    # A slow async handler on the first session must delay nobody.
    slow_handled: list[Transcript] = []

    async def slow_handler(transcript: Transcript) -> None:
        await asyncio.sleep(2.0)
        slow_handled.append(transcript)

    sessions[0][0].on("transcript", slow_handler)
    await asyncio.gather(*(session.connect() for session, _ in sessions))
    await asyncio.gather(*(session.start_audio() for session, _ in sessions))

    specs = [
        CallSpec(
            room,
            CallOptions(mode="tone", tone_hz=hz, time_scale=0.25, max_lines=2),
            caller_identity=f"+1555000{n:04d}",
        )
        for n, (room, hz) in enumerate(zip(rooms, TONES, strict=True))
    ]
    with BotProcess(
        livekit_server.url, livekit_server.api_key, livekit_server.api_secret, specs
    ) as bots:
        await asyncio.to_thread(bots.wait_ready, 90)  # joins are slow on a busy machine
        await asyncio.to_thread(bots.wait_for, lambda m: m["event"] == "done", 90)
        sent = bots.sent_segments
        finals_per_room = [
            sum(1 for room, s in sent if room == name and s.final and s.channel == "stream")
            for name in rooms
        ]
        await asyncio.gather(
            *(
                rec.wait_until(
                    lambda rec=rec, count=count: (
                        "agentDisconnected" in rec.names() and len(rec.finals) >= count
                    ),
                    20,
                )
                for (_, rec), count in zip(sessions, finals_per_room, strict=True)
            )
        )
    # the slow handler is still far behind, yet every session already has everything
    assert len(slow_handled) < len(sessions[0][1].transcripts)

    for n, ((session, rec), output) in enumerate(zip(sessions, outputs, strict=True)):
        own = [s for room, s in sent if room == rooms[n] and s.channel == "stream"]
        others = {s.segment_id for room, s in sent if room != rooms[n]}
        expected = [
            Transcript(s.segment_id, "agent" if s.role == "agent" else "user", s.text, True)
            for s in own
            if s.final
        ]
        assert rec.finals == expected, (rooms[n], rec.transcripts)
        assert others.isdisjoint(t.id for t in rec.transcripts)
        assert [
            p.participant_identity for name, p in rec.events if name == "agentDisconnected"
        ] == ["agent-ava"]
        assert rec.errors == []
        heard = output.samples()
        assert len(heard) > 24_000, (rooms[n], len(heard))  # half a second of call audio
        diagnostics = (rooms[n], session._audio.frames_by_track, rec.names().count("transcript"))
        assert dominant_hz(heard) == pytest.approx(TONES[n], abs=15), diagnostics
        own_energy = band_energy(heard, TONES[n])
        for m, hz in enumerate(TONES):
            # nobody else's tone mixed in: it would be as loud as our own, while clicks
            # from frames dropped on a busy machine spread only faint broadband energy
            if m != n:
                assert band_energy(heard, hz) < own_energy * 0.1, (rooms[n], hz)

    await asyncio.gather(*(session.end() for session, _ in sessions))
    await asyncio.wait_for(asyncio.gather(*(session.closed for session, _ in sessions)), 30)
    assert all(rec.names().count("ended") == 1 for _, rec in sessions)

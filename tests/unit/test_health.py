"""HealthTracker: each flag with a fake clock, and a well-behaved call raising none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tui.monitor.follow import StateChanged
from tui.monitor.health import (
    FollowerHealth,
    HealthFlag,
    HealthState,
    HealthThresholds,
    HealthTracker,
    PolledVoice,
    attention_score,
    normalise_sentence,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def tracker(**thresholds: float) -> tuple[HealthTracker, FakeClock]:
    clock = FakeClock()
    t = HealthTracker(HealthThresholds(**thresholds), clock=clock)  # type: ignore[arg-type]
    t.on_live(True)
    return t, clock


def say(t: HealthTracker, clock: FakeClock, sid: str, role: str, text: str, seconds: float = 1.0):
    """A segment streamed: first words, then settled ``seconds`` later."""
    flags = t.on_transcript(sid, role, text.split()[0], False)
    clock.advance(seconds)
    flags += t.on_transcript(sid, role, text, True)
    return flags


def kinds(flags) -> list[str]:
    return [f.kind for f in flags]


def test_a_well_behaved_call_raises_none() -> None:
    t, clock = tracker()
    flags = say(t, clock, "a1", "agent", "Hello, thanks for calling Acme support.")
    lines = [
        ("user", "Hi, my router keeps dropping the connection."),
        ("agent", "I am sorry to hear that, let me check your line."),
        ("user", "Thank you, it started yesterday evening."),
        ("agent", "I can see an outage in your area that is now fixed."),
        ("user", "Great, that explains it."),
        ("agent", "Is there anything else I can help you with today?"),
    ]
    for n, (role, text) in enumerate(lines):
        clock.advance(1.2)  # a brisk reply, short pauses
        flags += t.tick()
        flags += say(t, clock, f"s{n}", role, text, seconds=2.0)
        flags += t.tick()
    assert flags == []
    assert not t.state.flagged
    assert t.state.last_response_s == 1.2
    assert t.state.median_response_s == 1.2
    assert attention_score(t.state) == 0


def test_slow_response_is_flagged_with_its_time() -> None:
    t, clock = tracker()
    say(t, clock, "u1", "user", "Can you check my bill please?")
    clock.advance(4.2)
    flags = t.on_transcript("a1", "agent", "Sure", False)
    assert [(f.kind, f.value, f.at) for f in flags] == [("slow", 4.2, clock.now)]
    assert t.state.slow and t.state.last_response_s == 4.2
    # a quick next reply: no longer slow, the median keeps both
    clock.advance(1.0)
    t.on_transcript("a1", "agent", "Sure, one moment.", True)
    say(t, clock, "u2", "user", "Thanks a lot for that.")
    clock.advance(1.0)
    assert t.on_transcript("a2", "agent", "Done", False) == []
    assert not t.state.slow
    assert t.state.median_response_s == (4.2 + 1.0) / 2


def test_response_time_is_from_the_callers_final_words() -> None:
    t, clock = tracker(response_s=3.0)
    t.on_transcript("u1", "user", "I", False)
    clock.advance(5.0)  # the caller speaks for a while: not the agent's fault
    t.on_transcript("u1", "user", "I want to cancel my order now", True)
    clock.advance(2.0)
    assert t.on_transcript("a1", "agent", "Of course", False) == []
    assert t.state.last_response_s == 2.0


def test_dead_air_after_the_threshold_once_per_stretch() -> None:
    t, clock = tracker()
    say(t, clock, "a1", "agent", "Please hold while I look that up.")
    clock.advance(8.0)
    assert t.tick() == []  # exactly the threshold: not yet
    clock.advance(0.5)
    flags = t.tick()
    assert kinds(flags) == ["dead_air"] and flags[0].value == 8.5
    clock.advance(2.5)
    assert t.tick() == []  # the same stretch: flagged once, its length grows
    assert t.state.dead_air_now and t.state.dead_air_s == 11.0
    assert attention_score(t.state) > 0
    say(t, clock, "a2", "agent", "Thanks for waiting, I found it.")
    assert not t.state.dead_air_now and t.state.dead_air_s == 11.0  # the last one is kept


def test_speaking_readings_are_not_dead_air() -> None:
    t, clock = tracker()
    for _ in range(20):  # 20 s of someone speaking, no transcript (legacy transcription)
        clock.advance(1.0)
        assert t.on_speaking(clock.now) == []
    assert not t.state.flagged


def test_no_dead_air_while_not_live() -> None:
    t, clock = tracker()
    t.on_live(False)
    clock.advance(30)
    assert t.tick() == []
    t.on_live(True)  # silence counts from the (re)connection
    clock.advance(5)
    assert t.tick() == []


def test_talk_over_counted_per_overlap() -> None:
    t, clock = tracker()
    for n in range(3):
        t.on_transcript(f"a{n}", "agent", "Let me explain", False)
        clock.advance(0.5)
        t.on_transcript(f"u{n}", "user", "No wait", False)  # the caller talks over
        clock.advance(1.0)
        assert t.tick() == []  # 1.0 s of overlap: under 1.5 s
        clock.advance(1.0)
        flags = t.tick()
        assert [(f.kind, f.value) for f in flags] == [("talk_over", float(n + 1))]
        clock.advance(1.0)
        assert t.tick() == []  # the same overlap counts once
        t.on_transcript(f"u{n}", "user", "No wait, listen to me", True)
        t.on_transcript(f"a{n}", "agent", "Let me explain the fee.", True)
        clock.advance(1.0)
    assert t.state.talk_overs == 3


def test_a_short_overlap_is_no_talk_over() -> None:
    t, clock = tracker()
    t.on_transcript("a1", "agent", "Sure", False)
    t.on_transcript("u1", "user", "Okay", False)
    clock.advance(1.0)
    assert t.on_transcript("u1", "user", "Okay", True) == []
    assert t.on_transcript("a1", "agent", "Sure thing.", True) == []
    assert t.state.talk_overs == 0


def test_talk_over_noticed_when_the_overlap_closes() -> None:
    t, clock = tracker()
    t.on_transcript("a1", "agent", "Let me", False)
    t.on_transcript("u1", "user", "But", False)
    clock.advance(2.0)  # no tick in between
    assert kinds(t.on_transcript("u1", "user", "But I said no", True)) == ["talk_over"]


def test_loop_on_the_third_time_nearly_the_same() -> None:
    t, clock = tracker()
    assert say(t, clock, "a1", "agent", "Could you please repeat your account number?") == []
    assert say(t, clock, "a2", "agent", "could you please repeat your account number") == []
    flags = say(t, clock, "a3", "agent", "Sorry. Could you please repeat the account number?")
    assert [(f.kind, f.value) for f in flags] == [("loop", 3.0)]
    assert t.state.loops == 1
    assert kinds(say(t, clock, "a4", "agent", "Could you please repeat your account number?")) == [
        "loop"
    ]


def test_loop_ignores_the_caller_and_short_words() -> None:
    t, clock = tracker()
    for n in range(4):
        assert say(t, clock, f"a{n}", "agent", "Okay.") == []
        assert say(t, clock, f"u{n}", "user", "I want to speak to a person.") == []
    assert t.state.loops == 0


def test_replayed_segments_count_once() -> None:
    t, clock = tracker()
    say(t, clock, "a1", "agent", "Could you please repeat your account number?")
    for _ in range(3):  # a rejoin replays the settled segment
        assert (
            t.on_transcript("a1", "agent", "Could you please repeat your account number?", True)
            == []
        )
    assert t.state.loops == 0


def test_normalise_sentence() -> None:
    assert normalise_sentence("  Hello,  WORLD!! ") == "hello world"


def test_attention_score_order() -> None:
    dead = HealthState(dead_air_s=9.0, dead_air_now=True)
    loop = HealthState(loops=1)
    slow = HealthState(response_times=(4.0,), slow=True)
    talk = HealthState(talk_overs=2)
    scores = [attention_score(s) for s in (dead, loop, slow, talk, HealthState())]
    assert scores == sorted(scores, reverse=True) and scores[-1] == 0
    assert attention_score(HealthState(), alerted=True) > 0
    assert attention_score(dead, ended=True) == 0


def test_a_polled_speaking_reading_is_voice_not_dead_air() -> None:
    """tail's source: the session's yes/no speaking, looked at on each tick.  A greeting
    begun before the listener joined never arrives as text, but the room hears it."""
    clock = FakeClock()
    talking = [True]
    raised: list[HealthFlag] = []
    voice = PolledVoice(lambda: talking[0], clock)
    health = FollowerHealth(clock=clock, on_flag=raised.append, speaking=voice, tick_s=None)
    health.feed(StateChanged("connected"))
    for _ in range(20):  # 10 s of speaking, no transcript
        clock.advance(0.5)
        health.tick()
    assert raised == [] and voice.last_voice_at == clock.now
    talking[0] = False
    for _ in range(17):  # 8.5 s of nobody
        clock.advance(0.5)
        health.tick()
    assert kinds(raised) == ["dead_air"] and raised[0].value == 8.5

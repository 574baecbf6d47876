"""Scenario options for calls that misbehave on purpose: parsing and validation.

Normal scenarios keep their realistic limits (pauses up to MAX_PAUSE, no overlap);
only an on-demand scenario that declares ``misbehaves`` may break the rule its flag
is about.  The shipped misbehaving scenarios each break exactly one.
"""

from __future__ import annotations

import pytest

from tui.demo.scenarios import (
    MAX_MISBEHAVING_PAUSE,
    MAX_PAUSE,
    MISBEHAVIOURS,
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_names,
)
from tui.demo.tts import estimated_duration
from tui.monitor.health import DEFAULT_DEAD_AIR_S, DEFAULT_RESPONSE_S, DEFAULT_TALK_OVER_S

LONG_AGENT_LINE = "Of course, there are a few things to say about that, one after the other."


def script(*lines: dict[str, object], **top: object) -> dict[str, object]:
    return {"lines": list(lines), **top}


def agent(text: str = "Hello, how can I help?", **extra: object) -> dict[str, object]:
    return {"role": "agent", "text": text, **extra}


def caller(text: str = "Hi, I have a question.", **extra: object) -> dict[str, object]:
    return {"role": "caller", "text": text, **extra}


MISBEHAVING = {"on_demand": True}


def test_a_normal_scenario_still_caps_its_pauses() -> None:
    with pytest.raises(ScenarioError, match=r"line 2: pause_before must be between 0 and 3\.0"):
        parse_scenario("bad", script(agent(), caller(pause_before=MAX_PAUSE + 0.5)))
    assert parse_scenario("ok", script(agent(), caller(pause_before=MAX_PAUSE))).misbehaves == ()


def test_the_pause_error_says_how_to_get_a_longer_one() -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario("bad", script(agent(), caller(pause_before=9)))
    assert 'misbehaves = ["slow"] or ["dead_air"]' in str(error.value)
    assert "on-demand" in str(error.value)


@pytest.mark.parametrize("kind", ["slow", "dead_air"])
def test_a_slow_or_dead_air_scenario_may_pause_longer(kind: str) -> None:
    scenario = parse_scenario(
        "late",
        script(agent(), caller(), agent(pause_before=11.0), misbehaves=[kind], **MISBEHAVING),
    )
    assert scenario.misbehaves == (kind,)
    assert scenario.lines[2].pause_before == 11.0


def test_even_a_misbehaving_pause_has_a_limit() -> None:
    too_long = MAX_MISBEHAVING_PAUSE + 1
    with pytest.raises(ScenarioError, match=f"between 0 and {MAX_MISBEHAVING_PAUSE} seconds$"):
        parse_scenario(
            "bad",
            script(agent(), caller(pause_before=too_long), misbehaves=["dead_air"], **MISBEHAVING),
        )


@pytest.mark.parametrize("kind", ["talk_over", "loop"])
def test_other_misbehaviours_do_not_lengthen_pauses(kind: str) -> None:
    with pytest.raises(ScenarioError, match=r"pause_before must be between 0 and 3\.0"):
        parse_scenario(
            "bad", script(agent(), caller(pause_before=5), misbehaves=[kind], **MISBEHAVING)
        )


def test_the_first_line_starts_early_even_when_misbehaving() -> None:
    with pytest.raises(ScenarioError, match="first line must start within"):
        parse_scenario("bad", script(agent(pause_before=9), misbehaves=["slow"], **MISBEHAVING))


def test_misbehaving_needs_on_demand() -> None:
    with pytest.raises(ScenarioError, match="must be on_demand = true"):
        parse_scenario("bad", script(agent(), misbehaves=["slow"]))


@pytest.mark.parametrize(
    ("misbehaves", "words"),
    [
        (["sleepy"], "unknown names ['sleepy']"),
        ("slow", "must be a list of names"),
        ([3], "must be a list of names"),
    ],
)
def test_misbehaves_names_are_checked(misbehaves: object, words: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario("bad", script(agent(), misbehaves=misbehaves, **MISBEHAVING))
    assert words in str(error.value)
    assert ", ".join(MISBEHAVIOURS) in str(error.value)


def test_an_overlapping_line_is_parsed() -> None:
    scenario = parse_scenario(
        "over",
        script(
            agent(LONG_AGENT_LINE),
            caller(overlap=2.5),
            agent(),
            misbehaves=["talk_over"],
            **MISBEHAVING,
        ),
    )
    assert scenario.lines[1].overlap == 2.5
    assert scenario.lines[1].pause_before == 0.0  # it starts during the line before
    assert scenario.lines[0].overlap == scenario.lines[2].overlap == 0.0


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (script(agent(LONG_AGENT_LINE), caller(overlap=2)), 'misbehaves = ["talk_over"]'),
        (
            script(agent(LONG_AGENT_LINE), caller(overlap=2), misbehaves=["slow"], **MISBEHAVING),
            'misbehaves = ["talk_over"]',
        ),
        (
            script(agent(overlap=1), misbehaves=["talk_over"], **MISBEHAVING),
            "the first line has nothing to overlap",
        ),
        (
            script(
                agent(LONG_AGENT_LINE), agent(overlap=2), misbehaves=["talk_over"], **MISBEHAVING
            ),
            "the previous line to be the other role's",
        ),
        (
            script(
                agent(LONG_AGENT_LINE), caller(overlap=0), misbehaves=["talk_over"], **MISBEHAVING
            ),
            "overlap must be a number of seconds above 0",
        ),
        (
            script(
                agent(LONG_AGENT_LINE), caller(overlap="2"), misbehaves=["talk_over"], **MISBEHAVING
            ),
            "overlap must be a number of seconds above 0",
        ),
        (
            script(
                agent(LONG_AGENT_LINE),
                caller(overlap=2, pause_before=1),
                misbehaves=["talk_over"],
                **MISBEHAVING,
            ),
            "overlap and pause_before exclude each other",
        ),
        (
            script(
                agent("Hello there."), caller(overlap=2), misbehaves=["talk_over"], **MISBEHAVING
            ),
            "must be shorter than the previous line",
        ),
        (
            script(
                agent(LONG_AGENT_LINE),
                caller(overlap=2),
                misbehaves=["talk_over"],
                agent_leaves_after=1,
                **MISBEHAVING,
            ),
            "the agent leaves before this line",
        ),
    ],
)
def test_bad_overlaps_are_refused_in_words(data: dict[str, object], words: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario("bad", data)
    assert words in str(error.value)


def test_the_overlap_limit_is_the_previous_line_as_said() -> None:
    length = estimated_duration(LONG_AGENT_LINE)
    ok = script(agent(LONG_AGENT_LINE), caller(overlap=length - 0.1), misbehaves=["talk_over"])
    assert parse_scenario("ok", {**ok, **MISBEHAVING}).lines[1].overlap == length - 0.1
    with pytest.raises(ScenarioError, match="must be shorter than the previous line"):
        parse_scenario(
            "bad", {**ok, **MISBEHAVING, "lines": [agent(LONG_AGENT_LINE), caller(overlap=length)]}
        )


# -- the shipped misbehaving scenarios ---------------------------------------------------

SHIPPED = {
    "slow_agent": "slow",
    "dead_air": "dead_air",
    "talk_over": "talk_over",
    "agent_loop": "loop",
}


def test_each_misbehaving_scenario_is_on_demand_and_does_one_thing_wrong() -> None:
    regular = set(scenario_names())
    for name, kind in SHIPPED.items():
        scenario = load_scenario(name)
        assert scenario.on_demand and name not in regular  # the demo never plays them
        assert scenario.misbehaves == (kind,)
        long_pauses = [line for line in scenario.lines if line.pause_before > MAX_PAUSE]
        overlaps = [line for line in scenario.lines if line.overlap]
        assert len(long_pauses) == (1 if kind in ("slow", "dead_air") else 0), name
        assert len(overlaps) == (1 if kind == "talk_over" else 0), name
    for name in regular:
        assert load_scenario(name).misbehaves == ()


def test_the_slow_agent_answers_late_but_is_never_silent_for_long() -> None:
    slow = [line for line in load_scenario("slow_agent").lines if line.pause_before > MAX_PAUSE]
    assert slow[0].role == "agent"
    assert DEFAULT_RESPONSE_S + 1 <= slow[0].pause_before < DEFAULT_DEAD_AIR_S - 2


def test_the_dead_air_is_no_late_answer() -> None:
    lines = load_scenario("dead_air").lines
    index = next(i for i, line in enumerate(lines) if line.pause_before > MAX_PAUSE)
    assert lines[index].pause_before >= DEFAULT_DEAD_AIR_S + 2
    # before a caller line: no answer of the agent is waited for
    assert lines[index].role == "caller"


def test_the_talk_over_overlaps_the_agent_long_enough() -> None:
    lines = load_scenario("talk_over").lines
    index = next(i for i, line in enumerate(lines) if line.overlap)
    assert (lines[index - 1].role, lines[index].role) == ("agent", "caller")
    # the caller's transcript opens after its first 3 words: the rest must still pass 1.5 s
    words = len(lines[index].text.split())
    opens_after = estimated_duration(lines[index].text) * 3 / words
    assert lines[index].overlap - opens_after > DEFAULT_TALK_OVER_S + 0.5


def test_the_looping_agent_says_one_sentence_three_times() -> None:
    agent_lines = [line.text for line in load_scenario("agent_loop").lines if line.role == "agent"]
    repeated = [text for text in agent_lines if agent_lines.count(text) > 1]
    assert len(repeated) == 3 and len(set(repeated)) == 1

"""The segment assembler's interim/final rules (pure logic: fed by hand)."""

from __future__ import annotations

import json

from tui.listen.transcripts import (
    ATTR_FINAL,
    ATTR_SEGMENT_ID,
    ChunkDecoder,
    LegacySegment,
    SegmentAssembler,
    Transcript,
)

AGENT, CALLER = "agent-ava", "+15551230001"


def attrs(segment: str, final: bool = False) -> dict[str, str]:
    return {ATTR_SEGMENT_ID: segment, ATTR_FINAL: "true" if final else "false"}


def agent_line(asm: SegmentAssembler, stream: str, segment: str, words: list[str]) -> list:
    out = asm.stream_opened(stream, attrs(segment), "agent", AGENT)
    for word in words:
        out += asm.stream_chunk(stream, word)
    return out + asm.stream_closed(stream, {**attrs(segment), ATTR_FINAL: "true"}, broken=False)


def caller_update(asm: SegmentAssembler, stream: str, segment: str, text: str, final: bool) -> list:
    out = asm.stream_opened(stream, attrs(segment, final), "user", CALLER)
    out += asm.stream_chunk(stream, text)
    return out + asm.stream_closed(stream, attrs(segment, final), broken=False)


def finals(events: list[Transcript]) -> list[Transcript]:
    return [event for event in events if event.final]


def test_agent_stream_appends_chunks_then_one_final() -> None:
    events = agent_line(SegmentAssembler(), "s1", "SG_a", ["Hello", " there", " friend"])
    assert events == [
        Transcript("SG_a", "agent", "Hello", False),
        Transcript("SG_a", "agent", "Hello there", False),
        Transcript("SG_a", "agent", "Hello there friend", False),
        Transcript("SG_a", "agent", "Hello there friend", True),
    ]


def test_caller_streams_replace_text_and_the_final_stream_settles_it() -> None:
    asm = SegmentAssembler()
    events = caller_update(asm, "c1", "SG_c", "I have", False)
    events += caller_update(asm, "c2", "SG_c", "I have been trying", False)
    events += caller_update(asm, "c3", "SG_c", "I have been trying to log in.", True)
    assert events == [
        Transcript("SG_c", "user", "I have", False),
        Transcript("SG_c", "user", "I have been trying", False),
        Transcript("SG_c", "user", "I have been trying to log in.", True),
    ]


def test_late_streams_of_a_settled_segment_are_ignored() -> None:
    asm = SegmentAssembler()
    caller_update(asm, "c1", "SG_c", "done.", True)
    assert caller_update(asm, "c2", "SG_c", "done again.", True) == []


def test_a_superseded_stream_no_longer_changes_the_text() -> None:
    asm = SegmentAssembler()
    asm.stream_opened("old", attrs("SG_c"), "user", CALLER)
    asm.stream_opened("new", attrs("SG_c"), "user", CALLER)
    assert asm.stream_chunk("old", "stale words") == []
    assert asm.stream_chunk("new", "fresh") == [Transcript("SG_c", "user", "fresh", False)]


def test_broken_stream_ends_in_one_final_with_the_text_received() -> None:
    asm = SegmentAssembler()
    asm.stream_opened("s1", attrs("SG_a"), "agent", AGENT)
    asm.stream_chunk("s1", "Let me check")
    assert asm.stream_closed("s1", attrs("SG_a"), broken=True) == [
        Transcript("SG_a", "agent", "Let me check", True)
    ]
    assert asm.finish_all() == []


def test_broken_stream_with_no_chunks_keeps_the_previous_interim_text() -> None:
    asm = SegmentAssembler()
    caller_update(asm, "c1", "SG_c", "I think", False)
    asm.stream_opened("c2", attrs("SG_c"), "user", CALLER)
    assert asm.stream_closed("c2", attrs("SG_c"), broken=True) == [
        Transcript("SG_c", "user", "I think", True)
    ]


def test_stream_without_segment_id_is_a_whole_segment() -> None:
    asm = SegmentAssembler()
    asm.stream_opened("s9", {}, "agent", AGENT)
    asm.stream_chunk("s9", "one-shot")
    assert finals(asm.stream_closed("s9", {}, broken=False)) == [
        Transcript("s9", "agent", "one-shot", True)
    ]


def test_json_format_chunks_are_decoded() -> None:
    asm = SegmentAssembler()
    asm.stream_opened("s1", attrs("SG_j"), "agent", AGENT)
    line1 = json.dumps({"text": "Hello", "start_time": 0.1}) + "\n"
    line2 = json.dumps({"text": " world", "start_time": 0.4}) + "\n"
    events = asm.stream_chunk("s1", line1)
    events += asm.stream_chunk("s1", line2[:7])  # a line split across chunks
    events += asm.stream_chunk("s1", line2[7:])
    events += asm.stream_closed("s1", attrs("SG_j", True), broken=False)
    assert [e.text for e in events] == ["Hello", "Hello world", "Hello world"]
    assert events[-1].final


def test_plain_text_starting_with_a_brace_is_not_json() -> None:
    decoder = ChunkDecoder()
    assert decoder.feed("{not json} said the caller") == "{not json} said the caller"


def test_legacy_alone_is_shown_after_the_hold_then_passes_through() -> None:
    asm = SegmentAssembler(legacy_hold=1.0)
    assert asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hello", False)], now=0.0) == []
    assert asm.next_deadline() == 1.0
    assert asm.due(0.5) == []
    assert asm.due(1.0) == [Transcript("L1", "agent", "Hello", False)]
    assert asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hello there", False)], now=1.2) == [
        Transcript("L1", "agent", "Hello there", False)
    ]
    assert asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hello there", True)], now=1.4) == [
        Transcript("L1", "agent", "Hello there", True)
    ]
    assert asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hello there", True)], now=1.5) == []


def test_legacy_final_during_the_hold_is_shown_once_as_final() -> None:
    asm = SegmentAssembler(legacy_hold=1.0)
    asm.legacy(CALLER, "user", [LegacySegment("L2", "Yes", False)], now=0.0)
    asm.legacy(CALLER, "user", [LegacySegment("L2", "Yes please", True)], now=0.3)
    assert asm.due(1.0) == [Transcript("L2", "user", "Yes please", True)]
    assert asm.next_deadline() is None


def test_stream_arriving_drops_held_legacy_and_legacy_is_ignored_afterwards() -> None:
    asm = SegmentAssembler(legacy_hold=1.0)
    asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hello", False)], now=0.0)
    events = agent_line(asm, "s1", "SG_a", ["Hello", " there"])
    events += asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hello there", True)], now=0.5)
    events += asm.due(5.0)
    assert [e.id for e in events] == ["SG_a"] * 3
    assert finals(events) == [Transcript("SG_a", "agent", "Hello there", True)]


def test_both_channels_give_one_final_per_spoken_line() -> None:
    """As current agents send to rooms with an old client: same words, different ids."""
    asm = SegmentAssembler(legacy_hold=1.0)
    events = agent_line(asm, "s1", "SG_a", ["Hi"])
    events += asm.legacy(AGENT, "agent", [LegacySegment("L1", "Hi", True)], now=0.1)
    events += caller_update(asm, "c1", "SG_c", "Hello", True)
    events += asm.legacy(CALLER, "user", [LegacySegment("L2", "Hello", True)], now=0.2)
    events += asm.due(10.0) + asm.finish_all()
    assert finals(events) == [
        Transcript("SG_a", "agent", "Hi", True),
        Transcript("SG_c", "user", "Hello", True),
    ]


def test_legacy_shown_before_any_stream_still_gets_its_single_final() -> None:
    asm = SegmentAssembler(legacy_hold=0.5)
    asm.legacy(AGENT, "agent", [LegacySegment("L1", "Long speech", False)], now=0.0)
    assert asm.due(0.5) == [Transcript("L1", "agent", "Long speech", False)]
    events = asm.stream_opened("s1", attrs("SG_b"), "user", CALLER)
    assert events == [Transcript("L1", "agent", "Long speech", True)]


def test_speaker_leaving_settles_their_open_segments_but_not_others() -> None:
    asm = SegmentAssembler()
    caller_update(asm, "c1", "SG_c", "wait I", False)
    asm.stream_opened("s1", attrs("SG_a"), "agent", AGENT)
    asm.stream_chunk("s1", "Sure")
    assert asm.speaker_left(CALLER) == [Transcript("SG_c", "user", "wait I", True)]
    # the agent's stream is still open: it settles when that stream ends
    assert asm.speaker_left(AGENT) == []
    assert asm.stream_closed("s1", attrs("SG_a"), broken=True) == [
        Transcript("SG_a", "agent", "Sure", True)
    ]


def test_finish_all_settles_everything_once() -> None:
    asm = SegmentAssembler(legacy_hold=1.0)
    caller_update(asm, "c1", "SG_c", "so", False)
    asm.stream_opened("s1", attrs("SG_a"), "agent", AGENT)
    asm.stream_chunk("s1", "Okay")
    assert sorted(asm.finish_all(), key=lambda t: t.id) == [
        Transcript("SG_a", "agent", "Okay", True),
        Transcript("SG_c", "user", "so", True),
    ]
    assert asm.finish_all() == []
    assert asm.stream_chunk("s1", " more") == []


def test_final_stream_header_shows_no_interim() -> None:
    asm = SegmentAssembler()
    events = caller_update(asm, "c1", "SG_c", "All at once.", True)
    assert events == [Transcript("SG_c", "user", "All at once.", True)]


def test_segment_that_never_said_anything_has_no_events() -> None:
    asm = SegmentAssembler()
    asm.stream_opened("s1", attrs("SG_a"), "agent", AGENT)
    assert asm.stream_closed("s1", attrs("SG_a", True), broken=False) == []

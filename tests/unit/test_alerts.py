"""Keyword alerts: whole words, any case, words or regexes, spans to highlight."""

from __future__ import annotations

import pytest

from tui.monitor.alerts import DEFAULT_KEYWORDS, AlertMatcher, AlertPatternError


def test_defaults_are_cancel_supervisor_complaint() -> None:
    assert DEFAULT_KEYWORDS == ("cancel", "supervisor", "complaint")
    matcher = AlertMatcher()
    assert matcher.matches("I want to CANCEL my order.")
    assert matcher.matches("Get me your Supervisor!")
    assert matcher.matches("I'd like to file a complaint")
    assert not matcher.matches("Thanks, that solved it.")


@pytest.mark.parametrize(
    "text",
    ["the cancellation fee", "precancel", "two supervisors", "complaints dept", "uncancel_it"],
)
def test_words_do_not_match_inside_other_words(text: str) -> None:
    assert AlertMatcher().find(text) == []


def test_match_reports_keyword_and_span_for_highlighting() -> None:
    text = "Please cancel. Cancel it now, supervisor."
    found = AlertMatcher().find(text)
    assert [(m.keyword, text[m.start : m.end]) for m in found] == [
        ("cancel", "cancel"),
        ("cancel", "Cancel"),
        ("supervisor", "supervisor"),
    ]
    assert [m.matched for m in found] == ["cancel", "Cancel", "supervisor"]


def test_phrase_matches_across_any_whitespace() -> None:
    matcher = AlertMatcher(["speak to a manager"])
    text = "can I Speak  to\ta MANAGER?"
    assert [text[start:end] for start, end in matcher.spans(text)] == ["Speak  to\ta MANAGER"]
    assert not matcher.matches("speak to a managerial person")


def test_regex_keywords_between_slashes_match_whole_words() -> None:
    matcher = AlertMatcher(["/refund(s|ed)?/", "/cancel\\w*/"])
    assert [m.matched for m in matcher.find("Refunded? cancellation, refunds")] == [
        "Refunded",
        "cancellation",
        "refunds",
    ]
    assert not matcher.matches("nonrefundable")


def test_special_characters_in_words_are_literal() -> None:
    matcher = AlertMatcher(["$100", "c++"])
    assert matcher.matches("it cost $100 today")
    assert matcher.matches("I code in C++.")
    assert not matcher.matches("it cost $1000")
    assert not AlertMatcher(["a.b"]).matches("axb")


def test_unicode_words_and_case() -> None:
    matcher = AlertMatcher(["réclamation"])
    assert matcher.matches("Je fais une RÉCLAMATION.")
    assert not matcher.matches("réclamations")


def test_overlapping_matches_merge_into_one_highlight() -> None:
    matcher = AlertMatcher(["cancel", "/cancel (my|the) order/"])
    text = "please cancel my order now"
    assert matcher.spans(text) == [(7, 22)]
    assert text[7:22] == "cancel my order"


def test_regex_that_can_match_nothing_never_flags_a_line() -> None:
    assert AlertMatcher(["/x*/"]).find("hello world") == []


@pytest.mark.parametrize("bad", ["", "   ", "/(/", "//"])
def test_unusable_keywords_are_refused(bad: str) -> None:
    with pytest.raises(AlertPatternError):
        AlertMatcher([bad])


def test_no_keywords_no_alerts() -> None:
    assert AlertMatcher([]).find("cancel supervisor complaint") == []

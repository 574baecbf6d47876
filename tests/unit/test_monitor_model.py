"""The UI-free model: what a pane will show, given session events (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tui.monitor.model import BadgeKind, Change, ConversationInfo, Dashboard
from tui.monitor.text import safe_text

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


class FrozenClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_dashboard(*ids: str, **kwargs) -> tuple[Dashboard, list[Change], FrozenClock]:
    clock = FrozenClock()
    dashboard = Dashboard(clock=clock, **kwargs)
    changes: list[Change] = []
    dashboard.subscribe(changes.append)
    for conversation_id in ids:
        dashboard.add_call(conversation_id)
    return dashboard, changes, clock


def test_caller_is_guest_for_web_guests_and_the_number_otherwise() -> None:
    assert ConversationInfo("c", user_id="guest_8f3a").caller == "Guest"
    assert ConversationInfo("c", user_id="+15551230001").caller == "+15551230001"
    assert ConversationInfo("c").caller == "Unknown caller"


def test_info_from_api_dict_reads_agent_name_and_start() -> None:
    info = ConversationInfo.from_api(
        {
            "id": "conv_1",
            "user_id": "guest_1",
            "agent": {"id": "a", "name": "Support Bot"},
            "channel": "webrtc",
            "direction": "inbound",
            "created_at": "2025-01-02T03:00:00Z",
            "status": "in_progress",
        }
    )
    assert (info.caller, info.agent_name, info.channel, info.direction) == (
        "Guest",
        "Support Bot",
        "webrtc",
        "inbound",
    )
    assert info.started_at == datetime(2025, 1, 2, 3, 0, tzinfo=UTC)


def test_badge_follows_the_session_lifecycle() -> None:
    dashboard, _, _ = make_dashboard("a")
    call = dashboard.get("a")
    assert call is not None
    assert call.badge.text == "Connecting…"
    call.set_state("connecting")
    assert call.badge.text == "Connecting…"
    call.set_state("connected")
    assert (call.badge.text, call.badge.kind) == ("LIVE", BadgeKind.LIVE)
    call.set_state("connecting")
    assert call.badge.text == "Reconnecting…"
    call.set_state("connected")
    call.mark_ended()
    assert call.badge.text == "Ended"


def test_error_and_waiting_show_in_words() -> None:
    dashboard, _, _ = make_dashboard("a")
    call = dashboard.get("a")
    assert call is not None
    call.set_waiting(True)
    assert call.badge.text == "Waiting for room…"
    call.set_error("Key lacks scope conversations:read_sensitive")
    assert call.badge == call.badge.__class__(
        "Key lacks scope conversations:read_sensitive", BadgeKind.ERROR
    )
    call.set_state("connected")  # a later successful connection clears the error
    assert call.badge.text == "LIVE"


def test_interim_text_is_replaced_in_place_and_settled_lines_kept() -> None:
    dashboard, changes, _ = make_dashboard("a")
    call = dashboard.get("a")
    assert call is not None
    call.add_transcript("s1", "agent", "Hello", final=False)
    call.add_transcript("s1", "agent", "Hello, how can", final=False)
    call.add_transcript("s1", "agent", "Hello, how can I help?", final=True)
    call.add_transcript("s2", "user", "My order", final=False)
    texts = [(s.id, s.text, s.final) for s in call.transcript.segments]
    assert texts == [("s1", "Hello, how can I help?", True), ("s2", "My order", False)]
    # a late interim for a settled segment and an identical repeat change nothing
    before = len(changes)
    call.add_transcript("s1", "agent", "Hello", final=False)
    call.add_transcript("s2", "user", "My order", final=False)
    assert len(changes) == before
    assert call.transcript.get("s1").text == "Hello, how can I help?"  # type: ignore[union-attr]


def test_transcript_history_is_bounded() -> None:
    dashboard, _, _ = make_dashboard("a", max_segments=10)
    call = dashboard.get("a")
    assert call is not None
    for i in range(25):
        call.add_transcript(f"s{i}", "user", f"line {i}", final=True)
    assert [s.id for s in call.transcript.segments] == [f"s{i}" for i in range(15, 25)]


def test_first_call_is_focused_but_listening_stays_off() -> None:
    dashboard, _, _ = make_dashboard("a", "b")
    assert dashboard.focused_id == "a"
    assert dashboard.listening is False
    assert dashboard.heard_id is None
    dashboard.toggle_listening()
    assert dashboard.heard_id == "a"
    dashboard.focus("b")
    assert dashboard.heard_id == "b"
    dashboard.set_listening(False)
    assert dashboard.heard_id is None


def test_grid_focus_moves_and_cycles() -> None:
    dashboard, _, _ = make_dashboard(*"abcde")  # 3 columns: a b c / d e
    dashboard.focus_move(1, 0, columns=3)
    assert dashboard.focused_id == "b"
    dashboard.focus_move(0, 1, columns=3)
    assert dashboard.focused_id == "e"
    dashboard.focus_move(1, 0, columns=3)  # no pane to the right of e
    assert dashboard.focused_id == "e"
    dashboard.focus_move(0, -1, columns=3)
    assert dashboard.focused_id == "b"
    dashboard.focus_move(0, -1, columns=3)  # top edge
    assert dashboard.focused_id == "b"
    dashboard.focus_move(1, 0, columns=3)
    dashboard.focus_move(0, 1, columns=3)  # c -> nothing below, lands on the short row's end
    assert dashboard.focused_id == "e"
    dashboard.focus_step(1)
    assert dashboard.focused_id == "a"
    dashboard.focus_step(-1)
    assert dashboard.focused_id == "e"
    dashboard.focus_index(2)
    assert dashboard.focused_id == "c"
    dashboard.focus_index(9)
    assert dashboard.focused_id == "c"


def test_closing_the_focused_call_focuses_its_neighbour() -> None:
    dashboard, _, _ = make_dashboard("a", "b", "c")
    dashboard.focus("b")
    dashboard.remove_call("b")
    assert [c.conversation_id for c in dashboard.calls] == ["a", "c"]
    assert dashboard.focused_id == "c"
    dashboard.remove_call("c")
    dashboard.remove_call("a")
    assert dashboard.focused_id is None


def test_filter_matches_caller_agent_and_transcript() -> None:
    dashboard, _, _ = make_dashboard()
    dashboard.add_call("a", ConversationInfo("a", user_id="+1555", agent_name="Billing Bot"))
    dashboard.add_call("b", ConversationInfo("b", user_id="guest_x", agent_name="Support"))
    dashboard.get("b").add_transcript("s", "user", "I want a REFUND", True)  # type: ignore[union-attr]
    visible = lambda: [c.conversation_id for c in dashboard.visible_calls()]  # noqa: E731
    dashboard.set_filter("billing")
    assert visible() == ["a"]
    dashboard.set_filter("guest")
    assert visible() == ["b"]
    assert dashboard.focused_id == "b"  # focus leaves a hidden pane
    dashboard.set_filter("refund")
    assert visible() == ["b"]
    dashboard.set_filter("")
    assert visible() == ["a", "b"]


def test_wallboard_never_listens() -> None:
    dashboard, _, _ = make_dashboard("a")
    dashboard.set_listening(True)
    dashboard.set_wallboard(True)
    assert dashboard.listening is False
    dashboard.set_listening(True)
    assert dashboard.heard_id is None


def test_duration_and_speaking_follow_the_injected_clock() -> None:
    dashboard, _, clock = make_dashboard()
    call = dashboard.add_call("a", ConversationInfo("a", started_at=T0 - timedelta(seconds=75)))
    assert call.duration() == timedelta(seconds=75)
    call.set_state("connected")
    call.set_level(-10.0, -20.0)
    assert call.speaking()
    clock.now = T0 + timedelta(seconds=5)
    assert not call.speaking()
    assert call.duration() == timedelta(seconds=80)


def test_observers_hear_each_kind_of_change_once() -> None:
    dashboard, changes, _ = make_dashboard("a")
    call = dashboard.get("a")
    assert call is not None
    changes.clear()
    call.set_state("connected")
    call.set_state("connected")
    call.set_level(-10.2, -20.2)
    call.set_level(-10.3, -20.1)  # not a visible step on a meter
    dashboard.set_zoom(True)
    assert changes == [Change("call", "a"), Change("level", "a"), Change("zoom")]


def test_safe_text_makes_control_characters_visible_and_bounds_length() -> None:
    assert safe_text("a\x1b[2Jb\rc") == "a\u241b[2Jb\u240dc"
    assert safe_text("[bold red]x[/]") == "[bold red]x[/]"
    assert safe_text("\u202eevil") == "\\u202eevil"
    long = safe_text("x" * 100_000)
    assert len(long) < 2_100 and long.endswith("[cut]")

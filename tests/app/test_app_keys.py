"""Every key in the footer does what it says (Pilot, on a model fed with injected events)."""

from __future__ import annotations

import pytest
from textual.events import MouseScrollUp

from tests.fixtures.app import make_app, screen_text, scripted_dashboard
from tui.app.app import DashboardApp
from tui.app.screen import DashboardScreen
from tui.app.widgets.transcript_view import TranscriptView
from tui.monitor.model import MonitoredCall

pytestmark = pytest.mark.timeout(60)


def one_call_with_history(lines: int) -> tuple[DashboardApp, MonitoredCall]:
    """An app with one call that already said ``earlier line 0`` .. ``lines - 1``."""
    dashboard = scripted_dashboard(1)
    call = dashboard.get("conv_01")
    assert call is not None
    for n in range(lines):
        call.add_transcript(f"old{n}", "user", f"earlier line {n}", True)
    return make_app(dashboard), call


def shown(app: DashboardApp) -> list[str]:
    return [cid for cid, pane in app.dashboard_screen.panes.items() if pane.display]


async def test_listening_is_off_at_start_and_space_toggles_it() -> None:
    app = make_app(scripted_dashboard(4))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.dashboard.focused_id == "conv_01"  # first pane focused automatically...
        assert app.dashboard.heard_id is None  # ...but nobody is heard
        assert "♪ heard" not in screen_text(app)
        await pilot.press("space")
        assert app.dashboard.heard_id == "conv_01"
        assert "♪ heard" in screen_text(app)
        assert "listening on" in screen_text(app)
        await pilot.press("space")
        assert app.dashboard.heard_id is None


async def test_m_stops_listening_at_once() -> None:
    app = make_app(scripted_dashboard(2))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("space")
        assert app.dashboard.listening is True and app.dashboard.heard_id == "conv_01"
        assert "listening on" in screen_text(app) and "♪ heard" in screen_text(app)
        await pilot.press("m")
        assert app.dashboard.listening is False and app.dashboard.heard_id is None
        assert "listening off (space)" in screen_text(app)
        assert "listening on" not in screen_text(app) and "♪ heard" not in screen_text(app)
        await pilot.press("m")  # idempotent: still off, and not toggled back on
        assert app.dashboard.listening is False and app.dashboard.heard_id is None
        assert "listening off (space)" in screen_text(app)


async def test_focus_keys_move_between_panes_and_the_heard_call_follows() -> None:
    app = make_app(scripted_dashboard(4))  # 2x2 at 120x40
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("space")
        await pilot.press("right")
        assert app.dashboard.heard_id == "conv_02"
        await pilot.press("j")
        assert app.dashboard.focused_id == "conv_04"
        await pilot.press("h")
        assert app.dashboard.focused_id == "conv_03"
        await pilot.press("k")
        assert app.dashboard.focused_id == "conv_01"
        await pilot.press("3")
        assert app.dashboard.focused_id == "conv_03"
        await pilot.press("tab", "tab")
        assert app.dashboard.focused_id == "conv_01"
        await pilot.press("shift+tab")
        assert app.dashboard.focused_id == "conv_04"
        assert app.dashboard.heard_id == "conv_04"


async def test_a_click_on_a_pane_focuses_its_call() -> None:
    app = make_app(scripted_dashboard(4))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.dashboard.focused_id == "conv_01"
        # On the pane's transcript: the click bubbles up from the child to the pane.
        await pilot.click(app.dashboard_screen.panes["conv_04"], offset=(5, 4))
        await pilot.pause()
        assert app.dashboard.focused_id == "conv_04"
        assert app.dashboard_screen.panes["conv_04"].has_class("-focused")


async def test_x_closes_the_focused_pane() -> None:
    app = make_app(scripted_dashboard(3))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "x")
        await pilot.pause()
        assert [c.conversation_id for c in app.dashboard.calls] == ["conv_01", "conv_03"]
        assert shown(app) == ["conv_01", "conv_03"]
        assert app.dashboard.focused_id == "conv_03"


async def test_a_adds_a_conversation_by_id_and_escape_cancels() -> None:
    app = make_app(scripted_dashboard(1))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        await pilot.press(*"conv_new", "enter")
        await pilot.pause()
        assert "conv_new" in app.dashboard
        assert app.dashboard.focused_id == "conv_new"
        assert shown(app) == ["conv_01", "conv_new"]
        assert "Connecting…" in screen_text(app)
        await pilot.press("a", "z", "escape")  # typed, then cancelled
        await pilot.pause()
        assert len(app.dashboard.calls) == 2


async def test_slash_filters_by_caller_agent_or_words_and_escape_clears() -> None:
    app = make_app(scripted_dashboard(4))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *"guest")
        await pilot.pause(0.1)
        assert shown(app) == ["conv_02"]
        await pilot.press("enter")  # keep the filter, leave the input
        await pilot.press("space")  # keys act on the dashboard again
        assert app.dashboard.heard_id == "conv_02"
        await pilot.press("escape")  # clears the filter
        await pilot.pause(0.1)
        assert shown(app) == ["conv_01", "conv_02", "conv_03", "conv_04"]
        await pilot.press("slash", *"48213")  # words said
        await pilot.pause(0.1)
        assert shown(app) == ["conv_03"]
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.dashboard.filter_text == ""


async def test_enter_zooms_and_escape_returns() -> None:
    app = make_app(scripted_dashboard(4))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "enter")
        await pilot.pause()
        assert shown(app) == ["conv_02"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(shown(app)) == 4
        await pilot.press("z")
        await pilot.pause()
        assert shown(app) == ["conv_02"]


async def test_question_mark_opens_help_and_escape_or_question_mark_closes_it() -> None:
    app = make_app(scripted_dashboard(1))
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "Wallboard" in text and "Focus pane 9" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("question_mark", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)


async def test_wallboard_is_read_only_and_hides_chrome() -> None:
    app = make_app(scripted_dashboard(4))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("space", "w")
        await pilot.pause()
        assert app.dashboard.wallboard and app.dashboard.heard_id is None
        assert "Quit" not in screen_text(app)  # footer hidden
        await pilot.press("space", "a", "slash")
        await pilot.pause()
        assert app.dashboard.listening is False
        assert isinstance(app.screen, DashboardScreen)  # no prompt opened
        await pilot.press("w")
        assert not app.dashboard.wallboard


async def test_scrolled_up_transcript_shows_a_new_lines_marker_until_end() -> None:
    app, call = one_call_with_history(40)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "earlier line 39" in screen_text(app)
        await pilot.press("pageup")
        await pilot.pause()
        call.add_transcript("fresh", "agent", "a brand new line", True)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "new lines below" in text and "a brand new line" not in text
        await pilot.press("end")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "a brand new line" in text and "new lines below" not in text


def wheel_up(view: TranscriptView) -> MouseScrollUp:
    return MouseScrollUp(view, 1, 1, 0, -1, 0, shift=False, meta=False, ctrl=False)


@pytest.mark.parametrize("how", ["pageup", "wheel"])
async def test_scrolling_up_after_lines_came_in_while_following_starts_at_the_newest(
    how: str,
) -> None:
    # A following view defers its scroll range (a reflow of the whole screen per line);
    # scrolling must still start from the newest line, not from where the range was.
    app, call = one_call_with_history(40)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for n in range(30):  # while following, as a live call's lines arrive
            call.add_transcript(f"new{n}", "agent", f"later line {n}", True)
            await pilot.pause(0.01)
        await pilot.pause(0.2)
        assert "later line 29" in screen_text(app)
        view = app.dashboard_screen.panes["conv_01"].transcript
        if how == "pageup":
            await pilot.press("pageup")
        else:
            view.post_message(wheel_up(view))
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "later line 29" not in text  # it did scroll...
        assert "later line 11" in text  # ...from the newest lines (a page is 18 lines),
        assert "earlier line 20" not in text  # not from where the range stood before them
        if how == "wheel":
            assert "later line 27" in text  # a wheel step is a few lines, not a page


@pytest.mark.parametrize("key", ["q", "ctrl+c", "ctrl+q"])
async def test_q_and_ctrl_c_quit(key: str) -> None:
    app = make_app(scripted_dashboard(2))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(key)
        await pilot.pause()
        assert not app.is_running
    assert app.return_value == 0


async def test_quits_at_a_tiny_size() -> None:
    app = make_app(scripted_dashboard(9))
    async with app.run_test(size=(20, 5)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


async def test_a_notice_given_before_or_after_the_start_shows_in_the_status_line() -> None:
    app = DashboardApp(scripted_dashboard(2), None, notice="No audio device: playing nothing")
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        assert "No audio device: playing nothing" in screen_text(app)
        app.set_notice("Audio device lost, retrying")
        await pilot.pause()
        assert "Audio device lost, retrying" in screen_text(app)
        assert app.dashboard_screen.notice == "Audio device lost, retrying"


async def test_a_growing_interim_line_repaints_in_place_and_settles() -> None:
    # The view repaints only the rows that changed: every growth must still reach the
    # screen, on the last row and on a row that wraps onto the next one.
    app, call = one_call_with_history(30)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        words = []
        for word in "please hold while I check the order status for you".split():
            words.append(word)
            call.add_transcript("grow", "agent", " ".join(words), final=False)
            await pilot.pause(0.06)
            assert " ".join(words) + " …" in screen_text(app)
        long_tail = " ".join(["and then some more words"] * 4)  # wraps onto a second row
        call.add_transcript("grow", "agent", " ".join(words) + " " + long_tail, final=False)
        await pilot.pause(0.06)
        call.add_transcript("grow", "agent", " ".join(words) + " " + long_tail + " done", True)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "more words done" in text and "…" not in text.split("earlier line 29")[-1]
        assert "earlier line 29" in text


async def test_a_long_history_scrolls_back_to_its_first_line_and_down_again() -> None:
    # Only the rows drawn lately are kept wrapped: the rest are wrapped again when they
    # scroll back into view, and must show exactly what they said.
    app, _call = one_call_with_history(500)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "earlier line 499" in screen_text(app)
        await pilot.press("home")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "earlier line 0" in text and "earlier line 1" in text
        assert "earlier line 499" not in text
        await pilot.press("pagedown")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "earlier line 0 " not in text + " "  # a page further...
        assert "earlier line 20" in text  # ...and the rows there are the right ones
        await pilot.press("end")
        await pilot.pause(0.1)
        assert "earlier line 499" in screen_text(app)


async def test_a_transcript_history_keeps_few_objects_for_the_garbage_collector() -> None:
    # A full collection walks every tracked object and holds the GIL (the audio and the
    # UI wait): a pane must not keep a wrapped Textual Strip (about 40 tracked objects
    # each) for every line of its history, only for the lines drawn lately.
    import gc

    app, call = one_call_with_history(10)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        gc.collect()
        before = len(gc.get_objects())
        for n in range(400):
            call.add_transcript(f"more{n}", "agent", f"a later line {n} of the call", True)
            if n % 50 == 0:
                await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert "a later line 399" in screen_text(app)
        gc.collect()
        per_line = (len(gc.get_objects()) - before) / 400
        # The model's segment and the view's row count are a few objects; a Strip per
        # line (what it was) measured about 46.
        assert per_line < 8, f"{per_line:.1f} tracked objects per transcript line"

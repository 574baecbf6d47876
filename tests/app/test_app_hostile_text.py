"""Transcript text is data: markup, escape sequences, control characters, a 100 KB line
and invalid UTF-8 are shown literally and the dashboard keeps working."""

from __future__ import annotations

import pytest

from tests.fixtures.app import make_app, screen_text, scripted_dashboard

pytestmark = pytest.mark.timeout(60)

HOSTILE = [
    ("markup", "[bold red]x[/] and [link=http://evil]click[/link]"),
    ("clear", "before\x1b[2Jafter"),
    ("cr", "visible\rhidden?"),
    ("bell", "ding\x07dong"),
    ("utf8", b"caf\xc3\xa9 \xff\xfe broken".decode("utf-8", errors="replace")),
]


async def test_hostile_transcript_renders_literally_and_the_app_keeps_running() -> None:
    dashboard = scripted_dashboard(1)
    call = dashboard.get("conv_01")
    assert call is not None
    app = make_app(dashboard)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        for segment_id, text in HOSTILE:
            call.add_transcript(segment_id, "user", text, final=True)
        call.add_transcript("huge", "agent", "A" * 100_000, final=False)  # interim, growing
        call.add_transcript("huge", "agent", "B" * 100_000, final=True)
        call.add_transcript("after", "agent", "still here", final=True)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "[bold red]x[/] and [link=http://evil]click[/link]" in text
        assert "before\u241b[2Jafter" in text  # ESC shown as ␛, nothing cleared
        assert "visible\u240dhidden?" in text
        assert "ding\u2407dong" in text
        assert "café \ufffd\ufffd broken" in text
        assert "[cut]" in text  # the 100 KB line is bounded...
        assert "still here" in text  # ...and does not bury what follows
        # the screen never receives a raw control character from the transcript
        assert not any(ch in text for ch in "\x1b\r\x07")
        # and the app still answers keys
        await pilot.press("space")
        assert app.dashboard.listening is True
        await pilot.press("q")
    assert app.return_value == 0


async def test_hostile_caller_and_error_text_is_literal_too() -> None:
    dashboard = scripted_dashboard(0)
    from tui.monitor.model import ConversationInfo

    call = dashboard.add_call(
        "c1", ConversationInfo("c1", user_id="[red]+1555[/]\x1b]0;pwned\x07", agent_name="A\rB")
    )
    call.set_error("bad [b]thing[/b]\x1b[31m")
    app = make_app(dashboard)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "[red]+1555[/]\u241b]0;pwned\u2407" in text
        assert "A\u240dB" in text
        assert "bad [b]thing[/b]\u241b[31m" in text

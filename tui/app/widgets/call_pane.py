"""One monitored call on screen: who, which agent, how long, state, audio, transcript."""

from __future__ import annotations

from datetime import timedelta, tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Click
from textual.message import Message
from textual.widgets import Static

from tui.app.widgets.badge import StateBadge
from tui.app.widgets.level_meter import LevelMeter
from tui.app.widgets.text_line import show_text
from tui.app.widgets.transcript_view import TranscriptView
from tui.monitor.health import HealthState
from tui.monitor.model import VOLUME_DEFAULT, MonitoredCall
from tui.monitor.text import safe_text

MAX_FIELD_CHARS = 80  # caller ids and agent names come from the API: bounded and literal


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes:02}:{seconds:02}"


def health_flags(health: HealthState) -> Text:
    """The call's health flags in words (the words carry them without colour: NO_COLOR)."""
    text = Text(no_wrap=True)
    flags: list[tuple[str, str]] = []
    if health.dead_air_s is not None:
        words = f"DEAD AIR {int(health.dead_air_s)}s"
        flags.append((words, "bold reverse red" if health.dead_air_now else "bold red"))
    if health.loops:
        flags.append(("LOOP", "bold reverse red"))
    if health.slow and health.last_response_s is not None:
        flags.append((f"SLOW {health.last_response_s:.1f}s", "bold reverse yellow"))
    if health.talk_overs:
        flags.append((f"TALK-OVER ×{health.talk_overs}", "bold magenta"))
    for words, style in flags:
        text.append(words, style)
        text.append(" ")
    return text


def response_words(health: HealthState) -> str:
    last, median = health.last_response_s, health.median_response_s
    if last is None or median is None:
        return ""
    return f"reply {last:.1f}s (median {median:.1f}s)"


# One cell either way, so the caller's name does not move when someone starts talking.
SPEAKING_MARK = "◉ "
NOT_SPEAKING_MARK = "  "


def audio_words(*, heard: bool, in_mix: bool, pan: float | None, volume: int) -> str:
    """What the pane says of its audio: heard or muted, its side in the mix, its volume.

    In words, so the mix reads without colour; the volume shows once it was changed,
    and always for a call in the mix (a mix is balanced by ear, call by call).
    """
    parts = ["♪ heard" if heard else "muted"]
    if in_mix:
        side = "C" if not pan else ("L" if pan < 0 else "R")
        parts.append(f"mix {side}")
    if in_mix or volume != VOLUME_DEFAULT:
        parts.append(f"{volume}%")
    return " · ".join(parts)


class CallPane(Vertical):
    """Renders one `MonitoredCall`; the screen tells it when the model changed."""

    class Selected(Message):
        """The pane was clicked: its call should take the focus (which lives in the model)."""

        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    DEFAULT_CSS = """
    CallPane .pane-row { height: 1; width: 1fr; }
    CallPane .pane-caller { width: 1fr; text-style: bold;
                            text-wrap: nowrap; text-overflow: ellipsis; }
    CallPane .pane-meta { width: 1fr; color: $text-muted;
                          text-wrap: nowrap; text-overflow: ellipsis; }
    CallPane .pane-heard { width: auto; padding: 0 1; }
    CallPane .new-lines { display: none; dock: bottom; width: 1fr; height: 1;
                          background: $warning; color: $background; }
    CallPane.-new-lines .new-lines { display: block; }
    """

    def __init__(self, call: MonitoredCall, *, display_tz: tzinfo | None = None) -> None:
        super().__init__()
        self.call = call
        self.index = 0
        self._caller = Static("", classes="pane-caller", markup=False)
        self._badge = StateBadge()
        self._meta = Static("", classes="pane-meta", markup=False)
        self._heard = Static("", classes="pane-heard", markup=False)
        self._meter = LevelMeter()
        self.transcript = TranscriptView(
            call, display_tz=display_tz, on_new_lines=self._show_new_lines
        )
        self._marker = Static(
            Text("↓ new lines below · end to follow"), classes="new-lines", markup=False
        )

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-row pane-head"):
            yield self._caller
            yield self._badge
        with Horizontal(classes="pane-row pane-info"):
            yield self._meta
            yield self._heard
            yield self._meter
        yield self.transcript
        yield self._marker

    def _show_new_lines(self, shown: bool) -> None:
        self.set_class(shown, "-new-lines")

    def on_click(self, event: Click) -> None:
        self.post_message(self.Selected(self.call.conversation_id))

    # -- updates from the model ----------------------------------------------------

    def update_header(
        self,
        *,
        index: int,
        focused: bool,
        heard: bool,
        speaking: bool,
        in_mix: bool = False,
        pan: float | None = None,
        volume: int = VOLUME_DEFAULT,
    ) -> None:
        call, info = self.call, self.call.info
        self.index = index
        self.set_class(focused, "-focused")
        self.set_class(heard, "-heard")
        self.set_class(speaking, "-speaking")
        self.set_class(call.alerted, "-alert")
        caller = Text(no_wrap=True, overflow="ellipsis")
        if index <= 9:
            caller.append(f"{index} ", "dim")
        # Who speaks shows on every pane, heard or not (an unheard call decodes no audio,
        # so its meter is empty: the mark comes from the room's active speakers).
        caller.append(SPEAKING_MARK if speaking else NOT_SPEAKING_MARK, "bold")
        if call.alerted:  # a word, not only a colour: monochrome terminals see it too
            caller.append("⚑ ALERT ", "bold reverse")
        caller.append_text(health_flags(call.health))
        caller.append(safe_text(info.caller, MAX_FIELD_CHARS))
        if info.agent_name:
            caller.append(" · ")
            caller.append(safe_text(info.agent_name, MAX_FIELD_CHARS))
        show_text(self._caller, caller, layout=False)
        self._badge.show_badge(call.badge)
        route = " ".join(p for p in (info.channel, info.direction) if p)
        reply = response_words(call.health)
        meta = " · ".join(p for p in (format_duration(call.duration()), route, reply) if p)
        show_text(self._meta, Text(safe_text(meta, MAX_FIELD_CHARS), no_wrap=True), layout=False)
        words = audio_words(heard=heard, in_mix=in_mix, pan=pan, volume=volume)
        show_text(self._heard, Text(words), layout=True)  # width: auto
        self._meter.show_level(call.level.rms_dbfs)

    def update_level(self) -> None:
        self._meter.show_level(self.call.level.rms_dbfs)

    def update_transcript(self) -> None:
        self.transcript.rebuild()

"""tail's EventWriter emits health flags as their own lines, after the line that raised them."""

from __future__ import annotations

import io
import json

from tui.commands.tail import EventWriter, JsonLines
from tui.config import load_settings
from tui.listen import Transcript
from tui.monitor.follow import StateChanged, TranscriptReceived
from tui.monitor.health import HealthThresholds


def test_a_looping_agent_gives_a_health_line() -> None:
    stream = io.StringIO()
    writer = EventWriter(JsonLines(stream), "c_loop", health_tick_s=None)
    writer(StateChanged("connected"))
    for n in range(3):
        segment = Transcript(
            id=f"a{n}", role="agent", text="Could you repeat that please?", final=True
        )
        writer(TranscriptReceived(segment))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "stateChange",
        "transcript",
        "transcript",
        "transcript",
        "health",
    ]
    health = lines[-1]
    assert health["conversation_id"] == "c_loop"
    assert (health["flag"], health["value"]) == ("loop", 3.0)
    assert set(health) == {"ts", "conversation_id", "event", "flag", "value"}


def test_a_well_behaved_call_gives_no_health_line() -> None:
    stream = io.StringIO()
    writer = EventWriter(JsonLines(stream), "c_ok", health_tick_s=None)
    writer(StateChanged("connected"))
    for n, (role, text) in enumerate(
        [
            ("agent", "Hello, how can I help?"),
            ("user", "What time do you open?"),
            ("agent", "At nine."),
        ]
    ):
        writer(TranscriptReceived(Transcript(id=f"s{n}", role=role, text=text, final=True)))
    assert "health" not in [json.loads(line)["event"] for line in stream.getvalue().splitlines()]


def test_health_section_thresholds(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[health]\nresponse_s = 5\nloop_repeats = 4\n")
    settings = load_settings(config, {})
    assert settings.health.thresholds() == HealthThresholds(response_s=5.0, loop_repeats=4)

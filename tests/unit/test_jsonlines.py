"""Transcript files and ``tail`` share one JSON-lines encoding: exact text, no raw controls."""

from __future__ import annotations

import json
from pathlib import Path

from tui.core.jsonlines import json_line
from tui.listen import Transcript
from tui.monitor.store import TranscriptStore, read_transcript

HOSTILE = "a\x1b[2Jb\x9b2Jc\x9d0;x\x9cd\x7fe\u202ef ünï 日本"


def test_controls_are_escaped_and_the_decoded_text_is_exact() -> None:
    line = json_line({"text": HOSTILE})
    assert "\n" not in line
    assert not any(0x00 <= ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line)
    assert "ünï 日本" in line  # readable text stays readable
    assert json.loads(line)["text"] == HOSTILE


def test_the_transcript_file_holds_no_raw_control_and_reads_back_exactly(tmp_path: Path) -> None:
    with TranscriptStore(tmp_path) as store:
        store.append("c1", Transcript("SG_1", "agent", HOSTILE, True))
        path = store.path_for("c1")
    raw = path.read_text(encoding="utf-8")
    assert not any(0x7F <= ord(c) <= 0x9F or c == "\x1b" for c in raw)
    assert [s.text for s in read_transcript(path)] == [HOSTILE]

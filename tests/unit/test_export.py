"""``anyreach-tui export``: a saved transcript as Markdown or JSON lines."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.config import ConfigHome
from tui.commands.export import main
from tui.monitor.store import TranscriptStore

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Segment:
    id: str
    role: str
    text: str


CALL = [
    Segment("s1", "agent", "Thanks for calling, how can I help?"),
    Segment("s2", "user", "I want to *cancel* <b>now</b> [red]please[/red]"),
    Segment("s3", "agent", "I can help with that."),
]


@pytest.fixture
def saved_call(config_home: ConfigHome) -> str:
    with TranscriptStore(config_home.data_dir / "transcripts") as store:
        for segment in [*CALL, CALL[1]]:  # the replayed segment must not be exported twice
            store.append("conv_7", segment)
    return "conv_7"


def test_markdown_export(saved_call: str, tmp_path: Path) -> None:
    output = tmp_path / "call.md"
    assert main([saved_call, "--format", "md", "--output", str(output)], stderr=io.StringIO()) == 0
    markdown = output.read_text(encoding="utf-8")
    assert markdown.startswith("# Conversation conv\\_7\n")
    body = [line for line in markdown.splitlines() if line.startswith("**")]
    assert len(body) == 3
    assert body[0].startswith("**Agent**")
    assert body[0].endswith("Thanks for calling, how can I help?")
    assert body[1].startswith("**Caller**")
    # Spoken words never become Markdown or HTML structure.
    assert body[1].endswith(r"I want to \*cancel\* \<b\>now\</b\> \[red\]please\[/red\]")


def test_jsonl_export_to_stdout(saved_call: str) -> None:
    stdout = io.StringIO()
    assert main([saved_call, "--format", "jsonl"], stdout=stdout) == 0
    records = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [(r["id"], r["role"], r["text"]) for r in records] == [
        (s.id, s.role, s.text) for s in CALL
    ]
    assert all(r["conversation_id"] == "conv_7" and r["ts"] for r in records)


def test_unknown_conversation_exits_4(config_home: ConfigHome) -> None:
    stderr = io.StringIO()
    assert main(["conv_nope", "--format", "md"], stderr=stderr) == 4
    assert "no saved transcript" in stderr.getvalue()


def test_transcripts_dir_flag_is_honoured(config_home: ConfigHome, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    with TranscriptStore(elsewhere) as store:
        store.append("conv_x", CALL[0])
    stdout = io.StringIO()
    assert (
        main(["conv_x", "--format", "jsonl", "--transcripts-dir", str(elsewhere)], stdout=stdout)
        == 0
    )
    assert json.loads(stdout.getvalue())["id"] == "s1"


@pytest.mark.timeout(60)
def test_export_through_the_real_command(
    saved_call: str, config_home: ConfigHome, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.commands.main",
            "export",
            saved_call,
            "--format",
            "jsonl",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        env=config_home.env(),
        cwd=ROOT,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == [
        "s1",
        "s2",
        "s3",
    ]

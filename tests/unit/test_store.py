"""Transcripts on disk: every settled segment, at once, exactly once, even under kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui.monitor.store import TranscriptStore, read_transcript, transcript_file_name

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Segment:
    id: str
    role: str
    text: str
    final: bool = True


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_segments_are_on_disk_as_soon_as_appended(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "transcripts")
    assert store.append("conv_1", Segment("s1", "agent", "Hello, how can I help?"))
    # Read through a separate descriptor while the store is still open: nothing is buffered.
    lines = _lines(store.path_for("conv_1"))
    assert [(r["id"], r["role"], r["text"], r["conversation_id"]) for r in lines] == [
        ("s1", "agent", "Hello, how can I help?", "conv_1"),
    ]
    assert lines[0]["ts"].endswith("Z")
    store.close_all()


def test_same_segment_is_never_written_twice(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    with TranscriptStore(directory) as store:
        assert store.append("c", Segment("s1", "user", "I want to cancel"))
        assert store.append("c", Segment("s2", "agent", "Sure"))
        assert not store.append("c", Segment("s1", "user", "I want to cancel"))  # reconnect replay
        assert store.has("c", "s2") and not store.has("c", "s3")

    # A restarted app reads the ids already saved before appending.
    with TranscriptStore(directory) as reopened:
        assert not reopened.append("c", Segment("s2", "agent", "Sure"))
        assert reopened.append("c", Segment("s3", "user", "Thanks"))
    assert [r["id"] for r in _lines(directory / "c.jsonl")] == ["s1", "s2", "s3"]


def test_interim_segments_and_disabled_store_write_nothing(tmp_path: Path) -> None:
    with TranscriptStore(tmp_path / "a") as store:
        assert not store.append("c", Segment("s1", "user", "I want to can", final=False))
    assert not (tmp_path / "a" / "c.jsonl").exists()
    with TranscriptStore(tmp_path / "b", enabled=False) as off:
        assert not off.append("c", Segment("s1", "user", "hi"))
    assert not (tmp_path / "b").exists()


def test_files_are_private_and_text_is_kept_verbatim(tmp_path: Path) -> None:
    text = 'Line one\nline "two" [bold]not markup[/bold] \x1b[31m émoji 🎧'
    with TranscriptStore(tmp_path / "t") as store:
        store.append("c", Segment("s1", "user", text))
        path = store.path_for("c")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    assert read_transcript(path)[0].text == text


def test_torn_last_line_is_skipped_and_not_glued_to(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    directory.mkdir()
    path = directory / "c.jsonl"
    path.write_text('{"id": "s1", "role": "agent", "text": "ok", "ts": "x"}\n{"id": "s2", "ro')
    with TranscriptStore(directory) as store:
        assert not store.append("c", Segment("s1", "agent", "ok"))
        assert store.append("c", Segment("s3", "user", "after the crash"))
    assert [s.id for s in read_transcript(path)] == ["s1", "s3"]


@pytest.mark.parametrize(
    "conversation_id", ["../../etc/passwd", "..", ".hidden", "a/b", "a b\nc", "x" * 300]
)
def test_any_id_gets_a_safe_file_inside_the_folder(tmp_path: Path, conversation_id: str) -> None:
    with TranscriptStore(tmp_path / "t") as store:
        store.append(conversation_id, Segment("s1", "user", "hi"))
        path = store.path_for(conversation_id)
    assert path.parent == tmp_path / "t"
    assert not path.name.startswith(".") and len(path.name) < 150
    assert read_transcript(path)[0].conversation_id == conversation_id


def test_file_names_keep_real_ids_and_never_collide() -> None:
    assert transcript_file_name("4f1c2a9e-7b3d-4e5f-9a1b-2c3d4e5f6a7b") == (
        "4f1c2a9e-7b3d-4e5f-9a1b-2c3d4e5f6a7b.jsonl"
    )
    assert transcript_file_name("a/b") != transcript_file_name("a_b")
    assert transcript_file_name("a/b") != transcript_file_name("a:b")


WRITER = textwrap.dedent(
    """
    import sys
    from dataclasses import dataclass
    from pathlib import Path
    from tui.monitor.store import TranscriptStore

    @dataclass
    class Segment:
        id: str
        role: str
        text: str

    store = TranscriptStore(Path(sys.argv[1]))
    n = 0
    while True:  # runs until killed
        store.append("conv_kill", Segment(f"seg-{n}", "agent", "word " * (n % 40)))
        print(f"seg-{n}", flush=True)  # "shown as settled"
        n += 1
    """
)


@pytest.mark.timeout(60)
def test_kill_9_of_the_writer_loses_no_settled_line(tmp_path: Path) -> None:
    directory = tmp_path / "transcripts"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout is not None
    reported = [writer.stdout.readline().strip() for _ in range(300)]
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=20)
    reported += [line.strip() for line in writer.stdout.read().splitlines() if line.strip()]
    assert writer.returncode == -signal.SIGKILL

    saved = [record["id"] for record in _lines(directory / "conv_kill.jsonl")]
    # Shown in order with none missing: the 300 read before the kill and the rest of the pipe.
    assert reported == [f"seg-{n}" for n in range(len(reported))]
    # Every line shown as settled is saved once, in order; beyond them at most the one
    # segment that was written but not yet shown when the kill came.
    assert saved in (reported, [*reported, f"seg-{len(reported)}"])

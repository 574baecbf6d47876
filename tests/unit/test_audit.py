"""The audit trail: the model's heard call, as start/end lines paired by interval id."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.app import FROZEN_NOW, FrozenClock, make_app, scripted_dashboard
from tests.fixtures.config import ConfigHome
from tui.commands import audit as audit_command
from tui.core import paths
from tui.monitor.audit import AuditTrail, Hearer, process_token, read_audit
from tui.monitor.model import Change, Dashboard

HEARER = Hearer("alice", "desk-1", 4242, None)


def lines(path: Path) -> list[dict]:
    return [json.loads(raw) for raw in path.read_text().splitlines()]


def three_calls(clock: FrozenClock) -> Dashboard:
    dashboard = Dashboard(clock=clock)
    for cid in ("c1", "c2", "c3"):
        dashboard.add_call(cid).set_state("connected")
    return dashboard


def test_focus_moves_with_listening_on_across_three_calls_give_exactly_those_intervals(
    tmp_path: Path,
) -> None:
    clock = FrozenClock()
    dashboard = three_calls(clock)
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    clock.advance(5)
    dashboard.set_listening(True)  # c1 heard at +5 s
    clock.advance(10)
    dashboard.focus("c2")  # +15 s
    clock.advance(20)
    dashboard.focus_step(1)  # c3 at +35 s
    clock.advance(7)
    dashboard.set_listening(False)  # +42 s
    clock.advance(100)
    dashboard.focus("c1")  # not listening: nothing heard, nothing written
    trail.close("quit")

    records = lines(path)
    assert [(r["event"], r["conversation_id"]) for r in records] == [
        ("start", "c1"),
        ("end", "c1"),
        ("start", "c2"),
        ("end", "c2"),
        ("start", "c3"),
        ("end", "c3"),
    ]
    start = records[0]
    assert set(start) == {
        "event",
        "interval",
        "ts",
        "conversation_id",
        "user",
        "host",
        "pid",
        "process",
    }
    assert (start["user"], start["host"], start["pid"]) == ("alice", "desk-1", 4242)
    assert set(records[1]) == {"event", "interval", "ts", "conversation_id", "reason"}
    # Two lines per interval, joined by the interval id; ids are distinct.
    ids = [r["interval"] for r in records]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5]
    assert len(set(ids)) == 3

    intervals = read_audit(path)
    at = [FROZEN_NOW + timedelta(seconds=s) for s in (5, 15, 35, 42)]
    assert [(i.conversation_id, i.start, i.end, i.reason, i.status) for i in intervals] == [
        ("c1", at[0], at[1], "focus moved", "ended"),
        ("c2", at[1], at[2], "focus moved", "ended"),
        ("c3", at[2], at[3], "listening off", "ended"),
    ]
    assert [i.duration for i in intervals] == [timedelta(seconds=s) for s in (10, 20, 7)]
    assert start["ts"] == "2025-03-04T14:30:05.000Z"


def test_each_ending_reason(tmp_path: Path) -> None:
    clock = FrozenClock()
    dashboard = three_calls(clock)
    dashboard.add_call("c4").set_state("connected")
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)  # c1
    dashboard.remove_call("c1")  # pane closed; focus goes on to c2, still listening
    c2 = dashboard.get("c2")
    assert c2 is not None and dashboard.heard_id == "c2"
    c2.mark_ended()  # call ended: nothing of it plays any more
    assert dashboard.heard_id == "c2"  # the model still points at it...
    dashboard.focus("c3")  # ...and focus moving on opens c3
    dashboard.set_wallboard(True)  # wallboard on
    dashboard.set_wallboard(False)
    dashboard.set_listening(True)
    dashboard.focus("c4")
    trail.close("quit")
    trail.close("quit")  # idempotent

    got = [(i.conversation_id, i.reason) for i in read_audit(path)]
    assert got == [
        ("c1", "pane closed"),
        ("c2", "call ended"),
        ("c3", "wallboard on"),
        ("c3", "focus moved"),  # heard again once listening was back on
        ("c4", "quit"),
    ]
    dashboard.focus("c3")  # closed: watches nothing any more
    assert len(lines(path)) == 10


def test_an_ended_call_focused_with_listening_on_is_not_heard_and_a_revived_one_is(
    tmp_path: Path,
) -> None:
    clock = FrozenClock()
    dashboard = three_calls(clock)
    c2 = dashboard.get("c2")
    assert c2 is not None
    c2.mark_ended()
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)
    dashboard.focus("c2")
    c2.reset_for_reconnect()  # a pinned call that is active again
    trail.close()
    assert [(i.conversation_id, i.reason) for i in read_audit(path)] == [
        ("c1", "focus moved"),
        ("c2", "quit"),
    ]


def test_the_start_line_is_on_disk_before_any_later_observer_hears_of_the_change(
    tmp_path: Path,
) -> None:
    """The monitor subscribes after the trail: the router is told after the line is written."""
    dashboard = three_calls(FrozenClock())
    path = tmp_path / "audit.jsonl"
    AuditTrail(dashboard, path, hearer=HEARER)
    seen: list[list[str]] = []

    def router_told(change: Change) -> None:
        if change.kind in ("listening", "focus") and dashboard.heard_id is not None:
            seen.append([r["event"] + ":" + r["conversation_id"] for r in lines(path)])

    dashboard.subscribe(router_told)
    dashboard.set_listening(True)
    dashboard.focus("c2")
    assert seen == [["start:c1"], ["start:c1", "end:c1", "start:c2"]]


def test_listening_already_on_when_the_trail_starts_opens_an_interval(tmp_path: Path) -> None:
    dashboard = three_calls(FrozenClock())
    dashboard.set_listening(True)
    trail = AuditTrail(dashboard, tmp_path / "audit.jsonl", hearer=HEARER)
    assert trail.open_conversations == ["c1"]
    trail.close()


def test_nothing_heard_writes_nothing_and_disabled_watches_nothing(tmp_path: Path) -> None:
    dashboard = three_calls(FrozenClock())
    quiet = AuditTrail(dashboard, tmp_path / "quiet.jsonl", hearer=HEARER)
    off = AuditTrail(dashboard, tmp_path / "off.jsonl", enabled=False, hearer=HEARER)
    dashboard.focus("c2")
    dashboard.focus("c3")
    quiet.close()
    dashboard.set_listening(True)
    off.close()
    assert not (tmp_path / "quiet.jsonl").exists()
    assert not (tmp_path / "off.jsonl").exists()


def test_the_file_is_private_appended_to_and_a_cut_last_line_is_not_glued_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    path.parent.mkdir()
    path.write_text('{"event": "start", "interval": "old", "ts": "2025-03-04T14:00:00.000Z"')
    path.chmod(0o600)
    dashboard = three_calls(FrozenClock())
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)
    trail.close()
    raw = path.read_text().splitlines()
    assert raw[0].endswith('Z"')  # the fragment stays alone on its line
    assert [json.loads(line)["event"] for line in raw[1:]] == ["start", "end"]
    assert [i.conversation_id for i in read_audit(path)] == ["c1"]  # the fragment is skipped

    fresh = tmp_path / "new" / "audit.jsonl"
    trail = AuditTrail(dashboard, fresh, hearer=HEARER)
    trail.close()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_refused_write_keeps_the_line_and_writes_it_first_once_the_disk_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    dashboard = three_calls(FrozenClock())
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    real_write = os.write
    refusing = True

    def write(fd: int, data: bytes) -> int:
        if refusing:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    dashboard.set_listening(True)  # the key press is not failed by the full disk
    refusing = False
    dashboard.focus("c2")
    trail.close()
    assert [(r["event"], r["conversation_id"]) for r in lines(path)] == [
        ("start", "c1"),
        ("end", "c1"),
        ("start", "c2"),
        ("end", "c2"),
    ]


def test_an_unpaired_start_is_interrupted_unless_its_process_still_runs(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    here = Hearer.current()
    dead = {"pid": 999_999_999, "process": "boot:999999999:1"}
    alive = {"pid": here.pid, "process": here.process}
    records = [
        {"event": "start", "interval": "a", "ts": "2025-03-04T14:00:00.000Z", **dead},
        {"event": "start", "interval": "b", "ts": "2025-03-04T14:01:00.000Z", **alive},
        {"event": "end", "interval": "zzz", "ts": "2025-03-04T14:02:00.000Z", "reason": "quit"},
    ]
    for record in records:
        record.update(conversation_id="c1", user="alice", host=here.host)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")
    assert process_token(here.pid) is not None  # Linux: /proc is there
    assert [(i.interval, i.status, i.end, i.reason) for i in read_audit(path)] == [
        ("a", "interrupted", None, None),
        ("b", "in progress", None, None),
    ]


def test_the_default_file_is_in_the_xdg_state_folder(config_home: ConfigHome) -> None:
    assert paths.audit_file() == config_home.state_dir / "audit.jsonl"


def write_trail(path: Path) -> None:
    clock = FrozenClock()
    dashboard = three_calls(clock)
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    dashboard.set_listening(True)
    clock.advance(65)
    dashboard.focus("c2")
    clock.advance(3600 * 24)
    dashboard.focus("c3")
    clock.advance(2)
    trail.close()


def run_audit(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = audit_command.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def utc_local_time() -> Iterator[None]:
    """Local time is UTC for the table's columns (restored afterwards)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("utc_local_time")
def test_the_audit_command_prints_a_table_or_json_lines_and_filters(
    config_home: ConfigHome, capsys: pytest.CaptureFixture[str]
) -> None:
    write_trail(config_home.state_dir / "audit.jsonl")

    code, out, _ = run_audit()
    assert code == 0
    table = out.splitlines()
    assert table[0].split() == [
        "USER",
        "HOST",
        "CONVERSATION",
        "START",
        "(UTC)",
        "END",
        "(UTC)",
        "DURATION",
        "REASON",
    ]
    assert table[1].split() == [
        "alice",
        "desk-1",
        "c1",
        "2025-03-04",
        "14:30:00",
        "2025-03-04",
        "14:31:05",
        "1m05s",
        "focus",
        "moved",
    ]
    assert table[2].split()[-3:] == ["24h00m00s", "focus", "moved"]
    assert table[3].split()[-2:] == ["2s", "quit"]

    code, out, _ = run_audit("--json", "--conversation", "c2")
    assert code == 0
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record == {
        "interval": record["interval"],
        "user": "alice",
        "host": "desk-1",
        "conversation_id": "c2",
        "start": "2025-03-04T14:31:05.000Z",
        "end": "2025-03-05T14:31:05.000Z",
        "duration_s": 86400.0,
        "reason": "focus moved",
        "status": "ended",
    }

    # --since: intervals that started or ended at or after it (c2 ended on the 5th).
    code, out, _ = run_audit("--json", "--since", "2025-03-05")
    assert [json.loads(line)["conversation_id"] for line in out.splitlines()] == ["c2", "c3"]
    code, out, _ = run_audit("--since", "2025-03-06T00:00Z")
    assert code == 0 and out.startswith("No call heard in that range")
    code, _, _ = run_audit("--since", "yesterday-ish")
    assert code == 2 and "not a date: 'yesterday-ish'" in capsys.readouterr().err  # argparse


def test_the_audit_command_reads_the_configured_file_and_shows_interrupted(
    config_home: ConfigHome,
) -> None:
    path = config_home.root / "elsewhere.jsonl"
    start = {
        "event": "start",
        "interval": "x1",
        "ts": "2025-03-04T14:00:00.000Z",
        "conversation_id": "conv_\x1b[31mred",
        "user": "bob",
        "host": "gone-host",
        "pid": 1,
        "process": None,
    }
    path.write_text(json.dumps(start) + "\n")
    config = config_home.write_config(f'[audit]\nfile = "{path}"\n')
    code, out, _ = run_audit("--config", str(config))
    assert code == 0
    row = out.splitlines()[1]
    assert "(interrupted)" in row and "bob" in row and "gone-host" in row
    assert "\x1b" not in out  # a hostile id shows as text
    code, out, _ = run_audit("--config", str(config), "--json")
    assert json.loads(out)["status"] == "interrupted" and json.loads(out)["end"] is None


def test_since_accepts_relative_times() -> None:
    now = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
    assert audit_command.parse_since("90m", now) == now - timedelta(minutes=90)
    assert audit_command.parse_since("2d", now) == now - timedelta(days=2)
    assert audit_command.parse_since("2025-03-01T10:00+00:00") == datetime(
        2025, 3, 1, 10, tzinfo=UTC
    )


@pytest.mark.timeout(60)
async def test_the_dashboards_keys_move_the_heard_call_and_the_trail_follows(
    tmp_path: Path,
) -> None:
    dashboard = scripted_dashboard(4)  # 2x2 at 120x40; conv_04 is still connecting
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(dashboard, path, hearer=HEARER)
    app = make_app(dashboard)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("space")  # conv_01
        await pilot.press("right")  # conv_02
        await pilot.press("j")  # conv_04
        await pilot.press("x")  # pane closed: focus goes on to conv_03
        await pilot.press("m")  # listening off
        await pilot.press("tab")  # not heard: nothing
        await pilot.pause()
    trail.close()
    assert [(i.conversation_id, i.reason) for i in read_audit(path)] == [
        ("conv_01", "focus moved"),
        ("conv_02", "focus moved"),
        ("conv_04", "pane closed"),
        ("conv_03", "listening off"),
    ]


async def test_the_composition_root_builds_the_trail_before_the_monitor_and_closes_it_on_quit(
    config_home: ConfigHome,
) -> None:
    from tui.commands.dashboard import build_dashboard
    from tui.config import load_settings

    settings = load_settings(
        None,
        {
            "api_key": "ak_test",
            "api_url": "http://127.0.0.1:9",
            "audio": {"no_audio": True},
            "discovery": {"enabled": False},
        },
    )
    parts = build_dashboard(settings, ["conv_a", "conv_b"])
    try:
        assert parts.audit is not None
        assert parts.audit.path == config_home.state_dir / "audit.jsonl"
        dashboard = parts.app.dashboard
        parts.monitor.start()
        heard_by_router: list[list[str]] = []
        real_set_heard = parts.router.set_heard

        def set_heard(ids: object) -> None:
            path = parts.audit.path if parts.audit is not None else None
            written = lines(path) if path is not None and path.exists() else []
            heard_by_router.append([r["event"] for r in written])
            real_set_heard(ids)  # type: ignore[arg-type]

        parts.router.set_heard = set_heard  # type: ignore[method-assign]
        dashboard.set_listening(True)
        assert heard_by_router == [["start"]]  # the line was there when the router heard
        await parts.monitor.aclose(0.5)
    finally:
        parts.close_audit()
        parts.close_audio()
    intervals = read_audit(config_home.state_dir / "audit.jsonl")
    assert [(i.conversation_id, i.reason) for i in intervals] == [("conv_a", "quit")]

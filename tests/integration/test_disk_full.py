"""A full disk: the banner says transcripts are not being saved, panes keep working,
and once space returns the kept lines are saved, in order, none lost.

Transcripts go to a small tmpfs that the test fills (mounting needs root, which
the CI has: the README's set-up runs as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.anyreach import StackFactory
from tests.fixtures.live import LiveFactory, until
from tui.demo.calls import CallOptions, SimulatedCall
from tui.monitor.model import Dashboard
from tui.monitor.store import TranscriptStore, read_transcript

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    assert os.geteuid() == 0, "mounting a tmpfs needs root (scripts/setup.sh runs as root)"
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    probe = disk / "probe"
    try:
        probe.write_bytes(b"x" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    else:
        raise AssertionError("the disk still takes data")
    return filler


async def test_full_disk_shows_a_banner_keeps_panes_and_saves_every_line_later(
    demo_stack: StackFactory, live_monitor: LiveFactory, small_disk: Path
) -> None:
    stack = await demo_stack(calls=0)
    conversation = stack.emulator.create_conversation(status="in_progress", room_name="full")
    cid = conversation.id
    store = TranscriptStore(small_disk / "transcripts")
    dashboard = Dashboard()
    live_monitor(stack, dashboard=dashboard, pinned=[cid], discovery=False, store=store)
    pane = dashboard.get(cid)
    assert pane is not None
    await until(lambda: pane.is_live, 30, "LIVE", dashboard)
    store.has(cid, "nothing")  # opens the file while there is room for it
    server = stack.server
    call = SimulatedCall(
        server.url,
        server.api_key,
        server.api_secret,
        "full",
        CallOptions(mode="tone", max_lines=12, time_scale=0.3),
    )
    filler = fill(small_disk)
    await call.start()
    try:
        await until(
            lambda: (dashboard.banner or "").startswith("Transcripts not saved"),
            60,
            "the banner about transcripts",
            dashboard,
        )
        shown_while_full = len(pane.transcript)
        await until(lambda: len(pane.transcript) > shown_while_full, 30, "more lines shown")
        assert pane.is_live, "the pane keeps working while the disk is full"
        assert read_transcript(store.path_for(cid)) == []

        filler.unlink()  # space returns
        await until(lambda: dashboard.banner is None, 60, "the banner cleared", dashboard)
        await asyncio.wait_for(call.wait_ended(), 120)
    finally:
        await call.stop()
    await until(lambda: pane.ended, 30, "the call ended", dashboard)

    sent = [s.segment_id for s in call.sent_segments if s.final]
    saved = [s.id for s in read_transcript(store.path_for(cid))]
    assert saved == sent, "every settled line saved, in order, none twice"

"""The livekit-server launcher: several real servers side by side, no orphans."""

from __future__ import annotations

import os
import random
import socket

import pytest
from livekit import api, rtc

from tui.demo.livekit_server import LiveKitServer, LiveKitServerError, Ports


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for every purpose that matters here
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def join(server: LiveKitServer, room_name: str) -> list[str]:
    """Join ``room_name`` and return the room names the server then lists."""
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity("probe")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(server.url, token)
    try:
        assert room.isconnected()
        async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lkapi:
            rooms = await lkapi.room.list_rooms(api.ListRoomsRequest())
        return [r.name for r in rooms.rooms]
    finally:
        await room.disconnect()


@pytest.mark.timeout(90)
async def test_two_servers_run_at_once_and_leave_no_process() -> None:
    first, second = LiveKitServer(), LiveKitServer()
    try:
        first.start()
        second.start()
        assert first.url != second.url
        ports_first = {first.ports.signal, first.ports.rtc_tcp, first.ports.rtc_udp}
        ports_second = {second.ports.signal, second.ports.rtc_tcp, second.ports.rtc_udp}
        assert not ports_first & ports_second
        pids = [first.pid, second.pid]
        assert all(pid is not None and pid_alive(pid) for pid in pids)

        # each is a separate server: a room made on one does not exist on the other
        assert await join(first, "room-one") == ["room-one"]
        assert await join(second, "room-two") == ["room-two"]
    finally:
        first.stop()
        second.stop()
    assert not any(pid_alive(pid) for pid in pids if pid is not None)
    assert not first.running() and not second.running()


@pytest.mark.timeout(60)
async def test_killed_server_restarts_on_the_same_ports() -> None:
    server = LiveKitServer()
    try:
        server.start()
        url, old_pid = server.url, server.pid
        server.kill()
        assert old_pid is not None and not pid_alive(old_pid)
        server.start()
        assert server.url == url and server.pid != old_pid
        assert await join(server, "again") == ["again"]
    finally:
        server.stop()
    assert old_pid is not None and not pid_alive(old_pid)


def listen_on(port: int) -> socket.socket:
    """Another process's listener on ``port``, as livekit-server would meet it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past a killed server's TIME_WAIT
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@pytest.mark.timeout(90)
@pytest.mark.parametrize("taken", ["signal", "rtc_tcp"])
async def test_a_port_taken_before_the_first_start_is_replaced(taken: str) -> None:
    # CI saw this: a port free when picked was bound by someone else before the
    # server bound it, and the server exited "bind: address already in use".
    ports = Ports.pick()
    blocker = listen_on(getattr(ports, taken))
    server = LiveKitServer(ports=ports)
    try:
        with blocker:
            server.start()
            assert getattr(server.ports, taken) != blocker.getsockname()[1]
            assert await join(server, "moved") == ["moved"]
    finally:
        server.stop()


@pytest.mark.timeout(60)
async def test_a_restart_keeps_its_ports_and_says_which_one_is_taken() -> None:
    server = LiveKitServer()
    try:
        server.start()
        url = server.url
        server.kill()
        with listen_on(server.ports.signal):
            with pytest.raises(LiveKitServerError, match="address already in use"):
                server.start()
        assert server.url == url  # clients that knew it reconnect to the same place
    finally:
        server.stop()


def test_the_signal_and_rtc_tcp_ports_are_never_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter([23456, 23456, 23456, 24567, 25678])
    monkeypatch.setattr(random, "randint", lambda low, high: next(picks))
    ports = Ports.pick()
    assert ports.signal == 23456 and ports.rtc_tcp == 24567

"""A server restart shows as connecting, then connected again (LiveKit's own reconnect)."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.listen import MakeSession, listener_token
from tui.demo.livekit_server import LiveKitServer

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
async def test_server_restart_shows_connecting_then_connected(
    livekit_server: LiveKitServer, listen_session: MakeSession
) -> None:
    session, rec = listen_session(livekit_server.url, listener_token(livekit_server, "restart"))
    await session.connect()
    await asyncio.to_thread(livekit_server.kill)
    await asyncio.to_thread(livekit_server.start)  # same ports: the SDK reconnects by itself
    await rec.wait_until(
        lambda: rec.states[-1:] in (["connected"], ["disconnected"]) and len(rec.states) > 2, 60
    )
    assert rec.states == ["connecting", "connected", "connecting", "connected"]
    assert rec.errors == []

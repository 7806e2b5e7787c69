"""The websocket held by a child process (kiosk.net.link_process): the same frames, failures
and close as WebsocketLink, and the child gone with the connection."""

from __future__ import annotations

import json
import socket

import pytest

from kiosk.errors import UpstreamRejected, UpstreamUnavailable
from kiosk.net.endpoints import realtime_endpoint
from kiosk.net.link_process import ProcessLink
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .rig import rig_config


async def test_frames_go_both_ways_and_the_child_ends_with_the_link() -> None:
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        link = await ProcessLink.open(realtime_endpoint(rig_config(server.url)), timeout_s=5.0)
        first = json.loads(await link.recv() or "{}")
        assert first["type"] == "session.created"
        update = {"type": "session.update", "session": {"type": "realtime"}}
        assert await link.send(json.dumps(update))
        assert json.loads(await link.recv() or "{}")["type"] == "session.updated"
        await link.close()
        assert link._proc.returncode is not None
        assert await link.send("{}") is False
        assert await link.recv() is None


async def test_a_refused_handshake_is_rejected_and_a_dead_port_unavailable() -> None:
    async with FakeRealtimeServer("ga", expected_auth=("bearer", "sk-right")) as server:
        cfg = rig_config(server.url)
        server.fail_handshakes(403)
        with pytest.raises(UpstreamRejected):
            await ProcessLink.open(realtime_endpoint(cfg), timeout_s=5.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UpstreamUnavailable) as exc:
        await ProcessLink.open(realtime_endpoint(rig_config(f"ws://127.0.0.1:{port}")), timeout_s=5.0)
    assert "cannot connect" in str(exc.value)


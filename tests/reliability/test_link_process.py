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



DAEMON_IMPORTS = """
import sys
sys.argv = ["kiosk", "run"]
import kiosk.cli, kiosk.daemon
print(sorted(m for m in ("ssl", "_ssl", "_hashlib") if m in sys.modules))
import hashlib, ssl
print(hashlib.sha1(b"kiosk").hexdigest()[:8], ssl.OPENSSL_VERSION.split()[0])
"""


def test_kiosk_run_imports_no_openssl_and_leaves_ssl_importable() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", DAEMON_IMPORTS], capture_output=True, text=True, timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out == ["[]", "75a12472 OpenSSL"]

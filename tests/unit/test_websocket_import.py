"""The daemon's first connection imports websockets without importlib.metadata (zipfile, csv):
+0.8 MB RSS it kept for good after its first conversation (lean4, bench rag_idle); nor,
without a proxy in the environment, urllib.request (http.client, email: ~2 MB, idle5)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from kiosk.net.connection import proxy_in_environment


def no_proxy_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return {**env, **extra}

CLIENT = """
import asyncio, socket, sys
from kiosk.errors import UpstreamUnavailable
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import RealtimeEndpoint

with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
endpoint = RealtimeEndpoint(f"ws://127.0.0.1:{port}/v1/realtime", {}, "ga", False)
try:
    asyncio.run(WebsocketLink.open(endpoint, timeout_s=2.0))
except UpstreamUnavailable as exc:
    print("refused")
unused = ["importlib.metadata", "zipfile", "csv"]
unused += ["urllib.request", "http.client", "email.message"]
print(sorted(m for m in unused if m in sys.modules))
import importlib.metadata, urllib.request, websockets
print(importlib.metadata.version("websockets") == websockets.__version__)
print(urllib.request.getproxies() == {})
"""


def test_a_connection_attempt_leaves_importlib_metadata_and_urllib_unimported_and_usable() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT],
        capture_output=True, text=True, timeout=60, check=True, env=no_proxy_env(),
    ).stdout.splitlines()
    assert out == ["refused", "[]", "True", "True"]


PROXIED_CLIENT = """
import asyncio, sys
from kiosk.errors import UpstreamUnavailable
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import RealtimeEndpoint

endpoint = RealtimeEndpoint("ws://192.0.2.7:8080/v1/realtime", {}, "ga", False)
try:
    asyncio.run(WebsocketLink.open(endpoint, timeout_s=5.0))
except UpstreamUnavailable as exc:
    print("unavailable")
"""


@pytest.mark.parametrize("variable", ["http_proxy", "HTTPS_PROXY", "ws_proxy"])
def test_a_proxy_in_the_environment_is_still_used(variable: str) -> None:
    """websockets' own lookup runs when the environment names a proxy: the connection
    goes through it (here a proxy that refuses the CONNECT)."""
    requests: list[bytes] = []
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(1)
        proxy.settimeout(30)

        def serve() -> None:
            conn, _ = proxy.accept()
            with conn:
                requests.append(conn.recv(4096))
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        out = subprocess.run(
            [sys.executable, "-c", PROXIED_CLIENT],
            capture_output=True, text=True, timeout=60, check=True,
            env=no_proxy_env(**{variable: url}),
        ).stdout.splitlines()
        server.join(10)
    assert out == ["unavailable"]
    assert requests and requests[0].startswith(b"CONNECT 192.0.2.7:8080 HTTP/1.1")


def test_which_environments_name_a_proxy_for_websockets() -> None:
    assert not proxy_in_environment({})
    assert not proxy_in_environment({"no_proxy": "localhost", "NO_PROXY": "*"})
    assert not proxy_in_environment({"ftp_proxy": "http://p:3128", "http_proxy": ""})
    assert proxy_in_environment({"HTTPS_PROXY": "http://p:3128"})
    assert proxy_in_environment({"socks_proxy": "socks5h://p:1080"})
    assert proxy_in_environment({"wss_proxy": "http://p:3128"})


DEVELOPMENT_BUILD = """
import importlib.abc, importlib.machinery, importlib.util, sys

class DevelopmentVersion(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # websockets.version as a development build has it: the version read from the metadata
    def find_spec(self, name, path=None, target=None):
        if name != "websockets.version":
            return None
        self.origin = importlib.machinery.PathFinder.find_spec(name, path).origin
        return importlib.util.spec_from_loader(name, self, origin=self.origin)

    def exec_module(self, module):
        source = open(self.origin).read() + "\\nversion = importlib.metadata.version('websockets')\\n"
        exec(compile(source, self.origin, "exec"), module.__dict__)

sys.meta_path.insert(0, DevelopmentVersion())
from kiosk.net.connection import import_websockets
client = import_websockets()
import websockets.version
print(client.connect.__name__, websockets.version.version)
"""


def test_a_websockets_build_that_reads_importlib_metadata_is_imported_as_it_is() -> None:
    import websockets

    out = subprocess.run(
        [sys.executable, "-c", DEVELOPMENT_BUILD],
        capture_output=True, text=True, timeout=60, check=True, env=no_proxy_env(),
    ).stdout.splitlines()
    assert out == [f"connect {websockets.__version__}"]

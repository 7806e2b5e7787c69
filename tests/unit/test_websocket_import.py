"""The daemon's first connection imports websockets without importlib.metadata (zipfile, csv):
+0.8 MB RSS it kept for good after its first conversation (lean4, bench rag_idle)."""

from __future__ import annotations

import subprocess
import sys

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
print(sorted(m for m in ("importlib.metadata", "zipfile", "csv") if m in sys.modules))
import importlib.metadata, websockets
print(importlib.metadata.version("websockets") == websockets.__version__)
"""


def test_a_connection_attempt_leaves_importlib_metadata_unimported_and_usable() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out == ["refused", "[]", "True"]


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
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()
    assert out == [f"connect {websockets.__version__}"]

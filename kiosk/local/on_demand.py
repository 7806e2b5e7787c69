"""The local fallback engine, served on demand: its port is reserved at start, its code loads
at the first connection.

With ``realtime.fallback = "local"`` the cloud normally answers every turn, and the fallback
may never be used; loading the engine's modules (the websockets server, recogniser and
synthesiser wrappers) at start cost 2.7 MB of idle RSS (measured, kiosk run, bench config).
So the loopback socket is bound and listening from the start (the link has its URL), and the
first connection that arrives starts the real server on that same socket: the connecting
client's handshake waits for the import (~0.2 s), nothing is refused or lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


class OnDemandLocalServer:
    """``async with OnDemandLocalServer() as server``: ``server.url`` answers from the first
    connection on; :class:`~kiosk.local.server.LocalRealtimeServer` starts then."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._host = host
        self._server: Any = None
        self._starting: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def started(self) -> bool:
        """Whether the engine's server runs (a connection has arrived)."""
        return self._server is not None

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"ws://{host}:{port}"

    async def __aenter__(self) -> OnDemandLocalServer:
        from kiosk.local.tts import Synthesizer

        try:
            Synthesizer.check()  # fail at start, in one line, as the eager server does
        except BaseException:
            self._sock.close()
            raise
        self._sock.bind((self._host, 0))
        self._sock.listen(16)
        self._sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._first_connection)
        log.debug("local engine reserved %s (starts at the first connection)", self.url)
        return self

    def _first_connection(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._sock.fileno())
        self._starting = self._loop.create_task(self._start())

    async def _start(self) -> None:
        from kiosk.local.engine import LocalEngine
        from kiosk.local.server import LocalRealtimeServer

        server = LocalRealtimeServer(LocalEngine(), sock=self._sock)
        try:
            await server.__aenter__()
        except Exception as exc:  # the client's connect then fails, and the clip plays
            log.error("local engine did not start: %s", exc)
            self._sock.close()
            return
        self._server = server
        log.info("local engine started on demand at %s", self.url)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        elif self._loop is not None and self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

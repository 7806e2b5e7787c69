"""The websocket in a child process that ends with the connection, so the daemon never holds it.

Why: websockets (23 modules, uuid, secrets), the TLS context and a connection's buffers stayed
in the daemon after its first conversation, for good: the idle daemon's RSS is held to < 50 MB
(issue 14) and a process that exits returns everything (like the query embedder,
:mod:`kiosk.rag.embed_worker`).

:class:`ProcessLink` is a :class:`~kiosk.net.engine.TextLink` whose :meth:`ProcessLink.open`
starts ``python -m kiosk.net.link_process`` (a fresh interpreter: never ``fork()`` of the
threaded daemon) with one end of a socket pair, sends it the endpoint (its headers carry the
key: over the socket, never in argv or the environment), and waits for the child's
:meth:`WebsocketLink.open <kiosk.net.connection.WebsocketLink.open>` to succeed or fail (the
same ``UpstreamRejected`` / ``UpstreamUnavailable`` are raised here). Then text frames go
through the pair both ways; closing our end makes the child close the websocket and exit.

Frames on the pair: one kind byte, a 4-byte big-endian length, the UTF-8 payload. Kinds:
``T`` a text frame (both ways), ``O`` opened, ``E`` failed to open (JSON: kind, message,
retry_after_s, status), ``C`` closed (the child's close reason), ``Q`` (parent -> child) the
endpoint and options as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import struct
import subprocess
import sys
from typing import Any

from kiosk.errors import UpstreamRejected, UpstreamUnavailable
from kiosk.net.connection import MAX_FRAME_BYTES
from kiosk.net.endpoints import RealtimeEndpoint

log = logging.getLogger(__name__)

HEADER = struct.Struct(">cI")
START_S = 5.0  # the child's interpreter and imports, on top of the connect timeout
EXIT_WAIT_S = 3.0  # after our end closes: the websocket's closing handshake, then exit
FD_ENV = "KIOSK_LINK_FD"


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, str] | None:
    """The next ``(kind, text)``, or None at end of stream. readexactly reads past the
    stream's 64 KiB buffer limit as the frame needs, so at most one frame (and 128 KiB ahead
    of it) waits here: the child's websocket feels our backpressure (MAX_QUEUED_FRAMES)."""
    try:
        kind, size = HEADER.unpack(await reader.readexactly(HEADER.size))
        if size > MAX_FRAME_BYTES + 1024:
            return None
        return kind, (await reader.readexactly(size)).decode("utf-8")
    except (asyncio.IncompleteReadError, ConnectionError, UnicodeDecodeError):
        return None


def write_frame(writer: asyncio.StreamWriter, kind: bytes, text: str) -> None:
    data = text.encode("utf-8")
    writer.write(HEADER.pack(kind, len(data)) + data)


class ProcessLink:
    """One Realtime websocket, held by a child process. Same use as
    :class:`~kiosk.net.connection.WebsocketLink`."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._proc = proc
        self._reader = reader
        self._writer = writer
        self.close_reason = ""

    @classmethod
    async def open(
        cls,
        endpoint: RealtimeEndpoint,
        *,
        timeout_s: float = 10.0,
        ping_interval_s: float | None = 10.0,
        ping_timeout_s: float | None = 10.0,
    ) -> ProcessLink:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk.net.link_process"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env={**os.environ, FD_ENV: str(theirs.fileno())},
            )
        except OSError as exc:
            ours.close()
            raise UpstreamUnavailable(f"cannot start the link process: {exc}") from None
        finally:
            theirs.close()
        try:
            reader, writer = await asyncio.open_connection(sock=ours)
        except BaseException:
            ours.close()
            proc.kill()
            await asyncio.to_thread(proc.wait)
            raise
        link = cls(proc, reader, writer)
        request = {
            "endpoint": dataclasses.asdict(endpoint),
            "timeout_s": timeout_s,
            "ping_interval_s": ping_interval_s,
            "ping_timeout_s": ping_timeout_s,
        }
        try:
            write_frame(writer, b"Q", json.dumps(request))
            await writer.drain()
            reply = await asyncio.wait_for(read_frame(reader), timeout_s + START_S)
        except (TimeoutError, ConnectionError) as exc:
            await link.close()
            raise UpstreamUnavailable(f"cannot connect: link process: {type(exc).__name__}") from None
        except BaseException:
            await link.close()
            raise
        if reply is not None and reply[0] == b"O":
            return link
        await link.close()
        if reply is None or reply[0] != b"E":
            raise UpstreamUnavailable("cannot connect: the link process ended")
        error = json.loads(reply[1])
        kind = UpstreamRejected if error.get("kind") == "rejected" else UpstreamUnavailable
        raise kind(error["message"], error.get("retry_after_s"), error.get("status"))

    async def send(self, text: str) -> bool:
        """Send one text frame; returns False if the connection is already gone."""
        if self._writer.is_closing():
            return False
        try:
            write_frame(self._writer, b"T", text)
            await self._writer.drain()
            return True
        except (ConnectionError, RuntimeError):
            self.close_reason = self.close_reason or "link process gone"
            return False

    async def recv(self) -> str | None:
        frame = await read_frame(self._reader)
        if frame is None:
            self.close_reason = self.close_reason or "link process gone"
            return None
        kind, text = frame
        if kind == b"T":
            return text
        self.close_reason = text if kind == b"C" else f"link process sent {kind!r}"
        return None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
            await self._writer.wait_closed()
        try:
            await asyncio.wait_for(asyncio.to_thread(self._proc.wait), EXIT_WAIT_S)
        except TimeoutError:
            self._proc.kill()
            await asyncio.to_thread(self._proc.wait)


async def serve(sock: socket.socket) -> None:
    """The child's side: open the websocket the parent asks for, relay until either side
    closes."""
    from kiosk.net.connection import WebsocketLink

    reader, writer = await asyncio.open_connection(sock=sock)
    first = await read_frame(reader)
    if first is None or first[0] != b"Q":
        return
    request: dict[str, Any] = json.loads(first[1])
    endpoint = RealtimeEndpoint(**request.pop("endpoint"))
    try:
        link = await WebsocketLink.open(endpoint, **request)
    except UpstreamUnavailable as exc:
        kind = "rejected" if isinstance(exc, UpstreamRejected) else "unavailable"
        error = {"kind": kind, "message": str(exc), "retry_after_s": exc.retry_after_s}
        write_frame(writer, b"E", json.dumps({**error, "status": exc.status}))
        await writer.drain()
        return
    write_frame(writer, b"O", "")
    await writer.drain()

    async def upstream() -> None:
        while (frame := await read_frame(reader)) is not None:
            if frame[0] == b"T" and not await link.send(frame[1]):
                return

    async def downstream() -> None:
        while (text := await link.recv()) is not None:
            write_frame(writer, b"T", text)
            await writer.drain()
        write_frame(writer, b"C", link.close_reason or "closed")
        await writer.drain()

    tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
    with contextlib.suppress(ConnectionError):
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    await link.close()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        writer.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=int(os.environ.pop(FD_ENV)))
    asyncio.run(serve(sock))


if __name__ == "__main__":
    main()

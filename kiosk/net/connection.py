"""The websocket adapter: one Realtime connection, text frames in and out.

Owns the ``websockets`` library and the translation of its failures into kiosk errors
(:class:`~kiosk.errors.UpstreamRejected` for 401/403, :class:`~kiosk.errors.UpstreamUnavailable`
with any ``Retry-After`` hint otherwise). Does not decide *when* to connect: that is the
app's connection policy (``kiosk.net.policy``).

``websockets`` (and with it ``ssl``, ~9 MB together) is imported at the first connection:
a kiosk that nobody has spoken to since it started does not hold it; and without
importlib.metadata or urllib.request (:func:`import_websockets`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

from kiosk.errors import UpstreamRejected, UpstreamUnavailable
from kiosk.net.endpoints import RealtimeEndpoint
from kiosk.net.policy import parse_retry_after
from kiosk.service.memory import import_without_metadata
from kiosk.textsafe import printable

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 8 * 1024 * 1024
# Frames read ahead of the pipeline (websockets' default is 16): each may be MAX_FRAME_BYTES,
# so a server blasting giant frames would park 128 MiB here. Beyond 2, reading pauses
# (TCP backpressure); a normal answer's frames are a few KB and never queue up.
MAX_QUEUED_FRAMES = 2
# No permessage-deflate: one 64 KB read of compressed data can inflate to dozens of
# 8 MiB frames before reading pauses (a 100 x 5 MB delta flood peaked at +73 MB in the
# decompressor alone). Base64 audio, nearly all of the traffic, hardly compresses anyway.
COMPRESSION = None
# After a keepalive ping times out, websockets still waits close_timeout (default 10 s) for
# a closing handshake that a dead link never delivers; keep that short so the turn ends (and
# the person hears the error earcon) within seconds of the link dying.
CLOSE_TIMEOUT_S = 1.0


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or an
    HTTP date, RFC 9110 10.2.3); None when absent or unreadable."""
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return parse_retry_after(str(float(millis) / 1000.0), time.time())
        value = headers.get("Retry-After")
    except (AttributeError, TypeError, ValueError):
        return None
    return parse_retry_after(value if isinstance(value, str) else None, time.time())


def import_websockets() -> types.ModuleType:
    """``websockets.asyncio.client``, imported without importlib.metadata or urllib.request.

    ``websockets.version`` imports importlib.metadata (with zipfile and csv) for a development
    build's version only; a release never calls it, but the import alone stayed in the daemon
    for good after its first conversation: +0.8 MB RSS (ad hoc, lean4: the websockets import
    +1.8 MB with it, +0.9 without, every other daemon module imported first). So while
    websockets imports, ``importlib.metadata`` is an empty stand-in, gone again afterwards; a
    build that does use it fails to import with the stand-in and is imported again as it is.

    ``urllib.request`` (with http.client and 15 email modules) is websockets' proxy lookup
    (``websockets.proxy.get_proxy``), which kiosk only lets it make when the environment
    names a proxy (:func:`proxy_in_environment`); :meth:`WebsocketLink.open` imports the
    real module first then. Without it, the daemon after a conversation and the idle close
    held 51.5 MB instead of 53.6 (ad hoc, idle5, worker config).
    """
    return import_without_metadata(
        "websockets.asyncio.client",
        "importlib.metadata",
        empty_stand_ins=("urllib.request",),
        retry_package="websockets",
    )


# The schemes websockets' get_proxy looks up, in urllib.request.getproxies()'s terms
# (environment variables ``<scheme>_proxy``, any case).
PROXY_SCHEMES = frozenset({"ws", "wss", "socks", "https", "http"})


def proxy_in_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether websockets' proxy lookup could find a proxy for a Realtime URL.

    On Linux, ``urllib.request.getproxies()`` reads only ``<scheme>_proxy`` variables, so with
    none of websockets' schemes set (non-empty) its ``get_proxy`` returns None for every URL
    and ``proxy=None`` connects the same way without the lookup. Elsewhere (macOS, Windows:
    system settings) the lookup always runs.
    """
    if sys.platform in ("darwin", "win32"):
        return True
    env = os.environ if environ is None else environ
    return any(
        value and name.lower().endswith("_proxy") and name.lower()[:-6] in PROXY_SCHEMES
        for name, value in env.items()
    )


class WebsocketLink:
    """One open websocket to a Realtime endpoint.

    Use :meth:`open` (classmethod), then :meth:`send` / :meth:`recv`, then :meth:`close`.
    :meth:`recv` returns ``None`` once the connection is closed (cleanly or not).
    """

    def __init__(self, ws: ClientConnection, endpoint: RealtimeEndpoint) -> None:
        self._ws = ws
        self.endpoint = endpoint
        self.close_reason = ""

    @classmethod
    async def open(
        cls,
        endpoint: RealtimeEndpoint,
        *,
        timeout_s: float = 10.0,
        ping_interval_s: float | None = 10.0,
        ping_timeout_s: float | None = 10.0,
    ) -> WebsocketLink:
        client = import_websockets()
        import websockets
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        proxy: dict[str, Any] = {}
        if hasattr(client, "get_proxy"):  # websockets >= 15 looks proxies up
            if proxy_in_environment():
                import urllib.request  # noqa: F401 (get_proxy reads it as urllib.request)
            else:
                proxy["proxy"] = None  # what the lookup would find (import_websockets)
        try:
            ws = await connect(
                endpoint.url,
                additional_headers=endpoint.headers,
                open_timeout=timeout_s,
                ping_interval=ping_interval_s,
                ping_timeout=ping_timeout_s,
                max_size=MAX_FRAME_BYTES,
                max_queue=MAX_QUEUED_FRAMES,
                compression=COMPRESSION,
                close_timeout=CLOSE_TIMEOUT_S,
                user_agent_header=f"kiosk websockets/{websockets.__version__}",
                **proxy,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise UpstreamRejected(
                    f"handshake refused with HTTP {status}: check the API key and deployment"
                ) from None
            raise UpstreamUnavailable(
                f"handshake failed with HTTP {status}",
                retry_after_s=_retry_after(exc.response.headers),
                status=status,
            ) from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            # The text may quote what the server sent (a header value): one bounded line.
            raise UpstreamUnavailable(
                printable(f"cannot connect: {type(exc).__name__}: {exc}", 200)
            ) from None
        return cls(ws, endpoint)

    async def send(self, text: str) -> bool:
        """Send one text frame; returns False if the connection is already gone."""
        from websockets.exceptions import ConnectionClosed  # imported by open(): cheap

        try:
            await self._ws.send(text)
            return True
        except ConnectionClosed as exc:
            self.close_reason = f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            return False

    async def recv(self) -> str | None:
        from websockets.exceptions import ConnectionClosed

        try:
            message = await self._ws.recv()
        except ConnectionClosed as exc:
            self.close_reason = f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            return None
        if isinstance(message, bytes):
            try:
                return message.decode("utf-8")
            except UnicodeDecodeError:
                return "\x00binary frame"  # the session rejects it as not JSON
        return message

    async def close(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await asyncio.wait_for(self._ws.close(), timeout=2.0)
        except (TimeoutError, ConnectionClosed, OSError):
            pass

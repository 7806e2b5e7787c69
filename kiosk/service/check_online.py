"""``kiosk check --online``: DNS, TLS and the websocket handshake to the configured endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from urllib.parse import urlsplit

from kiosk.config import Config
from kiosk.errors import ConfigError, KioskError, UpstreamRejected
from kiosk.service.check_result import CheckResult, fail, ok, one_line


def _host_port(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    return parts.hostname or "", parts.port or (443 if secure else 80), secure


async def _check_reachable(label: str, url: str, timeout_s: float) -> list[CheckResult]:
    host, port, secure = _host_port(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
        )
    except (OSError, TimeoutError) as exc:
        return [
            fail(
                f"{label} dns",
                f"{host}: {one_line(exc) or 'timed out'}",
                "check the network and DNS (resolvectl status)",
            )
        ]
    address = str(infos[0][4][0])
    results = [ok(f"{label} dns", f"{host} -> {address}")]
    if not secure:
        return results
    try:
        context = ssl.create_default_context()
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout_s
        )
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        return [
            *results,
            fail(
                f"{label} tls", f"{host}: {exc.verify_message}", "is the clock right? (timedatectl)"
            ),
        ]
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return [
            *results,
            fail(
                f"{label} tls",
                f"{host}:{port}: {one_line(exc) or 'timed out'}",
                "check firewall / proxy",
            ),
        ]
    return [*results, ok(f"{label} tls", f"{host}:{port} {version}, certificate valid")]


async def check_online(cfg: Config, timeout_s: float) -> list[CheckResult]:
    """DNS, TLS (for wss/https) and a websocket handshake to the Realtime endpoint; DNS and
    TLS to Azure AI Search when that is the backend. One result per step."""
    from kiosk.net.connection import WebsocketLink
    from kiosk.net.endpoints import realtime_endpoint

    try:
        endpoint = realtime_endpoint(cfg)
    except ConfigError as exc:
        return [fail("realtime", str(exc), "fix realtime.endpoint")]
    results = await _check_reachable("realtime", endpoint.url, timeout_s)
    if all(r.ok for r in results):
        try:
            link = await WebsocketLink.open(endpoint, timeout_s=timeout_s, ping_interval_s=None)
            await link.close()
        except UpstreamRejected as exc:
            hint = "check the API key, realtime.deployment and the key's permissions"
            results.append(fail("realtime websocket", one_line(exc), hint))
        except KioskError as exc:
            hint = "is the endpoint up? check realtime.endpoint and the network"
            results.append(fail("realtime websocket", one_line(exc), hint))
        else:
            results.append(ok("realtime websocket", f"handshake with {endpoint.redacted} ok"))
    if cfg.rag.backend == "azure":
        results += await _check_reachable("search", cfg.rag.azure_endpoint, timeout_s)
    return results

"""Endpoint URLs from the settings: which are accepted, and a refusal that never shows them.

Owns :func:`check_endpoint` (``realtime.endpoint``, ``rag.azure_endpoint``): a URL with the
provider's scheme and a plain host name or IP address, no ``user:password@`` part (the
websocket library would turn it into a second ``Authorization`` header, and the kiosk logs
its endpoint), a port that is a number, and encryption except on loopback. Errors are one
:class:`~kiosk.errors.ConfigError` line that does not echo the value: a URL may hold a
password, and a key pasted into the wrong setting must not be printed either.

Stdlib only (kiosk.config imports it).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from kiosk.errors import ConfigError

# An OpenAI key (sk-..., sk-proj-...) or an Azure one (32+ letters/digits) in place of a URL.
_KEY_LIKE = re.compile(r"^(?:sk-[A-Za-z0-9_-]{8,}|[A-Za-z0-9]{32,})$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return bool(host) and all(_HOST_LABEL.match(label) for label in labels)


def endpoint_problem(url: str, provider: str) -> str | None:
    """Why ``url`` cannot be the endpoint of ``provider`` ("voicerag": a full ws(s) URL;
    others: an http(s)/ws(s) base URL), without quoting it; None when it can."""
    voicerag = provider == "voicerag"
    allowed = ("ws", "wss") if voicerag else ("http", "https", "ws", "wss")
    want = "a URL like ws(s)://host/realtime" if voicerag else "a URL like https://host"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return f"contains whitespace or a control character; must be {want} (value not shown)"
    if "://" not in url:
        if _KEY_LIKE.match(url):
            return (
                "looks like an API key, not a URL (value not shown): keys go in the "
                "environment or a credential file (OPENAI_API_KEY...), never in settings"
            )
        return f"has no scheme; must be {want} (value not shown)"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError:
        return f"has a malformed host or port; must be {want} (value not shown)"
    if parts.scheme not in allowed:
        return f"must be {want} (scheme {'/'.join(allowed)}; value not shown)"
    if "@" in parts.netloc:
        return (
            "must not contain a user name or password (user:password@host; value not shown): "
            "the key goes in the environment or a credential file"
        )
    if port is None and parts.netloc.endswith(":"):
        return f"has an empty port; must be {want} (value not shown)"
    host = parts.hostname or ""
    if not host:
        return f"has no host; must be {want} (value not shown)"
    if not _valid_host(host):
        return f"has a malformed host name; must be {want} (value not shown)"
    if not voicerag and (parts.query or parts.fragment or url.endswith(("?", "#"))):
        return "must be a base URL without ?query or #fragment (kiosk adds its own; value not shown)"
    if parts.scheme in ("http", "ws") and not is_loopback_host(host):
        return (
            f"unencrypted {parts.scheme}:// is only allowed on loopback addresses; "
            f"use {parts.scheme}s:// for {host}"
        )
    return None


def check_endpoint(key: str, url: str, provider: str) -> None:
    """Raise ConfigError naming ``key`` when ``url`` is not an acceptable endpoint."""
    problem = endpoint_problem(url, provider)
    if problem is not None:
        raise ConfigError(key, problem)


def has_userinfo(url: str) -> bool:
    """``user:password@`` in ``url`` (or a netloc that does not parse)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return True

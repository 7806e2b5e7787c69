"""Where each provider's Realtime websocket lives and how it authenticates.

| provider      | URL                                                        | auth            | dialect |
|---------------|------------------------------------------------------------|-----------------|---------|
| openai        | wss://api.openai.com/v1/realtime?model=M                   | Bearer          | GA      |
| azure         | wss://R.openai.azure.com/openai/v1/realtime?model=DEPLOY   | api-key         | GA      |
| azure-preview | wss://R.../openai/realtime?api-version=V&deployment=DEPLOY | api-key         | beta    |
| voicerag      | the configured ws(s)://host/realtime, as is                | none (tier has) | beta    |
| local         | ws://127.0.0.1:PORT/v1/realtime of the running local engine | none            | GA      |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from kiosk.config import OPENAI_DEFAULT_ENDPOINT, Config, check_endpoint
from kiosk.core.realtime import Dialect
from kiosk.endpoint_urls import has_userinfo
from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

_SHUT_DOWN_MODELS = ("gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview")
_noted: set[str] = set()


def deprecation_note(cfg: Config) -> str:
    """One line when the configured protocol or model is on its way out ("" when current)."""
    rt = cfg.realtime
    if rt.provider == "azure-preview":
        return (
            "realtime.provider 'azure-preview': Azure's preview Realtime protocol is deprecated "
            "since 2026-04-30; use 'azure' (GA) unless a VoiceRAG-style middle tier needs it"
        )
    if rt.provider == "openai" and rt.model.startswith(_SHUT_DOWN_MODELS):
        return f"realtime.model {rt.model!r} is shut down by OpenAI; use 'gpt-realtime' or newer"
    return ""


def _note_once(cfg: Config) -> None:
    note = deprecation_note(cfg)
    if note and note not in _noted:
        _noted.add(note)
        log.warning("%s", note)


@dataclass(frozen=True, slots=True)
class RealtimeEndpoint:
    url: str
    headers: dict[str, str]  # contains the secret: never log this
    dialect: Dialect
    middle_tier: bool

    def __post_init__(self) -> None:
        # websockets turns user:password@ into an Authorization header of its own: with ours
        # the handshake would carry two, and the URL (logged) the password.
        if has_userinfo(self.url):
            raise ConfigError(
                "realtime.endpoint", "must not contain a user name or password (value not shown)"
            )
        credentials = [h for h in self.headers if h.lower() in ("authorization", "api-key")]
        if len(credentials) > 1:
            raise ValueError(f"one credential header per handshake, got {len(credentials)}")

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"RealtimeEndpoint(url={self.url!r}, dialect={self.dialect!r}, middle_tier={self.middle_tier})"

    @property
    def redacted(self) -> str:
        return self.url


def _ws_base(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return scheme, parts.netloc, parts.path.rstrip("/")


def realtime_endpoint(cfg: Config) -> RealtimeEndpoint:
    rt = cfg.realtime
    key = cfg.api_key.reveal()
    _note_once(cfg)
    if rt.provider == "voicerag":
        check_endpoint("realtime.endpoint", rt.endpoint, "voicerag")
        return RealtimeEndpoint(rt.endpoint, {}, "beta", True)
    if rt.provider == "local":
        # kiosk.local.serve_local_engine starts the engine and fills in its loopback URL.
        if not rt.endpoint:
            raise ConfigError("realtime.endpoint", "the local engine is not running")
        scheme, netloc, prefix = _ws_base(rt.endpoint)
        url = urlunsplit((scheme, netloc, prefix + "/v1/realtime", "model=kiosk-local", ""))
        return RealtimeEndpoint(url, {}, "ga", False)
    base = rt.endpoint or OPENAI_DEFAULT_ENDPOINT
    check_endpoint("realtime.endpoint", base, rt.provider)
    scheme, netloc, prefix = _ws_base(base)
    if rt.provider == "openai":
        path, query = prefix + "/v1/realtime", {"model": rt.model}
        headers = {"Authorization": f"Bearer {key}"}
        dialect: Dialect = "ga"
    elif rt.provider == "azure":
        path, query = prefix + "/openai/v1/realtime", {"model": rt.deployment}
        headers = {"api-key": key}
        dialect = "ga"
    else:  # azure-preview
        path = prefix + "/openai/realtime"
        query = {"api-version": rt.api_version, "deployment": rt.deployment}
        headers = {"api-key": key}
        dialect = "beta"
    return RealtimeEndpoint(
        urlunsplit((scheme, netloc, path, urlencode(query), "")), headers, dialect, False
    )

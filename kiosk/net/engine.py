"""The engine seam: who answers the kiosk's questions, as far as the pipeline cares.

An engine is a Realtime-protocol endpoint plus the function that opens a text link to it.
The turn pipeline (``kiosk.app``) and its :class:`~kiosk.net.link.UpstreamLink` speak the
Realtime protocol to whichever engine they are given and never ask which one it is.

- ``cloud`` (today): OpenAI / Azure OpenAI / a VoiceRAG middle tier over the internet.
- ``local`` (being built): a loopback Realtime-protocol server with on-device speech
  recognition and synthesis; it plugs in as another endpoint (``ws://127.0.0.1:PORT``),
  reached with the same :meth:`WebsocketLink.open <kiosk.net.connection.WebsocketLink.open>`
  or its own ``connect``.

This module owns only the shape of the seam; choosing an engine per turn is not done here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiosk.config import Config
from kiosk.core.realtime import SessionOptions
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import RealtimeEndpoint

# The session instructions a fallback engine gets: the one instruction the local engine
# acts on (it says it is in offline mode before answering).
OFFLINE_MODE_INSTRUCTIONS = (
    "Offline mode: the cloud service cannot answer this turn. Say that you are in offline mode, "
    "then answer from the knowledge base."
)


class TextLink(Protocol):
    """One open connection carrying Realtime JSON text frames (``WebsocketLink`` is one)."""

    close_reason: str

    async def send(self, text: str) -> bool:
        """Send one frame; False once the connection is gone."""
        ...

    async def recv(self) -> str | None:
        """The next frame; None once the connection is closed."""
        ...

    async def close(self) -> None: ...


class Connect(Protocol):
    """Opens a :class:`TextLink` to ``endpoint`` or raises ``UpstreamRejected`` (auth) /
    ``UpstreamUnavailable`` (retryable, with an optional ``retry_after_s`` and ``status``)."""

    def __call__(
        self,
        endpoint: RealtimeEndpoint,
        *,
        timeout_s: float,
        ping_interval_s: float | None,
        ping_timeout_s: float | None,
    ) -> Awaitable[TextLink]: ...


@dataclass(frozen=True, slots=True)
class Engine:
    """An answer engine: a name for logs, where its Realtime endpoint is, how to reach it."""

    name: str
    endpoint: RealtimeEndpoint
    connect: Connect = field(default=WebsocketLink.open)


def cloud_engine(endpoint: RealtimeEndpoint, connect: Connect | None = None) -> Engine:
    """The provider's Realtime API at ``endpoint`` (``realtime_endpoint(cfg)``); by websocket
    unless ``connect`` says otherwise (tests count or fault connections through it)."""
    return Engine("cloud", endpoint) if connect is None else Engine("cloud", endpoint, connect)


class ToolSchemas(Protocol):
    def schemas(self) -> list[dict[str, Any]]: ...

    def vocabulary(self) -> str: ...


def session_options(cfg: Config, tools: ToolSchemas | None) -> SessionOptions:
    """The session settings sent on every new connection (tools: their schemas, unless a
    VoiceRAG middle tier declares its own)."""
    rt = cfg.realtime
    return SessionOptions(
        instructions=rt.instructions,
        voice=rt.voice,
        model=rt.model,
        language=rt.language,
        temperature=rt.temperature,
        max_output_tokens=rt.max_output_tokens,
        turn_detection=rt.turn_detection,
        transcription_model=rt.transcription_model,
        tools=tuple(tools.schemas()) if tools is not None and rt.provider != "voicerag" else (),
        transcription_prompt=_vocabulary(tools),
    )


def _vocabulary(tools: ToolSchemas | None) -> str:
    vocabulary = getattr(tools, "vocabulary", None)
    return vocabulary() if callable(vocabulary) else ""

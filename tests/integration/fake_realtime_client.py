"""A plain `websockets` client for the fake Realtime server on 127.0.0.1 (Client, client()),
the client events it sends and the checks on what the server sent: shared by the
test_fake_realtime_session / _modes / _faults modules."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from kiosk.testing.fake_realtime import (
    FakeRealtimeServer,
    FakeScript,
    speech_like_pcm16,
)
from kiosk.testing.validation import Dialect, validate_server_event

TIMEOUT_S = 5.0 * float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))

TOOLS = [
    {"type": "function", "name": "search", "parameters": {"type": "object"}},
    {"type": "function", "name": "report_grounding", "parameters": {"type": "object"}},
]
SEARCH_OUTPUT = "[doc_a_0]: The lobby opens at 8.\n-----\n[doc_b_3]: Sunny, 20 degrees.\n-----\n"
AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}


def session_update(
    dialect: Dialect, *, tools: list[dict[str, Any]] | None = None, server_vad: bool = False
) -> dict[str, Any]:
    detection = {"type": "server_vad", "silence_duration_ms": 300} if server_vad else None
    if dialect == "ga":
        session: dict[str, Any] = {
            "type": "realtime",
            "audio": {
                "input": {"turn_detection": detection, "transcription": {"model": "whisper-1"}}
            },
        }
    else:
        session = {"turn_detection": detection, "input_audio_transcription": {"model": "whisper-1"}}
    if tools is not None:
        session["tools"] = tools
    return {"type": "session.update", "session": session}


def append(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


class Client:
    """A websocket client with bounded waits, recording every event it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT_S))
        assert isinstance(event, dict)
        self.events.append(event)
        return event

    async def until(self, event_type: str) -> list[dict[str, Any]]:
        """Events up to and including the next one of ``event_type``."""
        got: list[dict[str, Any]] = []
        while True:
            event = await self.recv()
            got.append(event)
            if event["type"] == event_type:
                return got

    async def drain(self, quiet_s: float) -> list[dict[str, Any]]:
        """Events until none arrives for ``quiet_s``."""
        got: list[dict[str, Any]] = []
        while True:
            try:
                frame = await asyncio.wait_for(self.ws.recv(), quiet_s)
            except TimeoutError:
                return got
            got.append(json.loads(frame))
            self.events.append(got[-1])

    async def configure(self, dialect: Dialect, **kwargs: Any) -> None:
        await self.until("session.created")
        await self.send(session_update(dialect, **kwargs))
        await self.until("session.updated")

    async def speak_and_ask(self, seconds: float = 1.0) -> None:
        await self.send(append(speech_like_pcm16(seconds)))
        await self.send({"type": "input_audio_buffer.commit"})
        await self.send({"type": "response.create"})


@asynccontextmanager
async def client(
    server: FakeRealtimeServer, path: str = "/v1/realtime?model=gpt-realtime", **kwargs: Any
) -> AsyncIterator[Client]:
    async with connect(server.url + path, open_timeout=TIMEOUT_S, **kwargs) as ws:
        yield Client(ws)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def assert_all_sent_events_valid(server: FakeRealtimeServer) -> None:
    for record in server.connections:
        for event in record.sent_events():
            if event["type"] in ("extension.middle_tier_tool_response", "fake.unknown_event"):
                continue
            assert validate_server_event(event, server.dialect) == [], event["type"]


def no_pacing(**kwargs: Any) -> FakeScript:
    return FakeScript(realtime_pacing=False, **kwargs)

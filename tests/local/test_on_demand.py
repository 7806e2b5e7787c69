"""The fallback engine's port is reserved at start; its server starts at the first connection."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from kiosk.local.on_demand import OnDemandLocalServer
from kiosk.local.tts import SynthesizerUnavailable


async def test_first_connection_starts_the_engine_and_is_answered() -> None:
    async with OnDemandLocalServer() as reserved:
        assert not reserved.started  # nothing loaded while nobody needs the fallback
        async with connect(reserved.url) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "session.created"
        assert reserved.started
        async with connect(reserved.url) as ws:  # later connections: the same server
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"


async def test_stopping_before_any_connection_frees_the_port() -> None:
    async with OnDemandLocalServer() as reserved:
        url = reserved.url
    with pytest.raises(OSError):
        async with connect(url, open_timeout=2):
            pass


async def test_without_espeak_it_fails_at_start_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SynthesizerUnavailable, match="espeak-ng is not installed"):
        async with OnDemandLocalServer():
            pass

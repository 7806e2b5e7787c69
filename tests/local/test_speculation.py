"""The engine recognises during the kiosk's VAD hangover and reuses that at the commit."""

from __future__ import annotations

import asyncio
import base64
import json

from websockets.asyncio.client import connect

from kiosk.local.asr import Recognition
from kiosk.local.server import LocalRealtimeServer


class CountingEngine:
    """Stands in for LocalEngine: records what it was asked to recognise."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

        class _Recognizer:
            loaded = True

        self.recognizer = _Recognizer()

    def recognise(self, pcm24k: bytes, language: str = "", vocabulary: str = "") -> Recognition:
        self.calls.append((len(pcm24k), vocabulary))
        return Recognition(f"{len(pcm24k)} bytes", "en", 0.0, 0.0)


async def transcript_after(pause_s: float, engine: CountingEngine) -> str:
    chunk = base64.b64encode(bytes(4800)).decode()  # 100 ms at 24 kHz
    async with LocalRealtimeServer(engine) as server, connect(server.url) as ws:
        await ws.recv()  # session.created
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime",
            "audio": {"input": {"transcription": {"model": "whisper-1", "prompt": "Parking, Wi-Fi"}}}}}))
        for _ in range(5):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await asyncio.sleep(pause_s)
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                return event["transcript"]


async def test_a_commit_after_the_pause_reuses_the_recognition_made_during_it():
    engine = CountingEngine()
    assert await transcript_after(0.6, engine) == "24000 bytes"
    assert engine.calls == [(24000, "Parking, Wi-Fi")]  # once, with the headings as prompt


async def test_a_commit_without_a_pause_recognises_once_at_the_commit():
    engine = CountingEngine()
    assert await transcript_after(0.0, engine) == "24000 bytes"
    assert engine.calls == [(24000, "Parking, Wi-Fi")]

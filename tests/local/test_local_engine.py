"""The local engine for real: Whisper base hears bundled question WAVs, the kiosk's pipeline
searches the demo knowledge base, eSpeak NG / Open JTalk speak the answer.

Every event the engine's loopback server sends is checked against the openai SDK's GA types
(the same checker the fake server applies to the kiosk's events).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from kiosk.audio.wav import read_wav_mono
from kiosk.config import load_config
from kiosk.local.engine import LocalEngine
from kiosk.local.server import LocalRealtimeServer
from kiosk.simulate import run_simulation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEARCH_RESULT = "[park_en]: The visitor car park is behind the building and has 40 spaces."


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine()


def server_event_problems(event: dict) -> list[str]:
    validation = pytest.importorskip("kiosk.testing.validation")
    pytest.importorskip("openai")
    return validation.validate_server_event(event, "ga")


class Client:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.events: list[dict] = []

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps(event))

    async def until(self, kind: str) -> dict:
        async with asyncio.timeout(60):
            while True:
                event = json.loads(await self.ws.recv())
                self.events.append(event)
                if event["type"] == kind:
                    return event


def tools() -> list[dict]:
    from kiosk.rag import ToolRunner

    return ToolRunner.schemas()


async def test_a_spoken_question_becomes_search_grounding_and_a_spoken_zero_cost_answer(engine):
    pcm = read_wav_mono(EXAMPLES / "question_parking_en_16k.wav", 24000).astype("<i2").tobytes()
    async with LocalRealtimeServer(engine) as server, connect(server.url + "/v1/realtime") as ws:
        c = Client(ws)
        await c.until("session.created")
        await c.send({"type": "session.update", "session": {"type": "realtime", "tools": tools()}})
        for i in range(0, len(pcm), 4800):
            await c.send({"type": "input_audio_buffer.append",
                          "audio": base64.b64encode(pcm[i : i + 4800]).decode()})
        await c.send({"type": "input_audio_buffer.commit"})
        await c.send({"type": "response.create"})
        heard = await c.until("conversation.item.input_audio_transcription.completed")
        call = await c.until("response.function_call_arguments.done")
        assert call["name"] == "search"
        assert json.loads(call["arguments"]) == {"query": heard["transcript"]}
        assert "parking" in heard["transcript"].lower()
        await c.until("response.done")
        await c.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call["call_id"], "output": SEARCH_RESULT}})
        await c.send({"type": "response.create"})
        grounding = await c.until("response.function_call_arguments.done")
        assert grounding["name"] == "report_grounding"
        assert json.loads(grounding["arguments"]) == {"sources": ["park_en"]}
        await c.until("response.done")
        await c.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": grounding["call_id"], "output": "ok"}})
        await c.send({"type": "response.create"})
        done = await c.until("response.done")

    audio = b"".join(base64.b64decode(e["delta"]) for e in c.events
                     if e["type"] == "response.output_audio.delta")
    assert len(audio) / 48000 > 2.0  # seconds of real speech, 24 kHz PCM16
    spoken = next(e for e in c.events if e["type"] == "response.output_audio_transcript.done")
    assert "40 spaces" in spoken["transcript"]
    assert done["response"]["status"] == "completed"
    assert done["response"]["usage"]["total_tokens"] == 0
    problems = [p for e in c.events for p in server_event_problems(e)]
    assert problems == []


async def test_a_japanese_text_question_is_answered_in_japanese_and_cancel_stops_it(engine):
    result = "[hours_ja]: 月曜日から金曜日は8時から19時まで、土曜日は9時から13時まで開館しています。"
    async with LocalRealtimeServer(engine) as server, connect(server.url) as ws:
        c = Client(ws)
        await c.until("session.created")
        await c.send({"type": "session.update", "session": {"type": "realtime", "tools": tools()}})
        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "土曜日は何時まで開いていますか"}]}})
        await c.send({"type": "response.create"})
        call = await c.until("response.function_call_arguments.done")
        await c.until("response.done")
        await c.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call["call_id"], "output": result}})
        await c.send({"type": "response.create"})
        grounding = await c.until("response.function_call_arguments.done")
        await c.until("response.done")
        await c.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": grounding["call_id"], "output": "ok"}})
        await c.send({"type": "response.create"})
        await c.until("response.output_audio.delta")
        await c.send({"type": "response.cancel"})  # barge-in
        done = await c.until("response.done")
    assert json.loads(call["arguments"]) == {"query": "土曜日は何時まで開いていますか"}
    assert done["response"]["status"] == "cancelled"
    assert [p for e in c.events for p in server_event_problems(e)] == []


async def test_simulate_answers_the_bundled_japanese_question_from_the_demo_knowledge_base(tmp_path):
    cfg = load_config('[gpio]\nenabled = false\n[realtime]\nprovider = "local"\n'
                      '[rag]\nindex_path = "/nonexistent/index.sqlite"\n', {})
    report = await asyncio.wait_for(run_simulation(
        cfg, [EXAMPLES / "question_saturday_ja_16k.wav"], tmp_path / "a.wav", fast=True), 120)
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered"
    assert "土曜日" in turn["transcript"]
    assert "13時" in turn["answer_transcript"]
    assert turn["citations"][0]["source"].endswith("lobby-faq-ja.md")
    assert report["tokens"] == {k: 0 for k in report["tokens"]}
    assert report["notes"] == []  # provider "local" was asked for: nothing to explain


def test_the_engine_loads_nothing_heavy_until_someone_speaks():
    code = (
        "import asyncio, sys\n"
        "from kiosk.local.engine import LocalEngine\n"
        "from kiosk.local.server import LocalRealtimeServer\n"
        "async def main():\n"
        "    async with LocalRealtimeServer(LocalEngine()):\n"
        "        await asyncio.sleep(0.1)\n"
        "asyncio.run(main())\n"
        "print('ctranslate2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

"""realtime.fallback = "local": a turn the cloud cannot answer is answered on the device."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kiosk.config import load_config
from kiosk.simulate import run_simulation
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUESTION = EXAMPLES / "question_parking_en_16k.wav"


def config(fallback: str):
    toml = (f'[gpio]\nenabled = false\n[realtime]\nfallback = "{fallback}"\n'
            '[rag]\nindex_path = "/nonexistent/index.sqlite"\n')
    return load_config(toml, {"OPENAI_API_KEY": "sk-test-123"})


async def simulate(server, fallback: str, tmp_path):
    return await asyncio.wait_for(run_simulation(
        config(fallback), [QUESTION], tmp_path / "a.wav", fast=True, fake_server=server,
        local_fallback=True), 120)


async def test_a_refused_key_turn_is_answered_locally_in_offline_mode(tmp_path):
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        server.fail_handshakes(401, times=5)
        report = await simulate(server, "local", tmp_path)
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered"
    assert turn["engine"] == "local"  # the journal line says "answered on this device"
    assert turn["answer_transcript"].startswith("Offline mode.")
    assert "40 spaces" in turn["answer_transcript"]  # from the demo knowledge base
    assert turn["citations"]
    assert report["tokens"] == {k: 0 for k in report["tokens"]}
    assert server.connections == []  # the refused cloud never got the audio


async def test_a_turn_the_cloud_answers_does_not_touch_the_fallback(tmp_path):
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        report = await simulate(server, "local", tmp_path)
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered" and turn["engine"] == "cloud"
    assert not turn["answer_transcript"].startswith("Offline mode.")


async def test_fallback_clip_keeps_the_unanswered_turn(tmp_path):
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        server.fail_handshakes(401, times=5)
        report = await simulate(server, "clip", tmp_path)
    (turn,) = report["turns"]
    assert turn["outcome"] != "answered" and turn["engine"] == "cloud"


async def test_a_spent_cost_cap_is_answered_locally_without_touching_the_cloud(tmp_path):
    from kiosk.cost import BudgetStatus

    spent = BudgetStatus(False, "daily cost cap reached (100000 tokens)")
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        report = await asyncio.wait_for(run_simulation(
            config("local"), [QUESTION], tmp_path / "a.wav", fast=True, fake_server=server,
            local_fallback=True, budget_left=lambda: spent), 120)
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered" and turn["engine"] == "local"
    assert turn["answer_transcript"].startswith("Offline mode.")
    assert server.connections == []

"""Issue 15: each response re-bills the whole conversation, so the kiosk keeps only the last
``turns.context_turns`` visitor turns upstream (conversation.item.delete) and starts a fresh
conversation for a new visitor. Real websockets against the fake server, whose usage counts
the conversation it holds and shrinks when items are deleted."""

from __future__ import annotations

import asyncio

import numpy as np

from kiosk.simulate import run_simulation
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .conftest import TIMEOUT_FACTOR, kiosk_config, speech_16k

WEATHER = "whats_the_weather_pcm16_24khz_mono.wav"
TURNS = 10


def question(gap_s: float) -> np.ndarray:
    silence = np.zeros(int(gap_s * 16000), dtype=np.int16)
    return np.concatenate([silence, speech_16k(WEATHER), silence[:8000]]).astype(np.int16)


async def conversation(tmp_path, wav_file, toml: str, gap_s: float = 0.5) -> list[int]:
    """Input tokens billed per turn over a TURNS-turn conversation with one visitor."""
    cfg = kiosk_config("[earcons]\nenabled = false\n" + toml, KIOSK_RAG_BACKEND="none")
    mics = [wav_file(question(gap_s), name=f"q{i}.wav") for i in range(TURNS)]
    script = FakeScript(answer_audio_s=1.0, call_search=False, call_grounding=False)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await asyncio.wait_for(
            run_simulation(cfg, mics, tmp_path / "a.wav", fast=True, fake_server=server),
            timeout=240 * TIMEOUT_FACTOR,
        )
        assert server.validation_errors == []
    answered = [t for t in report["turns"] if t["outcome"] == "answered"]
    assert len(answered) == TURNS, [t["outcome"] for t in report["turns"]]
    return [t["tokens"]["input_text"] + t["tokens"]["input_audio"] for t in answered]


async def test_input_tokens_per_turn_stay_flat_over_ten_turns(tmp_path, wav_file) -> None:
    bounded = await conversation(tmp_path, wav_file, "")
    unbounded = await conversation(tmp_path, wav_file, "[turns]\ncontext_turns = 50\n")
    print(f"input tokens per turn, context_turns=3: {bounded}")
    print(f"input tokens per turn, unbounded:       {unbounded}")
    assert unbounded[-1] > 2.5 * unbounded[0]  # the fake really bills the growing context
    assert max(bounded[3:]) <= 1.1 * min(bounded[3:])  # flat once 3 turns are held
    assert bounded[-1] <= unbounded[3] + 5  # turn 10 costs what turn 4 did (measured 250 vs 472)


async def test_a_new_visitor_starts_a_fresh_conversation(tmp_path, wav_file) -> None:
    # Every question comes 2 s after the last answer: with new_visitor_after_s = 1 each is a
    # new visitor, so every turn bills only itself.
    fresh = await conversation(
        tmp_path, wav_file, "[turns]\nnew_visitor_after_s = 1.0\n", gap_s=2.0
    )
    assert max(fresh) <= 1.1 * min(fresh), fresh

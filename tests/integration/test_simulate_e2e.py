"""End to end: WAV mic -> endpointer -> turn machine -> real websockets -> fake Realtime server
(which validates every client event against the openai SDK types) -> answer WAV."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kiosk.audio.wav import read_wav_mono
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.simulate import demo_corpus_dir, run_simulation
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .conftest import FIXTURES, TIMEOUT_FACTOR, kiosk_config, padded, speech_16k

WEATHER = "whats_the_weather_pcm16_24khz_mono.wav"
PREROLL_S = 0.3


def states_of(report: dict) -> list[str]:
    return [state for _, state in report["states"]]


async def simulate(cfg, inputs, output, server, *, fast=True):
    return await asyncio.wait_for(
        run_simulation(cfg, inputs, output, fast=fast, fake_server=server), timeout=60 * TIMEOUT_FACTOR
    )


async def test_padded_question_streams_only_speech_and_gets_a_spoken_answer(tmp_path, wav_file):
    speech = speech_16k(WEATHER)
    speech_s = len(speech) / 16000
    mic = wav_file(padded(speech))
    out = tmp_path / "answer.wav"
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        report = await simulate(kiosk_config(), [mic], out, server)

    assert server.validation_errors == []
    assert states_of(report) == ["idle", "listening", "thinking", "speaking", "idle"]
    assert report["connections_opened"] == 1
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered"
    # Silence and noise were not streamed: only the utterance (plus pre-roll) went upstream.
    assert turn["upstream_audio_s"] <= 1.15 * speech_s + PREROLL_S
    assert turn["upstream_audio_s"] >= 0.5 * speech_s
    # What the server received agrees with the report (24 kHz PCM16).
    appended = server.connections[0].received_types().count("input_audio_buffer.append")
    assert appended > 0
    assert turn["transcript"] and turn["answer_transcript"]
    assert turn["response_latency_ms"] is not None and turn["response_latency_ms"] >= 0
    answer = read_wav_mono(out, 24000)
    assert len(answer) / 24000 == pytest.approx(2.0, abs=0.1)  # the fake answer is 2.0 s
    assert np.sqrt(np.mean(answer.astype(np.float64) ** 2)) > 1000  # audible, not silence


async def test_search_tool_round_reports_citations_from_the_local_index(tmp_path, wav_file):
    index_path = tmp_path / "index.sqlite"
    index = SqliteIndex(index_path)
    ingest_paths(index, [demo_corpus_dir()])
    index.close()
    script = FakeScript(realtime_pacing=False, search_query="where are the restrooms")
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(
            kiosk_config(index_path=index_path), [wav_file(speech_16k("en_restroom_espeak_16k.wav"))],
            tmp_path / "a.wav", server,
        )
    assert server.validation_errors == []
    conn = server.connections[0]
    outputs = [e["item"]["output"] for e in conn.received if e.get("type") == "conversation.item.create"]
    search_output = outputs[0]
    assert search_output.startswith("[") and "restroom" in search_output.lower()
    (turn,) = report["turns"]
    assert turn["citations"], "report_grounding's sources should be cited"
    assert all(c["source"].endswith(".md") for c in turn["citations"])
    assert any("Restroom" in c["title"] for c in turn["citations"])
    # After the tool round the kiosk asked for the spoken answer.
    assert conn.received_types().count("response.create") == 3  # question, after search, after grounding


async def test_voicerag_middle_tier_turn_ends_after_the_audio_response_with_citations(tmp_path, wav_file):
    cfg = kiosk_config('[realtime]\nprovider = "voicerag"\nendpoint = "ws://127.0.0.1:1/realtime"\n')
    async with FakeRealtimeServer("beta", mode="voicerag", script=FakeScript(realtime_pacing=False)) as server:
        report = await simulate(cfg, [wav_file(speech_16k(WEATHER))], tmp_path / "a.wav", server)
    assert server.validation_errors == []
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered"
    assert [c["chunk_id"] for c in turn["citations"]] == ["weather_md_0"]
    assert states_of(report) == ["idle", "listening", "thinking", "speaking", "idle"]


async def test_second_utterance_during_the_answer_barges_in_with_cancel_and_truncate(tmp_path, wav_file):
    question = speech_16k(WEATHER)
    interruption = speech_16k("ja_stop_16k.wav")
    gap = np.zeros(int(1.5 * 16000), dtype=np.int16)  # hangover (0.7 s) + answer start, then talk
    mic = wav_file(np.concatenate([question, gap, interruption]))
    script = FakeScript(answer_audio_s=6.0, realtime_pacing=True)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(kiosk_config(), [mic], tmp_path / "a.wav", server)
    assert server.validation_errors == []
    types = server.connections[0].received_types()
    assert "response.cancel" in types
    (trunc,) = server.truncations
    # Played some but not all of the answer, and never more than the server had sent.
    assert 0 < trunc.audio_end_ms <= trunc.audio_ms_sent
    assert trunc.audio_end_ms < 6000
    outcomes = [t["outcome"] for t in report["turns"]]
    assert outcomes[0] == "interrupted"
    assert report["turns"][1]["trigger"] == "barge_in"
    assert "speaking" in states_of(report)
    # Playback stopped at once: the speaker got what was played before the truncate point of
    # the first answer, then the whole second answer.
    assert report["answer_audio_s"] == pytest.approx(trunc.audio_end_ms / 1000 + 6.0, abs=0.15)


def test_cli_simulate_without_key_answers_from_the_knowledge_base_on_the_device(tmp_path):
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and not k.startswith("KIOSK_")}
    out = tmp_path / "a.wav"
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[gpio]\nenabled = false\n")
    question = FIXTURES.parent.parent / "examples" / "question_parking_en_16k.wav"
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "simulate", "--config", str(cfg), "--fast", "--json",
         "--input", str(question), "--output", str(out)],
        capture_output=True, text=True, env=env, timeout=120 * TIMEOUT_FACTOR,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [n for n in report["notes"] if "local engine" in n] == report["notes"][:1]
    assert report["engine"] == "local"
    (turn,) = report["turns"]
    assert turn["outcome"] == "answered"
    assert "parking" in turn["transcript"].lower()  # what the recogniser heard
    assert "40 spaces" in turn["answer_transcript"]  # the demo knowledge base's fact
    assert [c["chunk_id"] for c in turn["citations"]]  # cited to the passage it read
    assert "Parking" in turn["citations"][0]["title"]
    assert report["tokens"] == {k: 0 for k in report["tokens"]}
    assert report["answer_audio_s"] > 2


def test_cli_simulate_with_a_missing_input_file_says_so_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "simulate", "--config", "/dev/null",
         "--input", str(tmp_path / "nope.wav"), "--output", str(tmp_path / "a.wav")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "nope.wav" in proc.stderr


def test_cli_simulate_exits_1_when_no_turn_was_answered(tmp_path):
    """An unreachable endpoint (nothing listens on the port) fails the turn: exit 1, not 0
    (with realtime.fallback = "clip": the default "local" would answer it on the device)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the kiosk connects
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and not k.startswith("KIOSK_")}
    env["OPENAI_API_KEY"] = "sk-test-unreachable"
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        '[gpio]\nenabled = false\n[connection]\nmax_quick_failures = 1\n[realtime]\nfallback = "clip"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "simulate", "--config", str(cfg), "--fast", "--json",
         "--endpoint", f"http://127.0.0.1:{port}",
         "--input", str(FIXTURES / WEATHER), "--output", str(tmp_path / "a.wav")],
        capture_output=True, text=True, env=env, timeout=120 * TIMEOUT_FACTOR,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    assert report["turns"] and all(t["outcome"] != "answered" for t in report["turns"])


def test_cli_simulate_endpoint_without_its_key_names_the_missing_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and not k.startswith("KIOSK_")}
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[gpio]\nenabled = false\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "simulate", "--config", str(cfg), "--fast",
         "--endpoint", "https://example.openai.azure.com",
         "--input", str(FIXTURES / WEATHER), "--output", str(tmp_path / "a.wav")],
        capture_output=True, text=True, env=env, timeout=60 * TIMEOUT_FACTOR,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "OPENAI_API_KEY: not set" in proc.stderr
    assert "fake" not in proc.stderr  # no silent swap to the bundled server


def test_cli_simulate_index_flag_answers_from_that_index(tmp_path):
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and not k.startswith("KIOSK_")}
    docs = tmp_path / "docs"
    docs.mkdir()
    # With no key the local engine answers: the document must really answer the question.
    (docs / "weather-desk.md").write_text(
        "# Weather desk\n\nWhat the weather is like today in San Francisco, California: the "
        "forecast is posted at the weather desk by the door.\n"
    )
    index = tmp_path / "mine.sqlite"
    subprocess.run([sys.executable, "-m", "kiosk.cli", "index", "add", "--index", str(index),
                    str(docs)], check=True, capture_output=True, env=env, timeout=120)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[gpio]\nenabled = false\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "simulate", "--config", str(cfg), "--fast", "--json",
         "--index", str(index),
         "--input", str(FIXTURES / WEATHER), "--output", str(tmp_path / "a.wav")],
        capture_output=True, text=True, env=env, timeout=90 * TIMEOUT_FACTOR,
    )
    report = json.loads(proc.stdout)
    sources = {c["source"] for t in report["turns"] for c in t["citations"]}
    assert sources == {str((docs / "weather-desk.md").resolve())}, (sources, proc.stderr)


async def test_a_pause_inside_the_question_continues_it_and_one_answer_is_heard(tmp_path, wav_file):
    # Two sentences with a 300 ms pause: the quick end of turn commits after the first, the
    # visitor goes on before any answer is audible (the model thinks 0.6 s), and the kiosk
    # listens to the rest: the first turn is "continued", the second answered, and the
    # speaker plays exactly one answer.
    first = speech_16k("en_restroom_espeak_16k.wav")
    rest = speech_16k(WEATHER)
    pause = np.zeros(int(0.3 * 16000), dtype=np.int16)
    mic = wav_file(padded(np.concatenate([first, pause, rest])))
    out = tmp_path / "answer.wav"
    script = FakeScript(realtime_pacing=True, response_delay_s=0.6)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(kiosk_config(), [mic], out, server)
    assert server.validation_errors == []
    outcomes = [(t["trigger"], t["outcome"]) for t in report["turns"]]
    assert outcomes == [("vad", "continued"), ("continuation", "answered")], outcomes
    # The first part's answer was asked for and is cancelled as it begins, not generated in
    # full and dropped. (This fake refuses the second part's response.create while that one
    # is still on its way: the kiosk asks again once it is done, and the turn is answered.)
    assert "response.cancel" in server.connections[0].received_types()
    assert report["answer_audio_s"] == pytest.approx(2.0, abs=0.15)  # one answer, heard once


async def test_barge_in_after_a_reconnect_truncates_within_what_the_new_answer_sent(tmp_path, wav_file):
    # The fake server, like a local engine, numbers item and response ids per connection:
    # the second connection's answer reuses the first one's ids. Its truncate point must
    # count only its own playback (the soak once truncated at 20000 ms after 400 ms sent:
    # the server refused it and the next turn failed).
    question = speech_16k(WEATHER)
    interruption = speech_16k("ja_stop_16k.wav")
    idle = np.zeros(int(9.0 * 16000), dtype=np.int16)  # 6 s answer, then idle_close_s
    gap = np.zeros(int(1.5 * 16000), dtype=np.int16)
    mic = wav_file(np.concatenate([question, idle, question, gap, interruption]))
    cfg = kiosk_config("[turns]\nidle_close_s = 1.0\n")
    script = FakeScript(answer_audio_s=6.0, realtime_pacing=True)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(cfg, [mic], tmp_path / "a.wav", server)
    assert server.validation_errors == []
    assert report["connections_opened"] == 2
    first, second = (c.answer_audio_ms for c in server.connections[:2])
    assert set(first) & set(second), "the fake server should reuse item ids after a reconnect"
    (trunc,) = server.truncations
    assert 0 < trunc.audio_end_ms <= trunc.audio_ms_sent
    outcomes = [t["outcome"] for t in report["turns"]]
    assert outcomes == ["answered", "interrupted", "answered"]

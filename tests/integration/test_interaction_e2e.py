"""The kiosk must not hear itself, mute must silence upstream, and wake modes must hold —
through the whole pipeline, with real websockets and the validating fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from kiosk.app import KioskPipeline
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.vad import webrtc_voice_detector
from kiosk.core.bus import EventStream
from kiosk.core.events import EarconRequested, State
from kiosk.core.turns import MuteToggled
from kiosk.net.endpoints import realtime_endpoint
from kiosk.simulate import _point_at, run_simulation
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .conftest import TIMEOUT_FACTOR, kiosk_config, padded, speech_16k

WEATHER = "whats_the_weather_pcm16_24khz_mono.wav"
WAKE_FIXTURE = Path(__file__).resolve().parent.parent / "hardware" / "fixtures" / "okay_nabu_espeak_16k.wav"


async def simulate(cfg, mic, out, server, **kwargs):
    return await asyncio.wait_for(
        run_simulation(cfg, [mic], out, fast=True, fake_server=server, **kwargs), timeout=90 * TIMEOUT_FACTOR
    )


@pytest.mark.parametrize("echo_db", [-6.0, -12.0, -20.0])
async def test_the_answers_own_echo_never_opens_a_turn(tmp_path, wav_file, echo_db):
    # Earcons (listening_end) and a long answer both reach the mic through the "room".
    script = FakeScript(answer_audio_s=4.0, realtime_pacing=False)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(
            kiosk_config(), wav_file(padded(speech_16k(WEATHER), noise_s=1.0)), tmp_path / "a.wav", server,
            echo_db=echo_db,
        )
    assert server.validation_errors == []
    assert [t["outcome"] for t in report["turns"]] == ["answered"]
    assert "response.cancel" not in server.connections[0].received_types()
    assert report["answer_audio_s"] == pytest.approx(4.0, abs=0.1)


async def test_loud_interruption_still_barges_in_over_a_quiet_echo(tmp_path, wav_file):
    question = speech_16k(WEATHER)
    interruption = (speech_16k("ja_stop_16k.wav").astype(np.int32) * 2).clip(-32768, 32767).astype(np.int16)
    gap = np.zeros(int(1.8 * 16000), dtype=np.int16)
    script = FakeScript(answer_audio_s=6.0)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(
            kiosk_config(), wav_file(np.concatenate([question, gap, interruption])), tmp_path / "a.wav", server,
            echo_db=-30.0,
        )
    assert server.validation_errors == []
    assert report["turns"][0]["outcome"] == "interrupted"
    assert len(server.truncations) == 1


async def test_muted_kiosk_sends_no_audio_and_opens_no_connection():
    cfg = kiosk_config()
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        cfg = _point_at(cfg, server)
        loop = asyncio.get_running_loop()
        events: list[object] = []
        bus = EventStream()
        bus.subscribe(events.append)
        pipeline = KioskPipeline(
            cfg, realtime_endpoint(cfg), bus, PlaybackBuffer(24000),
            webrtc_voice_detector(2, 16000, 20), loop.time,
        )
        try:
            pipeline.feed(MuteToggled())
            assert pipeline.state is State.MUTED
            pcm = padded(speech_16k(WEATHER), silence_s=0.5, noise_s=0.5).astype("<i2").tobytes()
            for i in range(0, len(pcm) - 640 + 1, 640):
                pipeline.on_mic_frame(pcm[i : i + 640])
                await asyncio.sleep(0)
            await asyncio.sleep(0.2)
            assert pipeline.state is State.MUTED
            assert pipeline.connections_opened == 0 and server.connections == []
            assert EarconRequested("mute_on") in events
            # Unmuted, the same speech opens a turn again.
            pipeline.feed(MuteToggled())
            assert pipeline.state is State.IDLE
            for i in range(0, len(pcm) - 640 + 1, 640):
                pipeline.on_mic_frame(pcm[i : i + 640])
                await asyncio.sleep(0)
            assert pipeline.machine.turn_id == 1
        finally:
            await pipeline.aclose()


@pytest.mark.skipif(not WAKE_FIXTURE.exists(), reason="wake word fixture missing")
async def test_wakeword_mode_ignores_ordinary_speech_but_wakes_on_okay_nabu(tmp_path, wav_file):
    pytest.importorskip("pymicro_wakeword")
    cfg = kiosk_config('[wake]\nmode = "wakeword"\n')
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        ordinary = await simulate(cfg, wav_file(padded(speech_16k(WEATHER)), "plain.wav"), tmp_path / "a.wav", server)
        assert ordinary["turns"] == [] and ordinary["connections_opened"] == 0
        wake = speech_16k(str(WAKE_FIXTURE))
        silence = np.zeros(8000, dtype=np.int16)
        mic = wav_file(np.concatenate([silence, wake, speech_16k(WEATHER), silence]), "wake.wav")
        woken = await simulate(cfg, mic, tmp_path / "b.wav", server)
    assert server.validation_errors == []
    assert [t["trigger"] for t in woken["turns"]] == ["wakeword"]
    assert woken["turns"][0]["outcome"] == "answered"


async def test_a_cough_during_the_answer_pauses_it_briefly_and_it_resumes(tmp_path, wav_file):
    from kiosk.testing.fake_realtime import speech_like_pcm16

    question = speech_16k(WEATHER)
    cough = np.frombuffer(speech_like_pcm16(0.16, rate_hz=16000), dtype="<i2")  # loud, 160 ms
    gap = np.zeros(int(2.0 * 16000), dtype=np.int16)
    script = FakeScript(answer_audio_s=4.0)
    async with FakeRealtimeServer("ga", script=script) as server:
        report = await simulate(
            kiosk_config(), wav_file(np.concatenate([question, gap, cough])), tmp_path / "a.wav", server
        )
    assert server.validation_errors == []
    assert [t["outcome"] for t in report["turns"]] == ["answered"]
    assert "response.cancel" not in server.connections[0].received_types()
    # Nothing of the answer was lost: the pause held it, the resume played it all.
    assert report["answer_audio_s"] == pytest.approx(4.0, abs=0.1)

"""The lobby bench's two warm starts (bench/lobby_driver.py): "speex-warm" adapts the canceller
alone, so the run starts with an endpointer that does not trust it yet; "speex-later" plays the
earlier answer through the whole pipeline, so the run starts as the daemon's long-lived pipeline
does on a later answer: filter adapted, lag lined up, the room heard, nothing heard as a visitor
(the canceller is trusted again once the next answer's echo is relearned)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import lobby_sound as sound  # noqa: E402
from bench_lobby import PEER_MODES, load_bench_config  # noqa: E402
from lobby_driver import LATER_MODE, PLAYBACK_RATE_HZ, _warm_up, warm_up_pipeline  # noqa: E402

from kiosk.app import VAD_RATE_HZ, KioskPipeline  # noqa: E402
from kiosk.audio import speexdsp  # noqa: E402
from kiosk.audio.playback import PlaybackBuffer  # noqa: E402
from kiosk.audio.vad import voice_detector  # noqa: E402
from kiosk.audio.wav import read_wav_mono  # noqa: E402
from kiosk.core.bus import EventStream  # noqa: E402
from kiosk.core.events import State  # noqa: E402
from kiosk.net.endpoints import realtime_endpoint  # noqa: E402

RATE = 48000
ANSWER = ROOT / "tests" / "fixtures" / "whats_the_weather_pcm16_24khz_mono.wav"

pytestmark = pytest.mark.skipif(not speexdsp.available(), reason="libspeexdsp missing")


def pipeline_with_aec() -> tuple[KioskPipeline, PlaybackBuffer]:
    cfg = load_bench_config()
    audio = dataclasses.replace(cfg.audio, echo_cancelled=False, echo_cancel="speex")
    cfg = dataclasses.replace(cfg, audio=audio)
    playback = PlaybackBuffer(PLAYBACK_RATE_HZ)
    detector = voice_detector(cfg.vad, VAD_RATE_HZ, cfg.audio.frame_ms)
    clock = iter(range(10**9)).__next__
    pipeline = KioskPipeline(cfg, realtime_endpoint(cfg), EventStream(), playback, detector,
                             lambda: float(clock()) / 100)
    return pipeline, playback


def answer() -> bytes:
    loud = read_wav_mono(ANSWER, PLAYBACK_RATE_HZ) * 10  # +20 dB: an answer at a usual level
    return np.clip(loud, -32768, 32767).astype("<i2").tobytes()


async def test_the_later_answer_mode_warms_the_endpointer_too_the_warm_mode_only_the_filter():
    ir = sound.room_ir(RATE, 1, -12.0)
    pipeline, playback = pipeline_with_aec()
    room = sound.to_stereo(sound.noise_bed("pink", 5 * RATE, RATE, 1) * sound.db_to_amp(-50), 1)
    heard_as_visitor = warm_up_pipeline(pipeline, playback, answer(), RATE, ir, room, 3.0, 1.0)
    # As after an earlier answer: the filter adapted and the echo's lag lined up. Its trust
    # ended with the answer (a rechecking canceller: the next stretch is placed by its own
    # stamp, so the guard relearns what the filter leaves then; tests/audio/test_aec_distrust.py).
    canceller = pipeline.echo_canceller
    assert canceller is not None and canceller.frames_cancelled > 0 and canceller._lined_up
    assert not pipeline.endpointer.echo_cancelled_well
    assert heard_as_visitor == 0 and pipeline.state is State.IDLE and playback.is_idle
    assert pipeline.endpointer.noise_floor_dbfs is not None  # it heard the room too
    await pipeline.aclose()

    old, _ = pipeline_with_aec()
    assert old.echo_canceller is not None
    _warm_up(old.echo_canceller, answer(), RATE, ir, 3.0)
    assert old.echo_canceller.frames_cancelled > 0
    assert not old.endpointer.echo_cancelled_well  # the filter adapted, the guard knows nothing
    await old.aclose()


def test_the_later_answer_mode_can_be_asked_for():
    assert (LATER_MODE, True, 3.0) in PEER_MODES

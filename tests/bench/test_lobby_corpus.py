"""The lobby corpus's building blocks (bench/lobby_corpus.py, bench/lobby_driver.py): noise at
the level asked for, labels from clean speech, the echo path. No TTS needed here."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import lobby_corpus as corpus  # noqa: E402
import lobby_sound as sound  # noqa: E402
from lobby_driver import _Echo  # noqa: E402


def dbfs(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(x**2))) / 32768)


@pytest.mark.parametrize("kind", ["pink", "brown", "hvac", "transients"])
def test_noise_beds_are_seeded_and_at_unit_level(kind):
    a = sound.noise_bed(kind, 48000 * 3, 48000, seed=7)
    assert np.array_equal(a, sound.noise_bed(kind, 48000 * 3, 48000, seed=7))
    assert not np.array_equal(a, sound.noise_bed(kind, 48000 * 3, 48000, seed=8))
    assert dbfs(a * 32768 * 10 ** (-45 / 20)) == pytest.approx(-45, abs=0.1)


def test_level_steps_reach_the_nominal_level_only_in_their_loud_stretches():
    x = sound.noise_bed("steps", 48000 * 60, 48000, seed=3)
    block = np.sqrt(np.mean(x[: 48000 * 60].reshape(-1, 48000) ** 2, axis=1))  # 1 s blocks
    levels = 20 * np.log10(block)
    assert levels.max() == pytest.approx(0, abs=2.5)  # unit-RMS noise, 1 s blocks vary
    assert levels.min() < -5  # the quiet stretches are 6-15 dB down


def test_pink_and_brown_slope_as_named():
    rate = 48000
    for kind, slope in (("pink", -10.0), ("brown", -20.0)):
        x = sound.noise_bed(kind, rate * 8, rate, seed=1)
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / rate)
        low = spectrum[(f > 200) & (f < 400)].mean()
        high = spectrum[(f > 2000) & (f < 4000)].mean()
        assert 10 * math.log10(high / low) == pytest.approx(slope, abs=2.5)  # per decade


def test_speech_bounds_find_the_clean_speech_not_the_silence_around_it():
    rate = 16000
    tone = np.sin(2 * np.pi * 200 * np.arange(rate) / rate) * 8000
    clip = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate // 4)])
    start, end = sound.speech_bounds(clip, rate)
    assert start == pytest.approx(0.5, abs=0.006) and end == pytest.approx(1.5, abs=0.006)


def test_room_echo_level_and_streaming_match_one_whole_convolution():
    rate = 48000
    ir = sound.room_ir(rate, seed=5, echo_db=-12.0)
    assert 10 * math.log10(np.sum(ir**2)) == pytest.approx(-12.0, abs=0.01)
    echo = _Echo(rate, ir)
    resampled: list[bytes] = []  # what the echo path's own resampler produced, chunk by chunk
    process = echo.resampler.process
    echo.resampler.process = lambda pcm: resampled.append(process(pcm)) or resampled[-1]  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    speaker = (rng.standard_normal(24000 * 2) * 3000).astype(np.int16)
    streamed = np.concatenate(
        [echo.process(speaker[i : i + 480].tobytes()) for i in range(0, speaker.size, 480)]
    )
    x = np.frombuffer(b"".join(resampled), dtype="<i2").astype(np.float64)
    assert x.size == streamed.size > 0.9 * 2 * rate
    whole = np.convolve(x, ir)[: streamed.size]
    assert np.allclose(streamed, whole, atol=1e-6 * np.abs(whole).max())
    assert dbfs(streamed[rate // 2 :]) == pytest.approx(dbfs(x[rate // 2 :]) - 12.0, abs=1.0)


def test_the_two_splits_share_no_voice_speed_or_fixture():
    (seed_a, a), (seed_b, b) = corpus.SPLITS["tuning"], corpus.SPLITS["heldout"]
    assert seed_a != seed_b
    assert not set(a.en_voices) & set(b.en_voices)
    assert not set(a.en_speeds) & set(b.en_speeds)
    assert not set(a.ja_styles) & set(b.ja_styles)
    assert not set(a.fixtures) & set(b.fixtures)

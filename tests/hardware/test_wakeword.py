"""Wake word mode with the real bundled okay_nabu model: it fires on the wake word and
ignores ordinary speech (English and Japanese fixtures) and lobby noise."""

from __future__ import annotations

import logging
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr

from kiosk.audio.wakeword import BUNDLED_MODELS, Detection, WakeWordDetector, check_wakeword

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WAKE_WAV = Path(__file__).resolve().parent / "fixtures" / "okay_nabu_espeak_16k.wav"
SPEECH = [
    "whats_the_weather_pcm16_24khz_mono.wav",
    "arc-easy-q237-tts.wav",
    "en_restroom_espeak_16k.wav",
    "ja_restroom_16k.wav",
    "ja_parking_16k.wav",
    "ja_stop_16k.wav",
]
FRAME = 320  # 20 ms at 16 kHz


def load_16k(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if rate != 16000:
        x = np.clip(soxr.resample(x.astype(np.float32), rate, 16000), -32768, 32767).astype("<i2")
    return x


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype="<i2")


def feed(det: WakeWordDetector, audio: np.ndarray, start: float = 0.0) -> list[Detection]:
    out = []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        d = det.process(audio[i : i + FRAME].tobytes(), start + (i + FRAME) / 16000)
        if d is not None:
            out.append(d)
    return out


@pytest.fixture
def detector() -> Iterator[WakeWordDetector]:
    det = WakeWordDetector("okay_nabu", refractory_s=2.0)
    yield det
    det.close()


def test_wake_word_is_detected_once(detector: WakeWordDetector) -> None:
    audio = np.concatenate([silence(0.5), load_16k(WAKE_WAV), silence(1.0)])
    hits = feed(detector, audio)
    assert len(hits) == 1
    assert hits[0].model == "okay_nabu"
    assert hits[0].score >= 0.85
    assert 0.5 < hits[0].t_s < 0.5 + 1.4 + 0.3


def test_ordinary_speech_and_noise_never_wake(detector: WakeWordDetector) -> None:
    parts = [silence(0.3)]
    for name in SPEECH:
        parts += [load_16k(FIXTURES / name), silence(0.5)]
    parts.append(load_16k(FIXTURES / "lobby_noise_16k.wav"))
    assert feed(detector, np.concatenate(parts)) == []


def test_repeat_inside_refractory_period_is_ignored(detector: WakeWordDetector) -> None:
    word = load_16k(WAKE_WAV)
    audio = np.concatenate([silence(0.3), word, word, silence(0.5)])  # twice within ~2.8 s
    assert len(feed(detector, audio)) == 1


def test_repeat_after_refractory_period_wakes_again() -> None:
    det = WakeWordDetector("okay_nabu", refractory_s=0.5)
    word = load_16k(WAKE_WAV)
    audio = np.concatenate([silence(0.3), word, silence(1.0), word, silence(0.5)])
    assert len(feed(det, audio)) == 2
    det.close()


def test_scores_are_in_the_debug_log(
    detector: WakeWordDetector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk.audio.wakeword")
    feed(detector, np.concatenate([silence(0.3), load_16k(WAKE_WAV), silence(1.5)]))
    assert any("= wake score peak" in r.getMessage() for r in caplog.records)
    assert any("wake word okay_nabu detected" in r.getMessage() for r in caplog.records)


def test_frames_of_any_length_give_the_same_detection() -> None:
    audio = np.concatenate([silence(0.3), load_16k(WAKE_WAV), silence(1.0)])
    det = WakeWordDetector("okay_nabu")
    odd = []
    for i in range(0, len(audio), 777):
        d = det.process(audio[i : i + 777].tobytes(), (i + 777) / 16000)
        if d:
            odd.append(d)
    det.close()
    assert len(odd) == 1


def test_default_threshold_is_the_models_tuned_cutoff() -> None:
    det = WakeWordDetector("okay_nabu")
    assert det.threshold == pytest.approx(0.85)
    det.close()
    det = WakeWordDetector("okay_nabu", threshold=0.6)
    assert det.threshold == 0.6
    det.close()


def test_every_bundled_model_loads() -> None:
    for name in BUNDLED_MODELS:
        assert check_wakeword(name) is None


def test_unknown_model_is_reported_in_one_line() -> None:
    problem = check_wakeword("hey_kiosk")
    assert problem is not None
    assert "unknown wake word model 'hey_kiosk'" in problem
    assert "\n" not in problem


def test_missing_custom_model_path_is_reported(tmp_path: Path) -> None:
    problem = check_wakeword(str(tmp_path / "mine.json"))
    assert problem is not None and "does not exist" in problem


@pytest.mark.parametrize("threshold", [-0.1, 1.0, 1.5])
def test_threshold_outside_zero_to_one_raises(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        WakeWordDetector("okay_nabu", threshold=threshold)

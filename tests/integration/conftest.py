"""Shared helpers for integration tests: configs aimed at a local fake server, padded speech."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.wav import read_wav_mono, write_wav
from kiosk.config import Config, load_config
from tests.integration.pulse import require_pulseaudio

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TIMEOUT_FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))


def kiosk_config(toml: str = "", *, index_path: Path | None = None, **env: str) -> Config:
    """A config for tests: no GPIO, state in /tmp, a (possibly missing) index file."""
    base = f"""
[gpio]
enabled = false
[rag]
index_path = "{index_path or '/nonexistent/index.sqlite'}"
"""
    return load_config(base + toml, {"OPENAI_API_KEY": "sk-test-123", **env}, require_key=False)


def speech_16k(name: str) -> np.ndarray:
    return read_wav_mono(FIXTURES / name, 16000)


def padded(speech: np.ndarray, *, silence_s: float = 3.0, noise_s: float = 3.0) -> np.ndarray:
    """noise | silence | speech | silence | noise (the lobby fixture's pink noise, ~-45 dBFS)."""
    noise = read_wav_mono(FIXTURES / "lobby_noise_16k.wav", 16000)
    n = int(noise_s * 16000)
    reps = int(np.ceil(n / len(noise)))
    noise = np.tile(noise, reps)[:n]
    silence = np.zeros(int(silence_s * 16000), dtype=np.int16)
    return np.concatenate([noise, silence, speech, silence, noise]).astype(np.int16)


@pytest.fixture
def wav_file(tmp_path: Path) -> Iterator[object]:
    def make(samples: np.ndarray, name: str = "input.wav", rate_hz: int = 16000) -> Path:
        path = tmp_path / name
        write_wav(path, samples, rate_hz)
        return path

    yield make


@pytest.fixture(scope="module")
def pulseaudio_module() -> None:
    """The module's tests need the PulseAudio null sink (``require_pulseaudio``); a module
    asks with ``pytestmark = [..., pytest.mark.usefixtures("pulseaudio_module")]``."""
    require_pulseaudio()

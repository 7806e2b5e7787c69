"""How long the microphone's capture path (device block -> channel mean -> resampler -> 20 ms
frames) keeps audio back: a barge-in waits for it before the pipeline hears the visitor."""

import numpy as np
import pytest

from kiosk.audio.pyaudio_io import PyAudioSource
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio


@pytest.mark.parametrize("rate_hz", [44100, 48000])
def test_60_ms_device_blocks_hand_their_audio_over_under_25_ms_after_their_end_on_average(rate_hz: int) -> None:
    # What the pipeline has when a block arrives: it lacks the audio after the last whole frame
    # handed over. soxr "HQ" kept 30.3 (48 kHz) / 32.3 ms (44.1 kHz) back on average, the
    # capture quality (resample.CAPTURE_QUALITY, "LQ") 20.0 / 22.1.
    host = FakePortAudio(devices=[FakeDevice(name="USB Audio", inputs=2, outputs=2, rates_hz=(rate_hz,), channels=(2,))])
    delivered: list[int] = []
    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, block_ms=60, on_frames=lambda f: delivered.append(len(f)),
        pyaudio_factory=lambda: host,
    )
    block = rate_hz * 60 // 1000
    noise = (np.random.default_rng(1).standard_normal((block * 150, 2)) * 2000).astype(np.int16)
    held_back_ms = []
    with source:
        stream = host.streams[0]
        for b in range(150):
            stream.callback(noise[b * block : (b + 1) * block].tobytes(), block, {}, 0)
            held_back_ms.append((b + 1) * 60 - sum(delivered) * 20)
    assert float(np.mean(held_back_ms[5:])) <= 25

"""Audio adapter costs: CPU per PortAudio callback, buffer hand-over, WAV decode, loop latency.

* **source callback** / **sink callback**: the real ``PyAudioSource`` / ``PyAudioSink``
  callbacks (48 kHz stereo device <-> 16 kHz VAD frames / 24 kHz answer audio), driven
  through the PortAudio double of ``tests/audio`` so no sound card is needed. The goal is a
  small share of a Raspberry Pi core: a 20 ms block must cost far less than 20 ms.
* **playback buffer**: one ``write`` of a 100 ms delta plus the ``read`` calls that drain it.
* **wav decode**: ``read_wav_mono`` of the 22.5 kHz fixture to 16 kHz, per second of audio.
* **null-sink loop latency** (only when PulseAudio with ``vsink`` answers): time from
  writing a click into the ``PlaybackBuffer`` to the first captured frame that holds it,
  through PyAudioSink -> PulseAudio -> monitor -> PyAudioSource. Barge-in and echo timing
  on real hardware add their device buffers to this.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource
from kiosk.audio.wav import read_wav_mono
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def _per_call_us(fn: Any, calls: int) -> float:
    fn()  # warm up (first soxr call allocates)
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def _host() -> FakePortAudio:
    return FakePortAudio(devices=[FakeDevice("USB", 2, 2, 48000, (48000,), (2,))])


def _source_callback_us(calls: int) -> float:
    host = _host()
    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, on_frame=lambda f: None, pyaudio_factory=lambda: host
    )
    rng = np.random.default_rng(1)
    block = rng.integers(-8000, 8000, 960 * 2, dtype=np.int16).tobytes()
    with source:
        callback = host.streams[0].callback
        return _per_call_us(lambda: callback(block, 960, {}, 0), calls)


def _sink_callback_us(calls: int) -> float:
    host = _host()
    buffer = PlaybackBuffer(24000)
    rng = np.random.default_rng(2)
    answer = rng.integers(-8000, 8000, 24000 * 60, dtype=np.int16).tobytes()
    buffer.write(answer, "item")
    with PyAudioSink("", buffer, volume=0.8, pyaudio_factory=lambda: host):
        callback = host.streams[0].callback
        return _per_call_us(lambda: callback(None, 960, {}, 0), calls)


def _buffer_us(calls: int) -> float:
    buffer = PlaybackBuffer(24000)
    delta = bytes(4800)  # 100 ms, a typical response.output_audio.delta

    def one_delta() -> None:
        buffer.write(delta, "item")
        for _ in range(5):
            buffer.read(480)

    return _per_call_us(one_delta, calls)


def _wav_decode_ms_per_s() -> float:
    path = FIXTURES / "arc-easy-q237-tts.wav"
    started = time.perf_counter()
    samples = read_wav_mono(path, 16000)
    elapsed = time.perf_counter() - started
    return elapsed * 1000 / (samples.size / 16000)


def _pulse_ready() -> bool:
    if shutil.which("pactl") is None:
        return False
    try:
        info = subprocess.run(["pactl", "info"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return info.returncode == 0 and "Default Sink: vsink" in info.stdout


def _loop_latency_ms(repeats: int) -> list[float]:
    buffer = PlaybackBuffer(24000)
    heard = threading.Event()
    write_time = [0.0]
    latencies: list[float] = []

    def on_frame(frame: bytes) -> None:
        loud = np.abs(np.frombuffer(frame, dtype=np.int16)).max() > 4000
        if write_time[0] and not heard.is_set() and loud:
            latencies.append((time.monotonic() - write_time[0]) * 1000)
            heard.set()

    click = (np.hanning(240) * 20000).astype(np.int16).tobytes()  # 10 ms
    with PyAudioSink("", buffer), PyAudioSource("", rate_hz=16000, frame_ms=20, on_frame=on_frame):
        time.sleep(0.5)
        for _ in range(repeats):
            heard.clear()
            write_time[0] = time.monotonic()
            buffer.write(click)
            heard.wait(2.0)
            write_time[0] = 0.0
            time.sleep(0.2)
    return latencies


def run(quick: bool) -> list[dict[str, Any]]:
    calls = 200 if quick else 2000
    rows: list[dict[str, Any]] = [
        {
            "name": "source callback, 20 ms 48k stereo -> 16k frames",
            "value": f"{_source_callback_us(calls):.0f} us",
            "goal": "< 1000 us",
            "note": "downmix + soxr HQ + slicing, x86 dev box",
        },
        {
            "name": "sink callback, 20 ms 24k -> 48k stereo",
            "value": f"{_sink_callback_us(calls):.0f} us",
            "goal": "< 1000 us",
            "note": "buffer read + soxr HQ + volume + duplicate",
        },
        {
            "name": "playback buffer, 100 ms delta in + out",
            "value": f"{_buffer_us(calls):.0f} us",
            "goal": "< 200 us",
            "note": "1 write + 5 reads of 20 ms",
        },
        {
            "name": "wav decode 22.5k -> 16k",
            "value": f"{_wav_decode_ms_per_s():.2f} ms per s of audio",
            "goal": "< 20 ms",
            "note": "read_wav_mono, soxr HQ",
        },
    ]
    if _pulse_ready():
        latencies = _loop_latency_ms(3 if quick else 10)
        value = f"{np.median(latencies):.0f} ms median" if latencies else "click not heard"
        rows.append(
            {
                "name": "null-sink loop latency, buffer.write -> captured frame",
                "value": value,
                "goal": "< 150 ms",
                "note": f"{len(latencies)} clicks via the vsink null sink (no real device)",
            }
        )
    else:
        rows.append(
            {
                "name": "null-sink loop latency",
                "value": "skipped",
                "goal": "< 150 ms",
                "note": "no PulseAudio with vsink: run .ci/pulseaudio.sh",
            }
        )
    return rows

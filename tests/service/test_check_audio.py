"""`kiosk check --audio-test` against a PortAudio double whose input starts late."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.service import check_audio
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio, FakeStream

BLOCK_FRAMES = 320  # 20 ms at 16 kHz


def _drive(host: FakePortAudio, late_by_s: float, stop: threading.Event) -> None:
    """Play PortAudio's part: the input starts ``late_by_s`` after opening, then runs in real time."""
    tone = (np.sin(np.arange(BLOCK_FRAMES) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2")
    started: set[int] = set()
    opened_at: dict[int, float] = {}
    while not stop.is_set():
        for i, stream in enumerate(list(host.streams)):
            if not stream.is_active():
                continue
            opened_at.setdefault(i, time.monotonic())
            if stream.kwargs.get("input"):
                if time.monotonic() - opened_at[i] >= late_by_s:
                    started.add(i)
                if i in started:
                    stream.callback(tone.tobytes(), BLOCK_FRAMES, {}, 0)
            else:
                stream.callback(None, BLOCK_FRAMES, {}, 0)
        time.sleep(BLOCK_FRAMES / 16000)


def test_audio_test_records_the_whole_duration_when_the_input_starts_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kiosk.audio.pulse_host as pulse_host

    host = FakePortAudio(
        devices=[FakeDevice("USB Audio", inputs=1, outputs=1, rates_hz=(16000,), channels=(1,))]
    )
    monkeypatch.setattr(pulse_host, "host_factory", lambda *args: lambda: host)
    cfg = load_config("", require_key=False)
    stop = threading.Event()
    driver = threading.Thread(target=_drive, args=(host, 0.4, stop), daemon=True)
    driver.start()
    try:
        result = check_audio.run_audio_test(cfg, duration_s=0.5)
    finally:
        stop.set()
        driver.join(5)

    # Waiting 0.5 s of wall time would have caught only the ~0.1 s after the late start.
    assert result.detail.startswith("recorded 0.5 s, level"), result.detail
    assert all(isinstance(s, FakeStream) and s.closed for s in host.streams)

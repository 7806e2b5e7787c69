"""`kiosk run --input-wav`: the WAV microphone streams 16 kHz mono files, converts others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.wav import write_wav
from kiosk.audio.wav_devices import WavMicrophone

FRAME_BYTES = 640  # 20 ms at 16 kHz


async def _frames(mic: WavMicrophone, got: list[bytes], count: int) -> None:
    task = asyncio.create_task(mic.run())
    while len(got) < count:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_16k_mono_file_is_read_as_it_plays_then_silence(tmp_path: Path) -> None:
    pcm = (np.arange(16000 * 0.1) % 2000 - 1000).astype(np.int16)  # 5 frames
    write_wav(tmp_path / "q.wav", pcm, 16000)
    got: list[bytes] = []
    mic = WavMicrophone(tmp_path / "q.wav", 20, got.append, block_ms=60)
    assert mic._pcm == b""  # nothing held in memory: read frame by frame
    await _frames(mic, got, 9)
    assert b"".join(got[:5]) == pcm.tobytes()
    assert got[5:9] == [bytes(FRAME_BYTES)] * 4
    assert len(got) % 3 == 0  # three frames per wake-up


async def test_other_formats_are_converted_up_front(tmp_path: Path) -> None:
    t = np.arange(48000 // 10) / 48000
    write_wav(tmp_path / "q48.wav", (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 48000)
    got: list[bytes] = []
    mic = WavMicrophone(tmp_path / "q48.wav", 20, got.append)
    assert len(mic._pcm) == 2 * 1600
    await _frames(mic, got, 6)
    assert {len(f) for f in got} == {FRAME_BYTES}
    assert b"".join(got[:5]) == mic._pcm

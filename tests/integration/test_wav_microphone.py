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


async def test_quiet_batches_end_at_a_loud_block_and_nothing_is_lost(tmp_path: Path) -> None:
    """While asked for 8-block batches, a block loud enough for an onset is handed over at
    its own time (not up to 420 ms later); every frame still comes once, in order."""
    rng = np.random.default_rng(3)
    quiet = (rng.standard_normal(16000 * 2) * 30).astype(np.int16)  # ~ -60 dBFS
    loud = (rng.standard_normal(1600) * 3000).astype(np.int16)  # ~ -20 dBFS, 100 ms
    pcm = np.concatenate([quiet[:16000], loud, quiet[16000:]])
    write_wav(tmp_path / "q.wav", pcm, 16000)
    batches: list[list[bytes]] = []
    times: list[float] = []
    loop = asyncio.get_running_loop()

    def on_frames(frames: list[bytes]) -> None:
        batches.append(frames)
        times.append(loop.time())

    mic = WavMicrophone(
        tmp_path / "q.wav",
        20,
        block_ms=60,
        on_frames=on_frames,
        blocks_per_wake=lambda: 8,
        handover_level_dbfs=lambda: -40.0,
    )
    start = loop.time()
    task = asyncio.create_task(mic.run())
    while sum(map(len, batches)) < 2.2 * 50:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    frames = [f for batch in batches for f in batch]
    assert b"".join(frames)[: len(pcm) * 2] == pcm.tobytes()
    first_loud = 50  # frame index: 1.0 s in
    ends = np.cumsum([len(b) for b in batches])
    k = int(np.searchsorted(ends, first_loud, side="right"))  # the batch that carries it
    assert len(batches[0]) == 24  # quiet: 8 blocks of 3 frames
    assert ends[k] == (first_loud // 3 + 1) * 3  # ends with the loud frame's block
    assert times[k] - start == pytest.approx(ends[k] * 0.02, abs=0.05)  # at its own time
    assert mic.at_end  # the whole file was handed over

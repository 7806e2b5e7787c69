"""Frames handed over in batches (the daemon's quiet idle) are heard exactly as one by one.

The daemon's microphone gathers up to 8 blocks per hand-over while the kiosk has nothing
to react to; the pipeline then takes the batch's levels in one pass
(``frame_levels_dbfs``). Same audio in, same endpointing out: the onset, its pre-roll and
every later event, whichever way the frames came.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kiosk.audio.vad import voice_detector
from kiosk.audio.wav import read_wav_mono
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer, Onset, frame_dbfs, frame_levels_dbfs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FRAME_BYTES = 640


def _room_then_question() -> list[bytes]:
    noise = read_wav_mono(FIXTURES / "lobby_noise_16k.wav", 16000)[: 16000 * 6]
    question = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", 16000)
    pcm = noise.astype(np.float32) * 0.5
    start = 16000 * 3
    pcm[start : start + len(question)] += question[: len(pcm) - start]
    pcm16 = np.clip(pcm, -32768, 32767).astype("<i2").tobytes()
    return [pcm16[i : i + FRAME_BYTES] for i in range(0, len(pcm16) - FRAME_BYTES + 1, FRAME_BYTES)]


def test_batch_levels_are_the_single_frame_levels() -> None:
    frames = _room_then_question()[:200] + [bytes(FRAME_BYTES)]
    assert frame_levels_dbfs(frames) == [frame_dbfs(f) for f in frames]


def test_batched_frames_give_the_same_onset_pre_roll_and_events() -> None:
    settings = VadSettings()
    frames = _room_then_question()

    def run(batch: int) -> list[object]:
        endpointer = Endpointer(voice_detector(settings, 16000, 20), settings, 20)
        events: list[object] = []
        for i in range(0, len(frames), batch):
            block = frames[i : i + batch]
            for frame, level in zip(block, frame_levels_dbfs(block), strict=True):
                events += endpointer.process(frame, None, level)
        return events

    one_by_one = run(1)
    assert any(isinstance(e, Onset) for e in one_by_one)
    onset = next(e for e in one_by_one if isinstance(e, Onset))
    assert len(onset.audio) >= settings.preroll_ms * 32  # the pre-roll went with it
    assert run(24) == one_by_one
    assert run(3) == one_by_one

"""The pipeline hands the raw guard (kiosk.audio.raw_guard) what the canceller measured of the very
frame it hears: SpeexDSP's (linear output, echo estimate, microphone) levels, by which a raw frame
the canceller took most of is the echo (raw_guard.RAW_CANCELLED_DB)."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio import speexdsp
from tests.unit.test_app_raw_guard import speaking_pipeline_with

pytestmark = pytest.mark.skipif(not speexdsp.available(), reason="libspeexdsp missing")


class _RawGuard:
    suspected_speech_ms = 0

    def __init__(self) -> None:
        self.heard: list[tuple[bytes, object]] = []

    def hear(
        self, raw: bytes, captured_at_s: float, guarded: bool, main: object, linear: object = None
    ) -> bytes | None:
        self.heard.append((raw, linear))
        return None

    def close(self) -> None:
        pass


async def test_the_raw_guard_is_handed_the_cancellers_levels_of_the_frame_it_hears():
    fake = _RawGuard()
    pipeline, playback = speaking_pipeline_with(fake)
    rng = np.random.default_rng(3)
    playback.write((rng.standard_normal(48000) * 3000).astype(np.int16).tobytes())  # an answer
    canceller = pipeline.echo_tap
    told = 0
    for _ in range(25):
        playback.read(480)  # (the speaker takes 20 ms)
        frame = (rng.standard_normal(320) * 3000).astype(np.int16).tobytes()
        pipeline.on_mic_frame(frame)
        raw, linear = fake.heard[-1]
        assert raw == frame
        assert linear is canceller.linear_levels  # old: not handed over
        told += linear is not None
    assert told and len(linear) == 3  # (SpeexDSP tells its linear output, estimate, microphone)
    await pipeline.aclose()

"""The pipeline with an echo canceller takes the raw-microphone guard's word until the canceller
is trusted (kiosk.audio.raw_guard): its suspicion pauses the answer, its proved onset is a
barge-in whose turn the main endpointer follows from there on."""

from __future__ import annotations

import dataclasses

import pytest

from kiosk.app import KioskPipeline
from kiosk.audio import speexdsp
from kiosk.audio.playback import PlaybackBuffer
from kiosk.config import load_config
from kiosk.core.bus import EventStream
from kiosk.core.events import State
from kiosk.net.endpoints import realtime_endpoint

pytestmark = pytest.mark.skipif(not speexdsp.available(), reason="libspeexdsp missing")

FRAME = bytes(640)  # 20 ms of silence at 16 kHz


class _RawGuard:
    """What RawMicGuard tells the pipeline, set by the test."""

    suspected_speech_ms = 0
    onset: bytes | None = None
    linear: object = None

    def hear(
        self, raw: bytes, captured_at_s: float, guarded: bool, main: object, linear: object = None
    ) -> bytes | None:
        self.linear = linear  # (the canceller's levels of this frame, as the pipeline hands them)
        onset, self.onset = self.onset, None
        return onset

    def close(self) -> None:
        pass


def speaking_pipeline_with(fake: object) -> tuple[KioskPipeline, PlaybackBuffer]:
    """A SpeexDSP pipeline in SPEAKING whose raw guard is ``fake`` (nothing played yet)."""
    cfg = load_config('[audio]\necho_cancel = "speex"\n', {}, require_key=False)
    cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, echo_cancelled=False))
    playback = PlaybackBuffer(24000)
    ticks = iter(range(10**9)).__next__
    pipeline = KioskPipeline(
        cfg, realtime_endpoint(cfg), EventStream(), playback, lambda f: False, lambda: ticks() / 100
    )
    assert pipeline.raw_guard is not None  # old: no guard beside the canceller
    pipeline.raw_guard.close()
    pipeline.hearing.raw_guard = fake  # type: ignore[assignment]
    pipeline.machine.state = State.SPEAKING
    return pipeline, playback


def _speaking_pipeline() -> tuple[KioskPipeline, PlaybackBuffer, _RawGuard]:
    fake = _RawGuard()
    pipeline, playback = speaking_pipeline_with(fake)
    playback.write(bytes(48000))  # an answer playing
    return pipeline, playback, fake


async def test_the_raw_guards_suspicion_pauses_the_answer_and_its_end_resumes_it():
    pipeline, playback, fake = _speaking_pipeline()
    pipeline.on_mic_frame(FRAME)
    assert not playback.held
    fake.suspected_speech_ms = pipeline.cfg.vad.barge_in_pause_ms
    pipeline.on_mic_frame(FRAME)
    assert playback.held  # old: the cleaned frames alone decide (silence here)
    fake.suspected_speech_ms = 0
    pipeline.on_mic_frame(FRAME)
    assert not playback.held
    await pipeline.aclose()


async def test_a_barge_in_the_raw_guard_proved_takes_the_turn():
    pipeline, playback, fake = _speaking_pipeline()
    fake.onset = b"\x01\x00" * 320
    pipeline.on_mic_frame(FRAME)
    assert pipeline.state is State.LISTENING  # old: SPEAKING (the answer went on)
    assert pipeline.endpointer.in_speech  # the turn is followed on the cleaned frames
    assert playback.is_idle  # flushed
    await pipeline.aclose()


async def test_the_raw_guards_tap_stamps_the_speaker_by_the_cancellers_clock():
    """simulate and the lobby bench put the canceller's reference on the microphone's timeline
    after the pipeline is built; the raw guard's tap must follow it, else the speaker's blocks
    never line up with its frames and it never listens (the bench's first run: no change)."""
    cfg = load_config('[audio]\necho_cancel = "speex"\n', {}, require_key=False)
    cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, echo_cancelled=False))
    pipeline = KioskPipeline(
        cfg, realtime_endpoint(cfg), EventStream(), PlaybackBuffer(24000), lambda f: False, lambda: 5.0
    )
    assert pipeline.echo_tap is not None and pipeline.raw_guard is not None
    pipeline.echo_tap.reference.clock = lambda: 123.0
    assert pipeline.raw_guard.tap.reference.clock() == 123.0
    await pipeline.aclose()

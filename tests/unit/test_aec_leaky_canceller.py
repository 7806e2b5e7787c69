"""Behind WebRTC's AEC3 (``audio.echo_cancel = "webrtc"``), which tells only its output: at the
onset of a loud syllable after a quieter stretch it now and then leaks 2-3 frames of the echo
(lobby tuning mix 081's first answer at 3.78-3.80 s, -12 dB echo: -43.9 / -39.0 dBFS left under a
-13.7 dBFS reference, the raw microphone -37.6 / -31.0, its usual return -18.8 dB; voiced: the
answer paused). Such a frame, its raw microphone no louder over the reference than the echo's
usual return + 2 dB, is the echo alone (``EchoGuard._leaked_echo``). A visitor, who adds to the
raw microphone, still pauses the answer in two frames.
"""

from __future__ import annotations

from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.test_aec_double_talk import frame

PAUSE_MS = VadSettings().barge_in_pause_ms
REF_DBFS = -13.7
RAW_RETURN_DB = -18.8  # the raw echo under what plays (mix 081, -12 dB echo and the room's tail)


def answering(vad: FirstOpinion, leaky: bool = True) -> Endpointer:
    """An AEC3 kiosk in a room at -54 dBFS, 1 s into an answer whose echo it removes to -60 dBFS."""
    endpointer = Endpointer(vad, VadSettings(), 20)
    endpointer.echo_relearn = True
    endpointer.leaky_canceller = leaky
    for _ in range(250):  # the room alone
        endpointer.process(frame(-54.0), None)
    endpointer.guarded = True
    for _ in range(50):
        endpointer.raw_mic_dbfs = REF_DBFS + RAW_RETURN_DB
        endpointer.process(frame(-60.0), REF_DBFS)
        assert endpointer.suspected_speech_ms == 0
    assert endpointer.echo_cancelled_well
    return endpointer


def hear(endpointer: Endpointer, frames: list[tuple[float, float]]) -> list[int]:
    seen = []
    for cleaned, raw in frames:
        endpointer.raw_mic_dbfs = raw
        endpointer.process(frame(cleaned), REF_DBFS)
        seen.append(endpointer.suspected_speech_ms)
    return seen


def test_a_leak_of_the_echo_alone_does_not_pause_the_answer():
    vad = FirstOpinion()
    endpointer = answering(vad)
    vad.provisional = vad.confirmed = True  # webrtcvad calls the leak voice
    seen = hear(endpointer, [(-43.9, -37.6), (-39.0, -31.0), (-45.7, -26.8)])
    assert max(seen) < PAUSE_MS, seen  # old code: paused at the second frame


def test_a_visitor_over_the_echo_still_pauses_it_in_two_frames():
    """Her first loud frames (tuning mix 083's at -12 dB echo: -34.4 / -34.1 dBFS left, the raw
    microphone 4 dB over the echo's usual return)."""
    vad = FirstOpinion()
    endpointer = answering(vad)
    vad.provisional = vad.confirmed = True
    raw = REF_DBFS + RAW_RETURN_DB + 4.0
    assert hear(endpointer, [(-34.4, raw), (-34.1, raw)])[-1] >= PAUSE_MS


def test_without_a_leaky_canceller_the_rules_are_as_before():
    """SpeexDSP's canceller tells its linear output: the raw level set here is not read."""
    vad = FirstOpinion()
    endpointer = answering(vad, leaky=False)
    vad.provisional = vad.confirmed = True
    seen = hear(endpointer, [(-43.9, -37.6), (-39.0, -31.0)])
    assert max(seen) >= PAUSE_MS, seen


async def test_with_webrtc_the_raw_guard_listens_behind_a_trusted_canceller_too():
    """AEC3's suppressor takes a visitor's first 100-200 ms of double talk for echo, trusted or
    not (tuning mix 079's later answer: her first frames at -37 dBFS, then 100 ms at -55 dBFS
    left while the raw microphone rose 7 dB over the echo): the guard's rules on the raw
    microphone keep listening all along. SpeexDSP's pipeline keeps it until trusted only."""
    import dataclasses

    from kiosk.app import KioskPipeline
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.config import load_config
    from kiosk.core.bus import EventStream
    from kiosk.net.endpoints import realtime_endpoint
    from tests.audio.test_webrtc_apm import _need_webrtc

    _need_webrtc()
    for cancel, always in (("webrtc", True), ("speex", False)):
        cfg = load_config(f'[audio]\necho_cancel = "{cancel}"\n', {}, require_key=False)
        cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, echo_cancelled=False))
        playback = PlaybackBuffer(24000)
        pipeline = KioskPipeline(cfg, realtime_endpoint(cfg), EventStream(), playback, lambda f: False, lambda: 0.0)
        assert pipeline.endpointer.leaky_canceller is always
        guard = pipeline.raw_guard
        assert guard is not None and guard.listens_when_trusted is always
        # The main endpointer trusts its canceller; the speaker plays: the raw guard listens
        # only with webrtc.
        pipeline.endpointer.echo_relearn, pipeline.endpointer._echo_max_db = True, -40.0
        assert pipeline.endpointer.echo_cancelled_well
        playback.write(b"\x00\x10" * 4800, "item")
        now = 0.0
        guard.tap.reference.clock = lambda: now
        for k in range(10):
            now = k * 0.02
            playback.read(480)
            guard.hear(frame(-30.0), now, True, pipeline.endpointer)
        assert guard.listens is always
        await pipeline.aclose()

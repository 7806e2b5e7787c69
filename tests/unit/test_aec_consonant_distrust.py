"""The consonant cue over 3 kHz while the guard distrusts a canceller it trusted before (a new
playback stretch, a drop, a reline: the lag is re-checked and the echo return relearned, 0.2-1 s;
the filter still holds what it learned). Through PulseAudio the SpeexDSP later answer's slowest
-12 dB barge-ins began in such a distrust (speexcue32's replays): her soft "s" was there, but the
cue waited for the trust to come back. A canceller never trusted (a first answer, a filter just
restarted) still gets no say from it.
"""

from __future__ import annotations

import numpy as np

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
from kiosk.config import VadSettings
from tests.unit.test_aec_consonant import ROOM_HIGH, answering
from tests.unit.test_aec_double_talk import FAR_DBFS, frame

ECHO_DBFS = FAR_DBFS - 32.0  # what the suppressor leaves of the echo (test_aec_double_talk)
ECHO_LINEAR = (ECHO_DBFS + 12.0, ECHO_DBFS + 22.0)


def distrusted(residual_db: float = -32.0):
    """``answering`` (trusted at -32 dB), then the echo path changed (a new stretch): 100 ms of
    the echo alone heard since, the room's level over 3 kHz."""
    endpointer = answering(residual_db)
    endpointer.echo_path_changed()
    echo = FAR_DBFS + residual_db
    for _ in range(5):
        endpointer.process(frame(echo), FAR_DBFS, linear=(echo + 12.0, echo + 22.0), linear_high=ROOM_HIGH)
        assert endpointer.suspected_speech_ms == 0
    return endpointer


def test_a_soft_consonant_pauses_the_answer_while_a_trusted_canceller_is_rechecked():
    endpointer = distrusted()
    assert not endpointer.echo_cancelled_well  # (the echo return is being relearned)
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=(-62.0, -85.0))
    assert endpointer.suspected_speech_ms >= VadSettings().barge_in_pause_ms  # b4a48a1: 0
    assert not endpointer.in_speech  # a pause: the onset still needs her voice


def test_the_answers_own_high_band_does_not_pause_it_in_the_distrust():
    """A filter off by a fraction of a ms leaks where the answer sounds: its estimate there
    is as loud as what it leaves."""
    endpointer = distrusted()
    for high in [(-55.0, -62.0), (-62.0, -70.0), (-71.0, -95.0)]:
        endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=high)
        assert endpointer.suspected_speech_ms == 0


def test_a_canceller_never_trusted_gets_no_say_from_the_high_band():
    endpointer = distrusted(residual_db=-12.0)
    assert not endpointer.echo_cancelled_well
    endpointer.process(frame(-29.0), FAR_DBFS, linear=(-37.0, -17.0), linear_high=(-62.0, -85.0))
    assert endpointer.suspected_speech_ms == 0


def test_the_canceller_measures_the_band_in_a_distrust_only_after_it_was_trusted():
    class Filter:
        def __init__(self, frame: int, length: int, rate: int) -> None:
            self.linear_output = b""

        def cancel(self, mic: bytes, ref: bytes) -> bytes:
            self.linear_output = mic
            return mic

    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=16000)
    canceller = EchoCanceller(reference, 20, Filter, align=False)
    mic = (np.ones(320) * 300).astype("<i2").tobytes()
    reference.played(mic * 10)
    canceller.process(mic, 0.0)
    assert canceller.linear_high_levels is None  # never trusted: not measured
    canceller.pitch_wanted = False
    canceller.process(mic, 0.02)
    assert canceller.linear_high_levels is not None
    canceller.pitch_wanted = True  # distrusted again (a new stretch, a reline)
    canceller.process(mic, 0.04)
    assert canceller.linear_high_levels is not None  # b4a48a1: None


def test_a_reline_during_her_consonant_keeps_the_bands_recent_level():
    """A reline (a filter that kept what it learned, measured right on) does not wipe the
    band's recent level: her consonant counts on the next frame (s321 mix 080 in replay: a
    reline 130 ms into her speech, the cue then waited 5 frames of her own)."""
    endpointer = answering()
    endpointer.echo_path_changed()
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=(-62.0, -85.0))
    assert endpointer.suspected_speech_ms >= VadSettings().barge_in_pause_ms  # fb91ea1: 0

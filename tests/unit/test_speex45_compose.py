"""Stop 44's two SpeexDSP changes together (speex45): quiet44's soft consonant pair
(kiosk.core.echo_double_talk.DOUBLE_TALK_HIGH_*: a quiet visitor's consonant over 3 kHz in two
trusted frames in a row) and echo44's estimate-apart cue (ESTIMATE_APART_*: the filter's estimate
not in the microphone, the answer's own voice). They meet in one window: a frame over 3 kHz 10-11
dB over the filter's estimate there is a soft pair's (>= DOUBLE_TALK_HIGH_MIN_DB) and, anti-
correlated with the estimate, the answer's own (<= ESTIMATE_APART_HIGH_OVER_DB). There the
echo-alone veto wins (as it does over the consonant cue); and the family F frames stop 44 saw
(the band -3.4..+9.6 dB over its estimate) are under the pair's floor whatever the veto says.
"""

from __future__ import annotations

from kiosk.config import VadSettings
from kiosk.core import echo_double_talk as edt
from tests.unit import test_aec_double_talk as double_talk
from tests.unit.test_aec_double_talk import FAR_DBFS, frame

ROOM_HIGH = (-75.0, -85.0)  # (linear output, echo estimate) over 3 kHz while the echo alone plays
PAUSE_MS = VadSettings().barge_in_pause_ms
# Broadband (linear output, estimate, microphone): the linear output 3 dB over the estimate and 6
# over the microphone: g = -0.25, correlated with the estimate at -0.88 (s2261 mix 085's warm-up).
APART = (-47.0, -50.0, -53.0)
APART_2 = APART[:2]  # the same levels from a canceller that does not tell the microphone's


def heard_after_ms(linear: tuple[float, ...], high: tuple[float, float], frames: int = 5) -> int | None:
    endpointer = double_talk.answering(residual_db=-32.0, linear_high=ROOM_HIGH)
    assert endpointer.echo_cancelled_well
    for k in range(frames):
        endpointer.process(frame(-49.0), FAR_DBFS, linear=linear, linear_high=high)
        if endpointer.suspected_speech_ms >= PAUSE_MS:
            return (k + 1) * 20
    return None


def test_the_bounds_overlap_by_the_window_this_test_covers():
    assert edt.DOUBLE_TALK_HIGH_MIN_DB <= edt.ESTIMATE_APART_HIGH_OVER_DB
    assert edt.ESTIMATE_APART_HIGH_OVER_DB - edt.DOUBLE_TALK_HIGH_MIN_DB <= 1.0


def test_the_estimate_apart_veto_clears_a_soft_pair_in_the_overlap():
    high = (ROOM_HIGH[0] + 16.5, ROOM_HIGH[0] + 16.5 - 10.5)  # 16.5 over the median, 10.5 over the estimate
    assert heard_after_ms(APART_2, high) == 40  # the pair fires (no microphone level: no veto)
    assert heard_after_ms(APART, high) is None  # the answer's own voice: vetoed


def test_the_pair_does_not_fire_on_family_f_band_levels():
    for over_estimate in (-3.4, 0.1, 2.6, 9.6):  # stop 44's F frames over 3 kHz
        high = (ROOM_HIGH[0] + 17.2, ROOM_HIGH[0] + 17.2 - over_estimate)
        assert heard_after_ms(APART_2, high) is None, over_estimate


def test_a_soft_pair_over_the_veto_band_still_pauses_an_anti_correlated_frame():
    """A visitor's consonant 13.4 dB over the estimate (the closest stop 44 saw at corr <= -0.4)."""
    high = (ROOM_HIGH[0] + 14.0, ROOM_HIGH[0] + 14.0 - 13.4)
    assert heard_after_ms(APART, high) == 40

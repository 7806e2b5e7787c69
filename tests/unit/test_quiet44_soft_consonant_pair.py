"""A quiet visitor's first consonant behind a trusted SpeexDSP filter, under the consonant cue's
bars (kiosk.core.echo_consonant: 16 dB over the band's recent level and 15 over the filter's
estimate there, or 6 and 20) and under the guard's broadband bar: stop 43's slowest barge-ins at
-12 dB through PulseAudio (s2261 mix 086, s2271 mix 085: 226-233 ms replayed) had two frames in a
row over 3 kHz 11-21 dB over the band's recent median and 11-18 dB over the estimate there, 80-90
ms after her onset. Two such frames in a row pause the answer (DOUBLE_TALK_HIGH_*); one alone,
or a pair the echo alone leaves (each excess >= 10 dB, together under 27 dB), does not.
"""

from __future__ import annotations

import pytest

from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit import test_aec_double_talk as double_talk
from tests.unit.test_aec_double_talk import FAR_DBFS, frame

ROOM_HIGH = (-75.0, -85.0)  # (linear output, echo estimate) over 3 kHz while the echo alone plays
QUIET = (-37.0, -27.0)  # broadband linear output 10 dB under its estimate: nothing stands out
HER_HIGH = (-60.0, -73.0)  # her consonant: 15 dB over the band's median, 13 over the estimate
PAUSE_MS = VadSettings().barge_in_pause_ms


def answering() -> Endpointer:
    """An AEC kiosk 0.6 s into an answer whose echo it follows, the room's level over 3 kHz."""
    endpointer = double_talk.answering(residual_db=-32.0, linear_high=ROOM_HIGH)
    assert endpointer.echo_cancelled_well
    return endpointer


def heard_after_ms(endpointer: Endpointer, highs: list[tuple[float, float]]) -> int | None:
    """Feed one frame per level pair over 3 kHz (broadband: the quiet visitor under the bar);
    the time (ms, frame ends) at which the answer was paused, or None."""
    for k, high in enumerate(highs):
        endpointer.process(frame(-49.0), FAR_DBFS, linear=QUIET, linear_high=high)
        if endpointer.suspected_speech_ms >= PAUSE_MS:
            return (k + 1) * 20
    return None


def test_a_quiet_visitors_consonant_pauses_the_answer_within_40_ms():
    endpointer = answering()
    # Five frames of her soft "s" over the echo alone: on main 76178ba no cue hears it (None).
    assert heard_after_ms(endpointer, [HER_HIGH] * 5) == 40
    assert not endpointer.in_speech  # a pause: the onset still needs her voice


def test_stop_43s_slowest_visitors_excesses_pause_the_answer():
    """s2261 mix 086 (16.2 + 11.3, then 20.7 + 11.8 dB) and s2271 mix 085 (11.9 + 17.9, 13.7 +
    17.3 dB): excesses over the band's median + over the estimate there, as replayed."""
    for pair in ([(16.2, 11.3), (20.7, 11.8)], [(11.9, 17.9), (13.7, 17.3)]):
        endpointer = answering()
        highs = [(ROOM_HIGH[0] + over_median, ROOM_HIGH[0] + over_median - over_est) for over_median, over_est in pair]
        assert heard_after_ms(endpointer, highs) == 40


@pytest.mark.parametrize(
    "highs",
    [
        [HER_HIGH, ROOM_HIGH, HER_HIGH, ROOM_HIGH, HER_HIGH],  # one frame alone, again and again
        [(-65.0, -75.5)] * 5,  # 10 + 10.5 dB: the echo alone's pairs summed under 25 dB
        [(-58.0, -67.5)] * 5,  # 17 dB over the median but 9.5 over the estimate (17.2 / 8.4 seen)
        [(-55.0, -62.0)] * 5,  # the answer's own "s" the filter missed: its estimate there as loud
    ],
)
def test_the_echo_alone_and_single_frames_do_not_pause(highs):
    endpointer = answering()
    assert heard_after_ms(endpointer, highs) is None


def test_the_pair_needs_a_trusted_canceller():
    endpointer = double_talk.answering(residual_db=-12.0, linear_high=ROOM_HIGH)
    assert not endpointer.echo_cancelled_well
    for _ in range(3):
        endpointer.process(frame(-29.0), FAR_DBFS, linear=(-37.0, -17.0), linear_high=HER_HIGH)
        assert endpointer.suspected_speech_ms == 0

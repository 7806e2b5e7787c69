"""A visitor's first unvoiced consonant behind a trusted echo canceller ("Sorry", "Stop",
"sumimasen"): 60-120 ms of friction under the echo's broadband level before her first vowel,
which the level and double-talk rules cannot hear (the lobby's slowest later-answer
barge-ins). Over 3 kHz the answer's echo is weak and the filter's linear output holds the room,
so a frame far over the recent level there, and far over the filter's echo estimate there,
pauses the answer; the answer's own consonants, which come with their estimate, do not.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference, high_band_levels_db
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit import test_aec_double_talk as double_talk
from tests.unit.test_aec_double_talk import FAR_DBFS, frame

ROOM_HIGH = (-75.0, -85.0)  # (linear output, echo estimate) over 3 kHz while the echo alone plays


def answering(residual_db: float = -32.0) -> Endpointer:
    """An AEC kiosk 0.6 s into an answer whose echo it follows (test_aec_double_talk's), the
    room's level over 3 kHz."""
    return double_talk.answering(residual_db=residual_db, linear_high=ROOM_HIGH)


def test_a_consonant_over_the_echo_in_the_high_band_pauses_the_answer_at_once():
    endpointer = answering()
    assert endpointer.echo_cancelled_well
    # Broadband nothing stands out (the linear output 10 dB under its estimate, the suppressed
    # frame under the bar); over 3 kHz the linear output is 20 dB over the room there and 30 dB
    # over the filter's estimate.
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=(-55.0, -85.0))
    assert endpointer.suspected_speech_ms >= VadSettings().barge_in_pause_ms  # old: no linear_high
    assert not endpointer.in_speech  # a pause: the onset still needs her voice


@pytest.mark.parametrize(
    "high",
    [
        (-55.0, -62.0),  # the answer's own "s" the filter missed: its estimate there is as loud
        (-62.0, -70.0),  # 13 dB over the room's level there, the answer's high band 8 dB under
        (-71.0, -95.0),  # the answer silent there, the room's hiss 4 dB over its median
    ],
)
def test_the_answers_own_consonants_and_small_rises_do_not_pause(high):
    endpointer = answering()
    for _ in range(3):
        endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=high)
        assert endpointer.suspected_speech_ms == 0


@pytest.mark.parametrize("high", [(-68.0, -95.0), (-62.0, -85.0)])
def test_a_soft_consonant_where_the_answer_has_no_high_band_pauses_the_answer(high):
    """Her "s" only 7-13 dB over the room's hiss over 3 kHz (the lobby's slowest later-answer
    barge-ins through PulseAudio, mixes 084 and 086: 100-200 ms of it before her first vowel),
    where the filter's echo estimate there is >= 20 dB under it: nothing of the answer there to
    have been missed (CONSONANT_SOFT_OVER_RECENT_DB / CONSONANT_SOFT_OVER_ESTIMATE_DB)."""
    endpointer = answering()
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=high)
    assert endpointer.suspected_speech_ms >= VadSettings().barge_in_pause_ms  # old: 0 (16 dB over)
    assert not endpointer.in_speech


def test_the_high_band_waits_for_a_trusted_canceller():
    endpointer = answering(residual_db=-12.0)
    assert not endpointer.echo_cancelled_well
    endpointer.process(frame(-29.0), FAR_DBFS, linear=(-37.0, -17.0), linear_high=(-55.0, -85.0))
    assert endpointer.suspected_speech_ms == 0


def test_the_high_band_is_judged_against_its_recent_level():
    """Without a history there (a canceller just restarted on a new alignment: it measures the
    band again only once trusted, so a frame comes without it) nothing counts."""
    endpointer = answering()
    endpointer.echo_path_changed()
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0))
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0), linear_high=(-55.0, -85.0))
    assert endpointer.suspected_speech_ms == 0


def test_the_canceller_reports_its_linear_output_and_estimate_over_3_khz_once_trusted():
    class PerfectFilter:
        """Removes exactly what the speaker played (the microphone = reference + a visitor)."""

        def __init__(self, frame: int, length: int, rate: int) -> None:
            self.linear_output = b""

        def cancel(self, mic: bytes, ref: bytes) -> bytes:
            left = np.frombuffer(mic, dtype="<i2").astype(np.int32)
            left -= np.frombuffer(ref, dtype="<i2")
            self.linear_output = left.astype("<i2").tobytes()
            return self.linear_output

    t = np.arange(320) / 16000
    vowel = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)  # the answer: low, voiced
    rng = np.random.default_rng(1)
    high = np.fft.rfftfreq(320, 1 / 16000) >= 4000
    hiss = np.fft.irfft(np.where(high, np.fft.rfft(rng.standard_normal(320)), 0))
    hiss = (hiss / np.sqrt(np.mean(hiss**2)) * 300).astype(np.int16)  # her "s", 20 dB under it
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=16000)
    canceller = EchoCanceller(reference, 20, PerfectFilter, align=False)
    mic = (vowel.astype(np.int32) + hiss).astype("<i2").tobytes()
    reference.played(vowel.tobytes() * 3)
    canceller.process(mic, 0.0)
    assert canceller.linear_high_levels is None  # not trusted yet: not measured
    canceller.pitch_wanted = False
    canceller.process(mic, 0.02)
    linear, estimate = canceller.linear_high_levels
    hiss_dbfs = 20 * np.log10(300 / 32768)
    assert linear == pytest.approx(hiss_dbfs, abs=1.5)  # (Hann window: the band's share of it)
    assert estimate < linear - 10  # the vowel leaves only its window leakage there
    assert high_band_levels_db(mic, mic)[1] == -np.inf

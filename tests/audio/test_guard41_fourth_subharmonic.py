"""The guard's pitch cue where the room rings at the answer's 4th harmonic (stop 40's held-out
s1451 mix 076 at -12 dB, main's run: the microphone's best period 20-21 samples of 8 kHz,
381-400 Hz, a quarter of the answer's 77-81, ~100 Hz; the reference repeated there and at 2x
and 3x that period only 0.02-0.41, at 4x, its own period, 0.74-0.94; two such frames 20 ms apart
read "a pitch the answer lacks" and paused the answer). The guard's tap checks the reference at
four times the microphone's period too; a visitor at a pitch the answer lacks still counts."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_level import EchoLevelTap
from kiosk.audio.echo_pitch import PitchCue
from kiosk.audio.playback import PlaybackBuffer
from kiosk.core.echo_guard import PITCH_MIN
from tests.audio.test_echo_pitch import cue_pairs, second_voice

RATE = 16000
FRAME = 320  # 20 ms
ANSWER_HZ = 100.0  # the answer's pitch (80 samples at 8 kHz)


def voice(f0: float, amplitudes: list[float], vibrato: float = 0.01) -> np.ndarray:
    """One second of a voiced sound at ``f0`` with these harmonic amplitudes and a slow vibrato
    (+-``vibrato``)."""
    t = np.arange(RATE) / RATE
    phase = 2 * np.pi * f0 * (t + vibrato / (2 * np.pi * 4) * np.sin(2 * np.pi * 4 * t))
    return sum(a * np.sin((h + 1) * phase) for h, a in enumerate(amplitudes))  # type: ignore[return-value]


def the_taps_cue() -> PitchCue:
    """The pitch cue as the guard's tap (no canceller) builds it."""
    tap = EchoLevelTap(PlaybackBuffer(24000), lambda: 0.0, lambda: 0.1, 20)
    assert tap.pitch is not None
    return tap.pitch


def cue_over(mic: np.ndarray, ref: np.ndarray) -> list[tuple[float, float] | None]:
    return cue_pairs(the_taps_cue(), mic, ref)


def answer(vibrato: float = 0.01) -> np.ndarray:
    return 5000 * voice(ANSWER_HZ, [1.0, 0.8, 0.6, 0.5, 0.4, 0.3], vibrato)


def test_a_ring_at_the_answers_4th_harmonic_is_no_second_voice() -> None:
    """The room rings at 400 Hz (the answer's 4th harmonic) and damps the rest: the echo repeats
    at a quarter of the answer's period, where the answer repeats only at four times that.
    With the reference checked at 2x and 3x the period only, (nearly) every frame of it read as
    a second voice. (Steady pitch: a pure ring with a vibrato repeats as well at five of its
    periods as at one, and the cue's best period then falls at 99 samples now and then.)"""
    t = np.arange(RATE) / RATE
    ring = (
        2000 * voice(4 * ANSWER_HZ, [1.0], 0.0) * (1 + 0.5 * np.sin(2 * np.pi * 8 * t))
    )  # a tremolo
    seen = cue_over(ring, answer(0.0))
    assert sum(p is not None and p[0] >= PITCH_MIN for p in seen) >= 20  # it does repeat
    assert [k for k, p in enumerate(seen) if second_voice(p)] == []


@pytest.mark.parametrize("visitor_hz", [150.0, 220.0, 360.0, 440.0])
def test_a_visitor_at_a_pitch_the_answer_lacks_still_counts(visitor_hz: float) -> None:
    """A visitor over the answer's echo, at her own pitch: 150 and 220 Hz (4x her period is past
    the cue's longest period), 360 and 440 Hz (4x her period, 89 and 73 samples, lies within the
    cue's range, near the answer's 80, but the answer does not repeat there). (With (2, 3) the
    same frames count but one at 360 and 440 Hz: 49 vs 50 of 50; 150 Hz 49, 220 Hz 42 alike.)
    Since stop 49 the tap looks back 160 ms of reference, not 100 (GUARD_HISTORY_WINDOWS): at
    220 Hz, twice her period (73 samples) lies near the answer's 80, and over 8 windows of its
    vibrato some window repeats there: 34 frames of 50 count (42 with 5 windows), the others 49
    as before; in every case two frames in a row count from her first frames on, as before (what
    pauses the answer: vad.barge_in_pause_ms)."""
    echo = 0.25 * answer()
    visitor = 4000 * voice(visitor_hz, [1.0, 0.5, 0.3])
    seen = cue_over(echo + visitor, answer())
    counted = [second_voice(p) for p in seen]
    assert sum(counted) >= (30 if visitor_hz == 220.0 else 40)  # of 50 frames
    assert any(counted[k] and counted[k + 1] for k in range(2))  # two in a row by frame 2

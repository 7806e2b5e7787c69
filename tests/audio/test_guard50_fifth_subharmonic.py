"""The guard's pitch cue counts the reference's periodicity at five times the microphone's period
too (:data:`kiosk.audio.echo_pitch.GUARD_SUBHARMONICS`): a room that leaves an answer at ~100 Hz
ringing only at its 5th harmonic (~500 Hz, 16 samples at 8 kHz) hears its own echo, not a second
voice (stop 49's s2711 mix 077 at -6 dB through PulseAudio: the microphone repeated at 16-17
samples, 0.8, where the reference did at 79-85; two self-pauses). A visitor's own pitch is still a
second voice: 5x her period lies past the longest period looked at unless she is over 400 Hz."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_pitch import GUARD_SUBHARMONICS, SUBHARMONICS, PitchCue
from kiosk.core.echo_double_talk import PITCH_MIN
from tests.audio.test_echo_pitch import cue_pairs, second_voice

RATE = 16000
FRAME = 320  # 20 ms


def second_voice_frames(
    mic: np.ndarray, answer: np.ndarray, subharmonics: tuple[int, ...]
) -> list[int]:
    """The frames a guard's pitch cue with ``subharmonics`` calls a second voice, of those it
    looks at (at least 20 must be: the microphone repeats)."""
    seen = cue_pairs(PitchCue(FRAME, subharmonics=subharmonics), mic, answer)
    assert sum(p is not None and p[0] >= PITCH_MIN for p in seen) >= 20
    return [k for k, p in enumerate(seen) if second_voice(p)]


def answer_ringing_at_its_fifth(f0: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(RATE) / RATE
    phase = 2 * np.pi * f0 * t
    answer = 8000 * (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.3 * np.sin(5 * phase))
    echo = 2000 * np.sin(5 * phase) * (1 + 0.5 * np.sin(2 * np.pi * 8 * t))  # and a tremolo
    return echo, answer


def test_a_ring_at_the_answers_fifth_harmonic_is_no_second_voice() -> None:
    echo, answer = answer_ringing_at_its_fifth(100.0)  # (the ring's period: 16 samples at 8 kHz)
    assert second_voice_frames(echo, answer, GUARD_SUBHARMONICS) == []


def test_up_to_the_fourth_the_same_ring_was_a_second_voice() -> None:
    # (what paused the answer before: the test above can fail)
    echo, answer = answer_ringing_at_its_fifth(100.0)
    assert len(second_voice_frames(echo, answer, SUBHARMONICS)) >= 20


@pytest.mark.parametrize("visitor_hz", [160.0, 250.0])
def test_a_visitor_over_an_answer_at_100_hz_is_still_a_second_voice(visitor_hz: float) -> None:
    t = np.arange(RATE) / RATE
    phase = 2 * np.pi * 100.0 * t
    answer = 8000 * (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.3 * np.sin(5 * phase))
    voice = 3000 * sum(np.sin(2 * np.pi * visitor_hz * h * t) / h for h in (1, 2, 3))
    mic = 0.25 * answer + voice  # her voice over the answer's echo
    heard = second_voice_frames(mic, answer, GUARD_SUBHARMONICS)
    assert heard == second_voice_frames(mic, answer, SUBHARMONICS)
    assert len(heard) >= 40

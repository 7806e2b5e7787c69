"""The frame on which the echo's lag is lined up (stop 40's guard40, traced through PulseAudio:
used seed 1101 mix 086 paused its first answer 0.69 s in, in 3 of 3 runs on main 6a48eed, its
barge-in 942 ms instead of ~100): the level tap gives no band levels on that frame, and the
guard then started the bands' echo envelope afresh. Where that frame falls at a word's end, the
next frames' bars hold only what the speaker plays now while the room still rings with the
word: a band 12.5 dB over its bar alone, twice = the answer paused by its own echo. Now a frame
without band levels while the lined-up speaker plays lets the envelope fall by one frame of the
room's tail instead (``EchoBands.decay``).

Frames and band levels as in test_guard_bands (the scripted ``Mic``; bands given as data).
"""

from __future__ import annotations

import pytest

from kiosk.core.echo_bands import EchoBands
from tests.unit.test_guard_bands import ANSWER, ECHO_DB, VISITOR, add, feed, learned_mic

ECHO = [a + ECHO_DB for a in ANSWER]
WORD_END = [-75.0] * len(ANSWER)  # the answer between two words: the speaker plays nothing here


def ringing(frames: int) -> list[float]:
    """The room's tail of the word, ``frames`` frames after the speaker fell silent."""
    return [e - 4.8 * frames for e in ECHO]  # vad.echo_tail_ms 250: 60 dB in 250 ms


def relined_at_a_words_end() -> object:
    mic = learned_mic()
    for _ in range(5):
        assert feed(mic, ECHO, ANSWER) == []
    # The relined frame: the speaker still plays, the tap has no band levels for it.
    assert feed(mic, ECHO, ANSWER, bands=False) == []
    return mic


def test_a_words_end_right_after_the_relined_frame_does_not_pause_the_answer() -> None:
    """On main 6a48eed the two ringing frames were each loud in the bands (the envelope held
    only the silent speaker): suspicion 40 ms = the answer paused."""
    mic = relined_at_a_words_end()
    for k in (1, 2, 3):
        feed(mic, ringing(k), WORD_END)
        assert mic.endpointer.suspected_speech_ms == 0, k


def test_a_visitor_right_after_the_relined_frame_still_pauses_it() -> None:
    mic = relined_at_a_words_end()
    heard = add(ECHO, VISITOR)
    for _ in range(2):
        feed(mic, heard, ANSWER)
    assert mic.endpointer.suspected_speech_ms == 2 * 20


def test_no_lined_up_reference_still_starts_the_envelope_afresh() -> None:
    bands = EchoBands(4.8)
    assert bands.hear([-20.0, -30.0]) == [-20.0, -30.0]
    bands.decay()
    assert bands.hear([-60.0, -60.0]) == pytest.approx([-29.6, -39.6])  # fell by two frames of the tail
    bands.silent()
    assert bands.hear([-60.0, -60.0]) == [-60.0, -60.0]

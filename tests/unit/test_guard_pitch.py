"""The guard's pitch cue (no AEC): a frame in which the microphone repeats at a period the
speaker's reference lacks is a second voice, over the echo however loud the echo is, from the
answer's first frame on (nothing to learn, no lag to measure). The answer's own echo, which
repeats where the reference does, never is; nor a frame under the guard's minimum level, nor
one an earcon may echo in.

Frames come from the scripted ``Mic`` of test_endpointing (voiced when non-zero; the level is
the frame's RMS); the cue comes in as data, as the tap gives it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.echo_guard import PITCH_MIN, PITCH_OVER_REFERENCE
from kiosk.core.endpointing import Onset
from tests.unit.test_endpointing import SETTINGS, Mic
from tests.unit.test_guard_lined_up import room_mic

ANSWER_DBFS = -14.0  # what the speaker plays, lined up with the frame
ECHO_DBFS = -26.0  # its echo: -12 dB
VISITOR = (0.85, 0.2)  # she repeats at her pitch period; the answer did not, lately
ECHO = (0.85, 0.8)  # the echo repeats where the answer did


def feed(mic: Mic, level: float, pitch: tuple[float, float] | None, n: int = 1) -> list[object]:
    mic.endpointer.guarded = True
    out: list[object] = []
    for _ in range(n):
        out += mic.endpointer.process(mic.frame(level), ANSWER_DBFS, None, None, pitch)
    return out


def test_a_visitor_as_loud_as_the_echo_pauses_the_answer_from_its_first_frames() -> None:
    """The answer has just begun (its echo return not yet learned: only speech far louder
    than the speaker would count by level); she talks at the echo's level."""
    mic = room_mic()
    feed(mic, ECHO_DBFS, ECHO, 3)
    assert mic.endpointer.suspected_speech_ms == 0
    feed(mic, ECHO_DBFS, VISITOR, 2)
    assert mic.endpointer.suspected_speech_ms >= SETTINGS.barge_in_pause_ms
    events = feed(mic, ECHO_DBFS, VISITOR, SETTINGS.barge_in_min_speech_ms // 20)
    assert any(isinstance(e, Onset) for e in events)  # her words prove a barge-in too


@pytest.mark.parametrize(
    ("level", "earcon"), [(SETTINGS.barge_in_min_level_dbfs - 1, False), (ECHO_DBFS, True)]
)
def test_no_second_voice_under_the_guards_minimum_or_over_an_earcon(level: float, earcon: bool) -> None:
    mic = room_mic()
    mic.endpointer.earcon_echo = earcon
    assert feed(mic, level, VISITOR, 20) == []
    assert mic.endpointer.suspected_speech_ms == 0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-40.0, max_value=ECHO_DBFS),  # the echo's level in the frame
            st.floats(min_value=0.0, max_value=1.0),  # how strongly the microphone repeats
            st.floats(min_value=-0.3, max_value=PITCH_OVER_REFERENCE - 0.01),  # less the reference
        ),
        min_size=5,
        max_size=60,
    )
)
def test_the_echo_repeating_where_the_answer_did_never_pauses_it(
    frames: list[tuple[float, float, float]],
) -> None:
    """Whatever its level (up to the -12 dB echo's loudest, its first frame: under the level
    rule's bar), an echo that repeats no more strongly than the reference did never counts as
    a visitor."""
    mic = room_mic()
    mic.endpointer.guarded = True
    for k, (level, repeats, over) in enumerate(frames):
        level = ECHO_DBFS if k == 0 else level
        pitch = (repeats, repeats - over)
        assert mic.endpointer.process(mic.frame(level), ANSWER_DBFS, None, None, pitch) == []
        assert mic.endpointer.suspected_speech_ms == 0


def test_the_thresholds_leave_room_between_echo_and_voice() -> None:
    assert ECHO[0] - ECHO[1] < PITCH_OVER_REFERENCE <= VISITOR[0] - VISITOR[1]
    assert min(ECHO[0], VISITOR[0]) >= PITCH_MIN

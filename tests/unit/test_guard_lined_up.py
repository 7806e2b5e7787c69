"""The half-duplex guard (no AEC) with the speaker's level lined up with each microphone frame
(``Endpointer.reference_aligned``, fed by :class:`kiosk.audio.echo_level.EchoLevelTap`): the
echo return is learned only from frames in which the answer sounds, relearned from the lined-up
history once the echo's lag is measured, the guard's own echo never pauses the answer, and a
visitor clearly above the predicted echo does.

Frames come from the scripted ``Mic`` of test_endpointing (voiced when non-zero; the level is
the frame's RMS).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.endpointing import ECHO_LEARN_FRAMES, Onset
from tests.unit.test_endpointing import SETTINGS, Mic, make_mic

ROOM_DBFS = -70.0  # the lobby's ambient level (voiced hum, far below any onset)
QUIET_REF = -75.0  # the answer between two words: the microphone hears the room, not it


def room_mic(aligned: bool = True) -> Mic:
    mic = make_mic()
    mic.endpointer.reference_aligned = aligned
    mic.play(60, ROOM_DBFS)  # 1.2 s of the room: its level is known
    assert mic.endpointer.noise_floor_dbfs == pytest.approx(ROOM_DBFS, abs=0.5)
    return mic


def over(mic: Mic, pairs: list[tuple[float, float]]) -> list[object]:
    """Guarded frames: (microphone dBFS, speaker dBFS lined up with it) each."""
    mic.endpointer.guarded = True
    out: list[object] = []
    for level, far_end in pairs:
        out += mic.endpointer.process(mic.frame(level), far_end)
    return out


@pytest.mark.parametrize("aligned", [True, False])
def test_the_answers_quiet_stretches_teach_the_guard_nothing(aligned: bool) -> None:
    """Lined up with the frame, the speaker's level falls to nothing between words while the
    microphone hears the room: those frames are no echo, so they neither count towards the
    learning period nor raise the learned echo return (the speaker's recent blocks never fall
    that low, so without lining up they were learned from)."""
    mic = room_mic(aligned)
    over(mic, [(ROOM_DBFS, QUIET_REF)] * 10)  # the answer's first 200 ms: a breath
    over(mic, [(-22.0, -10.0)] * ECHO_LEARN_FRAMES)  # then it speaks; echo 12 dB under it
    learned = mic.endpointer.echo_return_db
    assert learned is not None
    if aligned:
        assert learned == pytest.approx(-12.0, abs=0.1)
    else:
        assert learned == pytest.approx(ROOM_DBFS - QUIET_REF, abs=0.5)  # the room, as "echo"


def test_once_lined_up_the_echo_return_is_relearned_from_the_frames_heard_so_far() -> None:
    """Until the lag is measured the guard judges by the loudest reference around the frame
    (and learns against it); lined up, the same frames, judged against the reference heard
    with each, give the echo return it uses from then on (no new 400 ms of learning while a
    visitor may already be talking)."""
    mic = room_mic()
    over(mic, [(-22.0, -4.0)] * ECHO_LEARN_FRAMES)  # against the span's loudest: -18 dB
    assert mic.endpointer.echo_return_db == pytest.approx(-18.0, abs=0.1)
    heard = [(ROOM_DBFS, -math.inf)] + [(-22.0, -10.0)] * ECHO_LEARN_FRAMES
    mic.endpointer.relearn_echo(heard)
    assert mic.endpointer.echo_return_db == pytest.approx(-12.0, abs=0.1)
    # The learning period is over: a visitor 6 dB over the echo (-10 - 12 + 6) barges in...
    assert over(mic, [(-22.0, -10.0)] * 10) == []
    events = over(mic, [(-15.0, -10.0)] * 20)
    assert any(isinstance(e, Onset) for e in events)


def test_relearning_leaves_out_a_visitor_already_talking() -> None:
    mic = room_mic()
    heard = [(-22.0, -10.0)] * 10 + [(0.0, -10.0)] * 5 + [(-22.0, -10.0)] * 10
    mic.endpointer.relearn_echo(heard)
    assert mic.endpointer.echo_return_db == pytest.approx(-12.0, abs=0.1)


echo_path = st.floats(min_value=-24.0, max_value=-6.0)
said = st.one_of(st.just(QUIET_REF), st.floats(min_value=-40.0, max_value=-3.0))
answer = st.lists(said, min_size=30, max_size=150)
spread = st.lists(st.floats(min_value=-6.0, max_value=0.0), min_size=150, max_size=150)


@settings(max_examples=150, deadline=None)
@given(echo_path, answer, spread)
def test_the_answers_own_echo_never_pauses_it(
    echo_db: float, levels: list[float], jitter: list[float]
) -> None:
    """Whatever the answer says, its echo (``echo_db`` under what is heard with it, a few dB
    less now and then, and the room where the answer is quiet) is never taken for a visitor:
    no pause, no onset, once the first learning frames heard the echo at its loudest."""
    mic = room_mic()
    learn = [(lvl + echo_db, lvl) for lvl in [-10.0] * ECHO_LEARN_FRAMES]
    assert over(mic, learn) == []
    for (lvl, j) in zip(levels, jitter, strict=False):
        echo = max(ROOM_DBFS, lvl + echo_db + j)
        assert over(mic, [(echo, lvl)]) == []
        assert mic.endpointer.suspected_speech_ms == 0


def test_a_visitor_clearly_over_the_echo_pauses_the_answer_within_two_frames() -> None:
    mic = room_mic()
    over(mic, [(-22.0, -10.0)] * ECHO_LEARN_FRAMES)
    bar = -10.0 - 12.0 + SETTINGS.barge_in_margin_db  # what the echo could be, plus the margin
    over(mic, [(bar + 1.0, -10.0)] * 2)
    assert mic.endpointer.suspected_speech_ms == 2 * 20


def test_relearned_from_half_a_period_the_guard_learns_no_more() -> None:
    """Lined up ~0.5 s into the first answer, the history may hold fewer loud frames than a
    learning period: half of one is enough, and the period is over, so a visitor already
    talking (8 dB over the echo, under the start-up bar) is not learned as echo."""
    mic = room_mic()
    mic.endpointer.relearn_echo([(-22.0, -10.0)] * (ECHO_LEARN_FRAMES // 2))
    assert mic.endpointer.echo_return_db == pytest.approx(-12.0, abs=0.1)
    over(mic, [(-14.0, -10.0)] * 2)
    assert mic.endpointer.suspected_speech_ms == 2 * 20
    assert mic.endpointer.echo_return_db == pytest.approx(-12.0, abs=0.1)
    fresh = room_mic()
    fresh.endpointer.relearn_echo([(-22.0, -10.0)] * (ECHO_LEARN_FRAMES // 2 - 1))
    assert fresh.endpointer.echo_return_db is None  # too few: the period goes on learning

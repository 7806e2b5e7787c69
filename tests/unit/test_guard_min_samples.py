"""The guard per band through a real sound server (helper guardtrace33, traced): a band whose echo
return was learned from only three frames at the start of an answer's first word, 10-15 dB under
what its echo reached later, paused the answer with a second such band (held-out seed 401 mix
073 at -12 dB, twice in each of four traces, either code): such a band is now sparse
(``BAND_MIN_SAMPLES`` 4) and judged with at least the frame's return + BAND_SPARSE_UNDER_FRAME_DB.
And a quiet visitor's frame that fills two bands over the echo counts from
``BAND_LEVEL_UNDER_MIN_DB`` under the guard's absolute minimum (the 20 ms grid put her frames a
fraction of a dB under it: seed 371 mix 084 at -12 dB, 595 ms).

Frames and band levels as in test_guard_bands (the scripted ``Mic``; bands given as data).
"""

from __future__ import annotations

import pytest

from kiosk.config import VadSettings
from kiosk.core.echo_bands import BAND_MIN_SAMPLES, BANDS_OVER
from kiosk.core.echo_guard import BAND_LEVEL_UNDER_MIN_DB
from kiosk.core.endpointing import ECHO_LEARN_FRAMES
from tests.unit.test_endpointing import Mic
from tests.unit.test_guard_bands import ANSWER, ECHO_DB, VISITOR, add, feed, learned_mic, total
from tests.unit.test_guard_lined_up import ROOM_DBFS, room_mic

# The answer's first word sounds in bands 5-6 (2.2-4.5 kHz) for three frames, then no more
# while the echo is learned; its echo there in those first frames: the room not yet ringing.
HISS = ANSWER[:5] + [-46.0, -46.0, -75.0]  # (its envelope falls under the room + 20 dB at once)
QUIET = ANSWER[:5] + [-75.0] * 3
FIRST_FRAMES_DB = -22.0
MINIMUM_DBFS = VadSettings().barge_in_min_level_dbfs


def three_frame_mic() -> Mic:
    mic = room_mic()
    first = [a + ECHO_DB for a in ANSWER[:5]] + [-46.0 + FIRST_FRAMES_DB] * 2 + [-75.0]
    for _ in range(3):
        assert feed(mic, first, HISS) == []
    for _ in range(3, ECHO_LEARN_FRAMES):
        assert feed(mic, [a + ECHO_DB for a in QUIET], QUIET) == []
    bands = mic.endpointer.bands
    assert bands.returns[5:7] == pytest.approx([FIRST_FRAMES_DB] * 2, abs=0.01)
    assert mic.endpointer.echo_return_db == pytest.approx(ECHO_DB, abs=0.5)
    return mic


def test_a_band_learned_from_three_frames_is_sparse() -> None:
    mic = three_frame_mic()
    assert BAND_MIN_SAMPLES > 3
    assert mic.endpointer.bands.sparse[5] and mic.endpointer.bands.sparse[6]
    assert not any(mic.endpointer.bands.sparse[:4])  # learned from every frame


def test_the_echo_over_two_bands_learned_from_three_frames_does_not_pause_the_answer() -> None:
    """Later the answer hisses again and its echo there comes at the frame's usual return: 10 dB
    over what the three frames taught, 1 dB over those bands' old bars. With 3 frames enough
    (b4a48a1) both bands were over and paused the answer; judged as sparse, neither is."""
    mic = three_frame_mic()
    echo = [a + ECHO_DB for a in HISS]
    for _ in range(6):
        assert feed(mic, echo, HISS) == []
        assert mic.endpointer.suspected_speech_ms == 0
    bands, margin = mic.endpointer.bands, 6.0
    assert bands.bands_over(echo, margin, ROOM_DBFS, False, ECHO_DB) == 0
    bands.sparse = [False] * len(bands.sparse)  # as if three frames were enough
    assert bands.bands_over(echo, margin, ROOM_DBFS, False, ECHO_DB) == 2 >= BANDS_OVER


def test_a_visitor_in_those_bands_still_pauses_the_answer() -> None:
    mic = three_frame_mic()
    frames = [feed(mic, add([a + ECHO_DB for a in HISS], VISITOR), HISS) for _ in range(2)]
    assert mic.endpointer.suspected_speech_ms >= 40, frames


def quiet_answer_mic() -> tuple[Mic, list[float], list[float]]:
    """Learned on the answer at full level; now it plays 10 dB softer (its envelope settled)."""
    mic = learned_mic()
    ref = [a - 10.0 for a in ANSWER]
    echo = [a + ECHO_DB for a in ref]
    for _ in range(10):
        assert feed(mic, echo, ref) == []
    assert mic.endpointer.suspected_speech_ms == 0
    return mic, echo, ref


@pytest.mark.parametrize("under_db", [0.9, 1.4])
def test_a_quiet_visitor_just_under_the_minimum_counts_in_bands(under_db: float) -> None:
    """Her frame fills bands 4-6 far over the echo there but is, whole, a fraction of a dB
    under the minimum (and under the whole frame's bar over the echo): it counts towards a
    pause (b4a48a1: not, until a frame reached the minimum)."""
    mic, echo, ref = quiet_answer_mic()
    shift = next(s / 10 for s in range(0, 120) if total(add(echo, [v - s / 10 for v in VISITOR])) <= MINIMUM_DBFS - under_db)
    mixed = add(echo, [v - shift for v in VISITOR])
    assert MINIMUM_DBFS - BAND_LEVEL_UNDER_MIN_DB <= total(mixed) < MINIMUM_DBFS
    assert total(mixed) < total(ref) + ECHO_DB + 6.0  # the whole frame: under its bar
    feed(mic, mixed, ref)
    assert mic.endpointer.suspected_speech_ms == 20
    feed(mic, mixed, ref)
    assert mic.endpointer.suspected_speech_ms == 40


def test_a_visitor_further_under_the_minimum_does_not_count() -> None:
    mic, echo, ref = quiet_answer_mic()
    mixed = add(echo, [v - 8.0 for v in VISITOR])
    assert total(mixed) < MINIMUM_DBFS - BAND_LEVEL_UNDER_MIN_DB
    for _ in range(4):
        feed(mic, mixed, ref)
        assert mic.endpointer.suspected_speech_ms == 0

"""The default guard's level rule at a word end (issue 10, helper lvl50): the bar is the lined-up
reference's envelope + the learned echo return + the margin, and at a word end it fell with the
reference while the echo in the microphone fell a frame later, so a frame of the answer's own
echo read as "over the echo" and the answer paused itself. A frame no louder than the frame before
is now judged by the louder lined-up reference of the two (``HELD_BAR_MAX_RISE_DB``).

The frames are the replayed ones (bench/pulse_guard_replay.py --why, used seeds: microphone
dBFS, lined-up reference dBFS), fed as levels alone to the scripted ``Mic`` of test_endpointing
(no bands, no pitch: the level rule alone), after the echo return was learned at the trace's.
"""

from __future__ import annotations

import pytest

from kiosk.core import echo_guard
from kiosk.core.endpointing import ECHO_LEARN_FRAMES
from tests.unit.test_endpointing import SETTINGS, Mic
from tests.unit.test_guard_lined_up import over, room_mic

# T1 s2451 mix 074 at -6 dB, 4.09-4.37 s (echo return -5.07 dB): the frames at 4.21 and 4.35 were
# over the bar (1.7 and 2.9 dB) where the reference fell and the microphone did not yet.
S2451_074 = [
    (-29.04, -19.48), (-18.88, -17.08), (-18.45, -16.66), (-18.02, -15.99), (-17.94, -18.8),
    (-20.3, -22.88), (-25.63, -25.36), (-27.94, -22.61), (-26.28, -21.8), (-25.41, -17.11),
    (-21.91, -15.84), (-18.97, -18.19), (-19.15, -24.28), (-28.71, -25.33), (-33.92, -25.22),
]  # fmt: skip
# G4 s2801 mix 080 at -12 dB, 4.29-4.47 s (echo return -10.08 dB): 4.41 and 4.43 over the bar.
S2801_080_ANSWER = [
    (-32.72, -21.65), (-27.4, -17.53), (-25.09, -17.15), (-23.7, -16.88), (-23.24, -15.75),
    (-22.89, -17.39), (-25.05, -21.69), (-28.36, -25.64), (-30.92, -23.19), (-30.15, -22.34),
]  # fmt: skip
# The same trace, 5.03-5.39 s: the visitor (onset 4.92 s) under the answer's echo; her frames at
# 5.11 and 5.39 s, each louder than the frame before, were over the bar, and 5.39 paused it.
S2801_080_VISITOR = [
    (-38.95, -25.04), (-30.2, -17.39), (-28.07, -16.69), (-26.52, -16.63), (-24.01, -20.23),
    (-26.21, -20.46), (-28.96, -20.89), (-31.23, -22.26), (-33.53, -24.52), (-38.09, -26.96),
    (-36.53, -24.98), (-34.33, -23.76), (-34.46, -23.06), (-31.3, -22.96), (-25.98, -20.51),
    (-23.93, -17.53), (-25.34, -16.7), (-22.9, -17.84), (-22.48, -20.29),
]  # fmt: skip


def learned_mic(echo_return_db: float) -> Mic:
    """Lined up, the room known, the echo return learned at ``echo_return_db``."""
    mic = room_mic()
    assert over(mic, [(-12.0 + echo_return_db, -12.0)] * ECHO_LEARN_FRAMES) == []
    assert mic.endpointer.echo_return_db == pytest.approx(echo_return_db, abs=0.05)
    return mic


def suspected(mic: Mic, pairs: list[tuple[float, float]]) -> list[int]:
    """``suspected_speech_ms`` after each of ``pairs`` (microphone dBFS, lined-up reference)."""
    out = []
    for pair in pairs:
        over(mic, [pair])
        out.append(mic.endpointer.suspected_speech_ms)
    return out


@pytest.mark.parametrize(
    ("frames", "echo_return_db"), [(S2451_074, -5.07), (S2801_080_ANSWER, -10.08)]
)
def test_the_echo_at_a_word_end_does_not_pause_the_answer(
    frames: list[tuple[float, float]], echo_return_db: float
) -> None:
    """Both paused the answer on main 995c432 (two frames over the bar: 40 ms suspected); with
    the bar held a frame where the microphone did not get louder, no frame counts."""
    mic = learned_mic(echo_return_db)
    assert suspected(mic, frames) == [0] * len(frames)


def test_the_visitor_under_the_echo_pauses_the_answer_on_the_same_frame() -> None:
    """Her two loud frames each rose over the frame before (+2.5 and +0.4 dB): judged as before,
    the answer pauses on the same frame (a bar held on every falling frame put both under it)."""
    mic = learned_mic(-10.08)
    got = suspected(mic, S2801_080_VISITOR)
    assert got[4] == 20  # 5.11 s
    assert got[-1] >= SETTINGS.barge_in_pause_ms  # 5.39 s
    assert max(got[:-1]) < SETTINGS.barge_in_pause_ms


def test_a_visitor_no_louder_as_the_answer_stops_waits_a_frame_at_most() -> None:
    """A visitor at -22 dBFS, 0.1 dB quieter each frame, under an answer at -10 (echo -22,
    return -12 dB): when the answer stops, the envelope falls 4.8 dB a frame; her frames, no
    louder than the ones before, are judged by the frame before's reference: the answer pauses
    one frame later than by the frame's own (the third frame instead of the second), not more."""
    mic = learned_mic(-12.0)
    assert suspected(mic, [(-22.0 - 0.1 * k, -10.0) for k in range(5)]) == [0] * 5
    got = suspected(mic, [(-22.5 - 0.1 * k, -80.0) for k in range(4)])
    assert got[:3] == [0, 0, 20] and got[3] >= SETTINGS.barge_in_pause_ms


# G2 s2611 mix 087 at -6 dB, 5.13-5.43 s (echo return -1.3 dB): the answer falls silent under
# the visitor; at 5.43 s the absolute minimum is relaxed (FLOOR_OVER_ECHO_DB) by the frame's echo.
S2611_087_SILENCING = [
    (-20.27, -16.28), (-21.15, -17.82), (-21.81, -21.62), (-27.75, -25.92), (-27.2, -25.71),
    (-25.81, -20.88), (-22.54, -19.96), (-28.78, -21.86), (-29.95, -26.94), (-26.09, -30.07), (-28.39, -39.55), (-30.32, -48.26),
    (-28.36, -56.21), (-32.6, -61.02), (-31.72, -66.32), (-33.31, -59.01),
]  # fmt: skip


def test_the_minimums_relaxation_is_judged_by_the_frames_own_echo() -> None:
    """Held there too, the frame before's echo (-54.1 - 1.3 + 26 dB) kept the minimum at -30
    dBFS and the visitor's frame at -33.3 dBFS under it: that barge-in came 40 ms later."""
    mic = learned_mic(-1.3)
    over(mic, S2611_087_SILENCING)
    guard = mic.endpointer
    relaxed = guard._echo_ref_dbfs + guard.echo_return_db + echo_guard.FLOOR_OVER_ECHO_DB
    assert -36.0 < relaxed < -33.31 < SETTINGS.barge_in_min_level_dbfs
    assert guard._guard_floor_dbfs(guard._echo_ref_dbfs) == pytest.approx(relaxed)


def test_the_hold_is_for_a_frame_that_got_no_louder() -> None:
    assert echo_guard.HELD_BAR_MAX_RISE_DB == 0.0

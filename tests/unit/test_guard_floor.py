"""The half-duplex guard's absolute minimum (``vad.barge_in_min_level_dbfs``) where the answer is
near-silent (``kiosk.core.echo_guard.FLOOR_OVER_ECHO_DB`` / ``FLOOR_RELAX_DB``): the minimum is
for the raw echo's bursts; a frame far over the lined-up echo needs up to 6 dB less.

Through PulseAudio (held-out seed 351 mix 081, -12 dB echo) a quiet visitor's first syllable was
loud for two frames, -28.8 and -32.3 dBFS, over an answer at -63 to -67 dBFS: the second fell under
the -30 dBFS minimum, one frame did not pause the answer, and the pause waited 200 ms for her next
syllable. Frames come from the scripted ``Mic`` of test_endpointing (voiced when non-zero).
"""

from __future__ import annotations

from kiosk.core.echo_guard import FLOOR_OVER_ECHO_DB, FLOOR_RELAX_DB
from kiosk.core.endpointing import ECHO_LEARN_FRAMES
from tests.unit.test_endpointing import SETTINGS
from tests.unit.test_guard_lined_up import over, room_mic

NEAR_SILENT_REF = -65.0  # the answer between two sentences (mix 081: -63 to -67 dBFS)
SYLLABLE = [-28.8, -32.3]  # her first syllable's two loud-ish frames, as the grid fell


def answer_then_quiet(quiet_ref: float = NEAR_SILENT_REF, raw_guard: bool = False):  # type: ignore[no-untyped-def]
    mic = room_mic()
    if raw_guard:  # the raw microphone beside a canceller not yet trusted (kiosk.audio.raw_guard)
        mic.endpointer.guard_min_level_dbfs = SETTINGS.barge_in_min_level_dbfs
    over(mic, [(-22.0, -10.0)] * ECHO_LEARN_FRAMES)  # the echo comes back 12 dB under the answer
    assert mic.endpointer.echo_return_db is not None
    over(mic, [(-70.0, quiet_ref)] * 20)  # then 400 ms near-silent: the envelope has decayed
    assert mic.endpointer.suspected_speech_ms == 0
    return mic


def test_a_quiet_syllable_far_over_a_near_silent_answer_pauses_it() -> None:
    mic = answer_then_quiet()
    over(mic, [(level, NEAR_SILENT_REF) for level in SYLLABLE])
    assert mic.endpointer.suspected_speech_ms == 2 * 20  # paused (vad.barge_in_pause_ms)


def test_the_minimum_holds_where_the_echo_could_be_near_it() -> None:
    """Speaking at -40 dBFS the answer's echo is at -52: within ``FLOOR_OVER_ECHO_DB`` of the
    syllable's frames, so the -30 dBFS minimum stands and one frame does not pause it."""
    ref = -40.0
    assert ref - 12.0 + FLOOR_OVER_ECHO_DB > SETTINGS.barge_in_min_level_dbfs
    mic = answer_then_quiet(ref)
    over(mic, [(level, ref) for level in SYLLABLE])
    assert mic.endpointer.suspected_speech_ms == 20


def test_never_more_than_the_relaxation_under_the_minimum() -> None:
    mic = answer_then_quiet()
    under = SETTINGS.barge_in_min_level_dbfs - FLOOR_RELAX_DB - 0.5
    over(mic, [(under, NEAR_SILENT_REF)] * 5)
    assert mic.endpointer.suspected_speech_ms == 0


def test_beside_a_canceller_the_raw_guards_minimum_is_kept() -> None:
    mic = answer_then_quiet(raw_guard=True)
    over(mic, [(level, NEAR_SILENT_REF) for level in SYLLABLE])
    assert mic.endpointer.suspected_speech_ms == 20

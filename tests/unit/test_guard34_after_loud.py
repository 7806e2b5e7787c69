"""The guard per band right after a loud frame (helper guard34, traced through PulseAudio): a
quiet visitor under the answer's echo gets one frame over it where her voice fills bands the
answer leaves quiet, and the frame after it often has only one band over its bar, or falls a few
dB under the absolute minimum (used seed 371 mix 084 at -12 dB: 3 bands at +377 ms, one at
+397, the next loud frame at +517: paused 537 ms after her onset; seed 511 mix 082 at -6 dB:
100-300 Hz +11 dB at +294 ms, then +7.7 dB at -33.6 dBFS, the next at +414: 434 ms). Right after
a loud frame of the same voiced run, one band learned from enough frames over its bar counts
(from ``BAND_AFTER_LOUD_UNDER_MIN_DB`` under the minimum); anywhere else it does not.

Frames and band levels as in test_guard_bands (the scripted ``Mic``; bands given as data).
"""

from __future__ import annotations

from kiosk.config import VadSettings
from kiosk.core.echo_bands import BANDS_OVER
from kiosk.core.echo_guard import BAND_AFTER_LOUD_UNDER_MIN_DB, BAND_LEVEL_UNDER_MIN_DB
from tests.unit.test_endpointing import Mic
from tests.unit.test_guard_bands import ANSWER, ECHO_DB, VISITOR, add, feed, learned_mic, total
from tests.unit.test_guard_lined_up import ROOM_DBFS

MARGIN_DB = VadSettings().barge_in_margin_db
MINIMUM_DBFS = VadSettings().barge_in_min_level_dbfs
ECHO = [a + ECHO_DB for a in ANSWER]
# Band 4 (the answer quiet there, nothing learned: its bar is -51 dBFS) 6 dB over its bar: under
# BAND_ALONE_OVER_DB, and one band, not BANDS_OVER.
ONE = add(ECHO, [-70.0, -70.0, -60.0, -50.0, -45.0, -70.0, -70.0, -70.0])


def test_one_band_over_its_bar_right_after_a_loud_frame_pauses_the_answer() -> None:
    """Her frame over the echo in three bands, then one band 6 dB over its bar: on 7ce8bbf the
    second did not count (suspicion 20 ms, no pause). Anywhere else that frame is the echo's: alone,
    or with a frame of the echo alone between it and the loud one."""
    mic = learned_mic()
    assert mic.endpointer.bands.bands_over(ONE, MARGIN_DB, ROOM_DBFS, False) == 1 < BANDS_OVER
    for _ in range(3):
        assert feed(mic, ECHO, ANSWER) == []
        assert feed(mic, ONE, ANSWER) == []
        assert mic.endpointer.suspected_speech_ms == 0
    feed(mic, add(ECHO, VISITOR), ANSWER)
    feed(mic, ECHO, ANSWER)
    feed(mic, ONE, ANSWER)
    assert mic.endpointer.suspected_speech_ms == 20  # (only the loud one)

    mic = learned_mic()
    feed(mic, add(ECHO, VISITOR), ANSWER)
    assert mic.endpointer.suspected_speech_ms == 20
    feed(mic, ONE, ANSWER)
    assert mic.endpointer.suspected_speech_ms == 40  # vad.barge_in_pause_ms: paused


def soft_answer_mic() -> tuple[Mic, list[float], list[float]]:
    """Learned on the answer at full level; now it plays 14 dB softer (its envelope settled):
    its echo -38 dBFS, the whole-frame bar the absolute minimum."""
    mic = learned_mic()
    ref = [a - 14.0 for a in ANSWER]
    echo = [a + ECHO_DB for a in ref]
    for _ in range(10):
        assert feed(mic, echo, ref) == []
    return mic, ref, echo


def test_a_frame_just_under_the_minimum_right_after_a_loud_frame_counts() -> None:
    """Her first frame loud over the minimum, the next 4 dB under it but far over its bar in one
    band: on 7ce8bbf bands were judged only from BAND_LEVEL_UNDER_MIN_DB under the minimum. Alone
    (no loud frame before it) that frame still does not count, though band 4 is
    BAND_ALONE_OVER_DB over its bar."""
    mic, ref, echo = soft_answer_mic()
    quiet = add(echo, [-70.0] * 4 + [-35.0] + [-70.0] * 3)
    level = total(quiet)
    assert MINIMUM_DBFS - BAND_AFTER_LOUD_UNDER_MIN_DB <= level < MINIMUM_DBFS - BAND_LEVEL_UNDER_MIN_DB
    assert mic.endpointer.bands.bands_over(quiet, MARGIN_DB, ROOM_DBFS, False) == 1
    for _ in range(3):
        feed(mic, quiet, ref)
        assert mic.endpointer.suspected_speech_ms == 0
    feed(mic, echo, ref)
    loud = add(echo, [-70.0] * 4 + [-28.0] + [-70.0] * 3)
    assert total(loud) >= MINIMUM_DBFS
    feed(mic, loud, ref)
    assert mic.endpointer.suspected_speech_ms == 20
    feed(mic, quiet, ref)
    assert mic.endpointer.suspected_speech_ms == 40

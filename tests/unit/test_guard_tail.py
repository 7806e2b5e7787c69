"""The guard per band at -6 dB through a real sound server (held-out seed 441 mix 077, helper
guardtail32): the lag was relearned ~1 s into the answer and three bands learned their echo
return from one or two frames, 9-13 dB under the whole frame's (sparse bands); the echo sat over
those bands' bars, most at phrase ends, where the reference falls faster than the room's tail,
and two of them paused the answer again and again. A sparse band is now judged as if its return
were at least the frame's plus ``BAND_SPARSE_UNDER_FRAME_DB``, and a band whose speaker level fell
``BAND_TAIL_FALL_DB`` under its envelope ``BAND_TAIL_EXTRA_DB`` louder.

Frames and band levels as in test_guard_bands (the scripted ``Mic``; bands given as data).
"""

from __future__ import annotations

import pytest

from kiosk.core.echo_bands import BAND_SPARSE_UNDER_FRAME_DB, BAND_TAIL_EXTRA_DB, BANDS_OVER
from kiosk.core.endpointing import ECHO_LEARN_FRAMES, Onset
from tests.unit.test_endpointing import Mic
from tests.unit.test_guard_bands import ANSWER, ECHO_DB, add, feed, total
from tests.unit.test_guard_lined_up import ROOM_DBFS, room_mic

# The answer's sibilant: bands 5-6 (2.2-4.5 kHz), heard once while the echo was learned.
HISS = ANSWER[:5] + [-42.0, -42.0, -75.0]
QUIET = ANSWER[:5] + [-75.0] * 3
ONCE_UNDER_DB = -25.0  # that one frame's echo there (the room's response at that instant)
# A visitor's fricatives and upper formants: bands 4-6.
VISITOR = [-70.0, -70.0, -60.0, -50.0, -36.0, -36.0, -36.0, -60.0]


def sparse_mic() -> Mic:
    """Bands 5 and 6 learned from one frame, 13 dB under the frame's return."""
    mic = room_mic()
    first = [a + ECHO_DB for a in ANSWER[:5]] + [-42.0 + ONCE_UNDER_DB] * 2 + [-75.0]
    feed(mic, first, HISS)
    for _ in range(1, ECHO_LEARN_FRAMES):
        assert feed(mic, [a + ECHO_DB for a in QUIET], QUIET) == []
    bands = mic.endpointer.bands
    assert bands.returns[5:7] == pytest.approx([ONCE_UNDER_DB] * 2, abs=0.01)
    assert bands.sparse[5] and bands.sparse[6]
    assert mic.endpointer.echo_return_db == pytest.approx(ECHO_DB, abs=0.5)
    return mic


def test_the_echo_at_the_frames_return_in_two_sparse_bands_does_not_pause_the_answer() -> None:
    """Later the answer hisses again and its echo there comes at the room's usual return (the
    whole frame's): 13 dB over what the one frame taught those bands, 4 dB over their old bars
    (the hiss + -25 dB + 9 dB of margin). Two bands over paused the answer within two frames
    (8163faf); judged with the frame's return - 6 dB, neither band is over."""
    mic = sparse_mic()
    echo = [a + ECHO_DB for a in HISS]
    assert total(echo) < total(HISS) + ECHO_DB + 1.0  # the whole frame: the echo alone
    for _ in range(6):
        assert feed(mic, echo, HISS) == []
        assert mic.endpointer.suspected_speech_ms == 0
    bands, margin = mic.endpointer.bands, 6.0
    # Without the frame's return (as before): both bands over.
    assert bands.bands_over(echo, margin, ROOM_DBFS, False) == 2 >= BANDS_OVER
    assert bands.bands_over(echo, margin, ROOM_DBFS, False, ECHO_DB) == 0


def test_the_echos_tail_at_a_phrase_end_in_sparse_bands_does_not_pause_the_answer() -> None:
    """At a phrase end the reference in those bands falls away at once, while the room's echo
    there holds its level for a frame (the room's tail and the echo's lag inside the 20 ms
    frame: 441/077 at 5.28 s, the reference 14 dB down, the microphone as before), then falls
    ~6 dB a frame; the envelope falls 4.8 dB a frame (vad.echo_tail_ms 250 ms)."""
    mic = sparse_mic()
    for _ in range(3):
        assert feed(mic, [a + ECHO_DB for a in HISS], HISS) == []
    for k in range(6):
        tail = [a + ECHO_DB - (6.0 * k if 5 <= b <= 6 else 0.0) for b, a in enumerate(HISS)]
        assert feed(mic, tail, QUIET) == []
        assert mic.endpointer.suspected_speech_ms == 0, k


@pytest.mark.parametrize("phrase_end", [False, True])
def test_a_visitor_in_the_sparse_bands_still_pauses_the_answer_within_two_frames(
    phrase_end: bool,
) -> None:
    """A visitor's fricatives (bands 4-6, -36 dBFS) while the answer hisses, or as it falls
    silent there: over the raised bars of bands 5-6 by 9-15 dB, band 4 (never learned) too, the
    whole frame not (under the whole-frame bar): the answer pauses within two frames."""
    mic = sparse_mic()
    for _ in range(3):
        assert feed(mic, [a + ECHO_DB for a in HISS], HISS) == []
    answer = QUIET if phrase_end else HISS
    heard = add([a + ECHO_DB for a in answer], VISITOR)
    assert total(heard) < total(answer) + ECHO_DB + 6.0
    for _ in range(2):
        feed(mic, heard, answer)
    assert mic.endpointer.suspected_speech_ms == 2 * 20
    events: list[object] = []
    for _ in range(15):
        events += feed(mic, heard, answer)
    assert any(isinstance(e, Onset) for e in events)


def test_the_allowances_are_small() -> None:
    """A sparse band may be quieter than the whole frame, not louder; the tail adds a few dB."""
    assert -9.0 <= BAND_SPARSE_UNDER_FRAME_DB < 0 < BAND_TAIL_EXTRA_DB <= 4.0

"""The half-duplex guard per band (:mod:`kiosk.core.echo_bands`, fed by
:class:`kiosk.audio.echo_level.EchoLevelTap` once the reference is lined up): each band of a
frame is judged against what the speaker plays in it plus the echo return learned in that
band, so a visitor who fills bands the answer leaves quiet is heard although the whole frame
is barely louder than the echo, and the answer's own echo still never pauses it.

Frames come from the scripted ``Mic`` of test_endpointing (voiced when non-zero; the level is
the frame's RMS); band levels are given as data, as the tap gives them.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.echo_bands import BAND_ALONE_OVER_DB, BAND_LEARN_FRAMES, BANDS_OVER
from kiosk.core.endpointing import ECHO_LEARN_FRAMES, Endpointer, Onset
from tests.unit.test_endpointing import SETTINGS, Mic, is_speech
from tests.unit.test_guard_lined_up import ROOM_DBFS, room_mic

ECHO_DB = -12.0
# The answer at one instant: its energy under 1 kHz (a vowel), nothing above 2 kHz.
ANSWER = [-16.0, -16.0, -20.0, -30.0, -60.0, -60.0, -70.0, -75.0]


def total(bands: list[float]) -> float:
    """The whole frame's level from its bands' (they add up in power)."""
    return 10 * math.log10(sum(10 ** (b / 10) for b in bands))


def add(a: list[float], b: list[float]) -> list[float]:
    return [total([x, y]) for x, y in zip(a, b, strict=True)]


def feed(mic: Mic, mic_bands: list[float], ref_bands: list[float], bands: bool = True) -> list[object]:
    """One guarded frame: the microphone's and the lined-up speaker's levels per band."""
    mic.endpointer.guarded = True
    data = (mic_bands, ref_bands) if bands else None
    return mic.endpointer.process(mic.frame(total(mic_bands)), total(ref_bands), None, data)


def learned_mic() -> Mic:
    mic = room_mic()
    echo = [a + ECHO_DB for a in ANSWER]
    for _ in range(ECHO_LEARN_FRAMES):
        assert feed(mic, echo, ANSWER) == []
    returns = mic.endpointer.bands.returns
    assert returns[:4] == pytest.approx([ECHO_DB] * 4, abs=0.01)
    assert returns[4:] == [None] * 4  # the answer never sounded there: nothing learned
    return mic


# A visitor's fricatives and upper formants: bands 4-6, where the answer is quiet now.
VISITOR = [-70.0, -70.0, -60.0, -50.0, -36.0, -36.0, -36.0, -60.0]


@pytest.mark.parametrize("bands", [True, False])
def test_a_visitor_in_bands_the_answer_leaves_quiet_pauses_it(bands: bool) -> None:
    """The whole frame is ~1 dB over the echo (the whole-frame bar is 6 dB over it): only the
    bands hear the visitor, and the answer pauses within two frames."""
    mic = learned_mic()
    heard = add([a + ECHO_DB for a in ANSWER], VISITOR)
    assert total(heard) < total(ANSWER) + ECHO_DB + SETTINGS.barge_in_margin_db
    assert total(heard) >= SETTINGS.barge_in_min_level_dbfs
    for _ in range(2):
        feed(mic, heard, ANSWER, bands)
    assert mic.endpointer.suspected_speech_ms == (2 * 20 if bands else 0)
    events: list[object] = []
    for _ in range(10):
        events += feed(mic, heard, ANSWER, bands)
    assert any(isinstance(e, Onset) for e in events) is bands  # a proved barge-in


def test_one_band_just_over_its_bar_is_not_enough() -> None:
    """Band 4 (nothing learned: the answer's -60 dBFS there is its bar's base) 6 dB over its
    bar, under BAND_ALONE_OVER_DB: the echo's own frames do that now and then."""
    mic = learned_mic()
    one = [-70.0, -70.0, -60.0, -50.0, -45.0, -70.0, -70.0, -70.0]
    heard = add([a + ECHO_DB for a in ANSWER], one)
    assert mic.endpointer.bands.bands_over(heard, 6.0, ROOM_DBFS, False) == 1 < BANDS_OVER
    for _ in range(5):
        assert feed(mic, heard, ANSWER) == []
    assert mic.endpointer.suspected_speech_ms == 0


def test_one_band_far_over_its_bar_pauses_the_answer() -> None:
    """A visitor's voice in one band the answer leaves quiet, BAND_ALONE_OVER_DB over its bar
    there (-36 dBFS against a bar of -51): two such frames pause the answer, before a second
    band follows (the old rule waited for one)."""
    mic = learned_mic()
    one = [-70.0, -70.0, -60.0, -50.0, -36.0, -70.0, -70.0, -70.0]
    heard = add([a + ECHO_DB for a in ANSWER], one)
    assert mic.endpointer.bands.bands_over(heard, 6.0, ROOM_DBFS, False) == 1 < BANDS_OVER
    for _ in range(2):
        assert feed(mic, heard, ANSWER) == []
    assert mic.endpointer.suspected_speech_ms == 2 * 20


def test_a_band_learned_as_echo_still_hears_the_visitor_where_the_answer_falls_quiet() -> None:
    """Between two of the answer's sounds its low bands fall away (the envelope decays with
    the room's tail): a visitor's vowel there is over the bar, though the frame is not."""
    mic = learned_mic()
    gap = [-16.0, -45.0, -50.0, -30.0, -60.0, -60.0, -70.0, -75.0]
    for _ in range(4):  # the answer's envelope falls with the room's tail
        feed(mic, [a + ECHO_DB for a in gap], gap)
    vowel = [-60.0, -30.0, -30.0, -60.0, -70.0, -70.0, -70.0, -75.0]
    heard = add([a + ECHO_DB for a in gap], vowel)
    assert total(heard) < total(gap) + ECHO_DB + SETTINGS.barge_in_margin_db
    for _ in range(2):
        feed(mic, heard, gap)
    assert mic.endpointer.suspected_speech_ms == 2 * 20


def test_relearning_from_the_lined_up_history_learns_the_bands_too() -> None:
    mic = room_mic()
    echo = [a + ECHO_DB for a in ANSWER]
    heard = [(total(echo), total(ANSWER))] * ECHO_LEARN_FRAMES
    mic.endpointer.relearn_echo(heard, [(echo, ANSWER)] * ECHO_LEARN_FRAMES)
    assert mic.endpointer.echo_return_db == pytest.approx(ECHO_DB, abs=0.01)
    assert mic.endpointer.bands.returns[:4] == pytest.approx([ECHO_DB] * 4, abs=0.01)
    visitor = add(echo, VISITOR)
    for _ in range(2):
        feed(mic, visitor, ANSWER)
    assert mic.endpointer.suspected_speech_ms == 2 * 20
    mic.endpointer.echo_path_changed()
    assert mic.endpointer.bands.returns == []


def test_a_band_the_answer_sounds_in_only_later_goes_on_learning_to_the_periods_end() -> None:
    """Heard once in the period's first BAND_LEARN_FRAMES frames (its echo 25 dB under it then),
    the band goes on learning from the frames judged echo after them: the answer's later hiss
    teaches its true return, and its echo there then never pauses the answer (two such bands
    learned from one or two frames paused it at -6 dB: fresh tuning seeds 3, 7, 10)."""
    mic = room_mic()
    hiss = ANSWER[:5] + [-42.0, -42.0, -75.0]
    quiet = ANSWER[:5] + [-75.0] * 3
    echo = [a + ECHO_DB for a in hiss]
    feed(mic, echo[:5] + [-67.0, -67.0, -75.0 + ECHO_DB], hiss)
    for k in range(1, ECHO_LEARN_FRAMES):
        answer = hiss if k >= BAND_LEARN_FRAMES + 2 else quiet
        assert feed(mic, [a + ECHO_DB for a in answer], answer) == []
    assert mic.endpointer.bands.returns[5:7] == pytest.approx([ECHO_DB] * 2, abs=0.01)
    for _ in range(5):
        assert feed(mic, echo, hiss) == []
        assert mic.endpointer.suspected_speech_ms == 0


def test_one_band_far_over_a_return_learned_from_too_few_frames_is_not_enough() -> None:
    """Band 5 learned its return from one frame only (the answer sounded there once, its echo
    25 dB under it then): however far over that bar, it counts only beside another band."""
    mic = room_mic()
    hiss = ANSWER[:5] + [-42.0, -75.0, -75.0]
    quiet = ANSWER[:5] + [-75.0] * 3
    feed(mic, [a + ECHO_DB for a in ANSWER[:5]] + [-67.0, -75.0, -75.0], hiss)
    for _ in range(1, ECHO_LEARN_FRAMES):
        assert feed(mic, [a + ECHO_DB for a in quiet], quiet) == []
    assert mic.endpointer.bands.returns[5] == pytest.approx(-25.0, abs=0.01)
    assert mic.endpointer.bands.sparse[5]
    bar = -42.0 - 25.0 + 6.0 + 3.0  # the hiss's envelope + its return + the margins
    far = [a + ECHO_DB for a in ANSWER[:5]] + [bar + BAND_ALONE_OVER_DB + 3.0, -75.0, -75.0]
    assert mic.endpointer.bands.bands_over(far, 6.0, ROOM_DBFS, False) == 1
    for _ in range(5):
        assert feed(mic, far, hiss) == []
        assert mic.endpointer.suspected_speech_ms == 0


# Silence, levels near where a band starts to teach its return (the room + 20 dB), and loud.
band_level = st.one_of(
    st.sampled_from([-75.0, -55.0, -51.0, -10.0]), st.floats(min_value=-60.0, max_value=-10.0)
)
spectrum = st.lists(band_level, min_size=8, max_size=8)
room_response = st.lists(st.floats(min_value=-14.0, max_value=-10.0), min_size=8, max_size=8)
jitter = st.lists(st.floats(min_value=-3.0, max_value=0.0), min_size=8, max_size=8)
silent_at_first = st.lists(st.booleans(), min_size=8, max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    room_response,
    silent_at_first,
    st.lists(st.tuples(spectrum, jitter), min_size=ECHO_LEARN_FRAMES + 10, max_size=120),
)
def test_the_answers_own_echo_never_pauses_it_whatever_its_bands(
    returns: list[float], silent: list[bool], frames: list[tuple[list[float], list[float]]]
) -> None:
    """Whatever the answer plays in each band from frame to frame (some bands only after the
    learning period: nothing was learned there), its echo there (the room's return in that
    band, a few dB less now and then, over the room's noise) never pauses it nor opens a
    turn: not in the learning period, not after."""
    mic = room_mic()
    room_band = ROOM_DBFS - 9.0  # the room's level spread over 8 bands
    for k, (ref, jit) in enumerate(frames):
        if k < 2 * ECHO_LEARN_FRAMES:
            ref = [-75.0 if quiet else r for r, quiet in zip(ref, silent, strict=True)]
        echo = [r + g + j for r, g, j in zip(ref, returns, jit, strict=True)]
        heard = add(echo, [room_band] * 8)
        assert feed(mic, heard, ref) == []
        assert mic.endpointer.suspected_speech_ms == 0


def test_before_the_room_is_known_the_microphones_own_noise_in_a_band_is_no_visitor() -> None:
    """A kiosk whose first audio was a question answers before it heard the room alone (the
    frames that led up to the onset are not the room), so the room's level is unknown. In the
    bands the answer leaves empty the microphone hears only its own noise, ~75 dBFS down, while
    the speaker's envelope there decays further at every frame: judged by that envelope alone,
    the noise was over the bar in 3-5 bands and the answer paused itself every ~250 ms (the e2e
    quiet-stop test, since the onset's frames are kept out of the room)."""
    mic = Mic(Endpointer(is_speech, SETTINGS, 20))
    mic.endpointer.reference_aligned = True
    assert mic.endpointer.noise_floor_dbfs is None
    self_noise = [-75.0] * 8
    for k in range(60):
        # A vowel under 1 kHz; above it the speaker's level, faint while the echo is learned,
        # later falls away further as its tail decays.
        answer = ANSWER[:4] + [-85.0 if k < 2 * ECHO_LEARN_FRAMES else -95.0 - 5 * (k % 4)] * 4
        heard = add([a + ECHO_DB for a in answer], self_noise)
        assert feed(mic, heard, answer) == []
        assert mic.endpointer.suspected_speech_ms == 0, k
    assert mic.endpointer.noise_floor_dbfs is None  # still: every frame was guarded

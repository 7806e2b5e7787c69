"""The raw guard beside an untrusted SpeexDSP canceller (kiosk.audio.raw_guard) called echo frames
loud that the canceller was taking most of (stop 40, replayed pulse traces: a raw guard started
afresh, its echo return learned on a few frames, then the answer's echo rose over it; the filter
took 7.1-13.3 dB of those frames and the warm-up answer paused itself). A frame of which the
canceller takes ``RAW_CANCELLED_DB`` or more is the echo; a visitor passes the filter, so her frames
keep what the filter could not take (<= 4.8 dB of them on the rig's traces) and still pause."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.raw_guard import RAW_CANCELLED_DB, RawMicGuard, cancelled_db
from kiosk.audio.wav import read_wav_mono
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from kiosk.core.levels import frame_dbfs

from .test_echo_cancel import FIXTURES, FRAME, RATE, db, i16, speech
from .test_raw_guard_first_answer import _Speaker  # (a playback buffer as the tap sees it)


class _Silent:
    """The main endpointer's detector (it never hears anything here: the raw guard decides)."""

    provisional = False

    def __call__(self, frame: bytes) -> bool:
        return False


def _answer(taken_db: float | None, visitor_at_s: float | None = None, rise_at_s: float | None = 2.0):
    """An answer at -14 dBFS whose raw echo returns at -18 dB, rising 12 dB at ``rise_at_s``
    (the raw guard learned the quieter one), in a -60 dBFS room; a visitor as loud as the
    louder echo from ``visitor_at_s``. Beside the raw guard a canceller that takes ``taken_db``
    of the echo and nothing of the visitor (its levels handed over per frame; None: it tells
    none). The answer's pauses (s) as the raw guard pauses it."""
    seconds = 4.0
    far = speech(seconds)
    far *= 10 ** ((-14.0 + 20 * np.log10(32768) - db(far)) / 20)
    gain = np.full(far.size, 10 ** (-18 / 20))
    if rise_at_s is not None:
        gain[int(rise_at_s * RATE) :] = 10 ** (-6 / 20)
    echo = far * gain
    noise = np.random.default_rng(1).standard_normal(far.size) * 10 ** (-60 / 20) * 32768
    visitor = np.zeros(far.size)
    if visitor_at_s is not None:
        voice = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", RATE).astype(np.float64)
        at = int(visitor_at_s * RATE)
        voice = voice[: far.size - at]
        voice *= 10 ** ((db(echo[at:]) - db(voice)) / 20)
        visitor[at : at + voice.size] = voice
    mic = i16(echo + noise + visitor)
    left = echo * (0.0 if taken_db is None else 10 ** (-taken_db / 20)) + noise + visitor  # linear output
    settings = VadSettings()
    now = [0.0]
    main = Endpointer(_Silent(), settings, 20)
    main.echo_relearn = True
    guard = RawMicGuard(_Speaker(), lambda: now[0], lambda: 0.0, 20, settings)
    for k in range(100):  # the room alone, 2 s
        now[0] = -2.0 + k * 0.02
        quiet = i16(noise[k * FRAME : (k + 1) * FRAME]).tobytes()
        guard.hear(quiet, now[0], False, main)
        main.process(quiet, None)
    pauses, held = [], False
    for k in range(far.size // FRAME):
        now[0] = k * 0.02
        span = slice(k * FRAME, (k + 1) * FRAME)
        guard.tap.reference.played(i16(far[span]).tobytes())
        raw = mic[span].tobytes()
        levels = None
        if taken_db is not None:
            levels = (frame_dbfs(i16(left[span]).tobytes()), frame_dbfs(i16(echo[span]).tobytes()), frame_dbfs(raw))
        guard.hear(raw, now[0], True, main, levels)
        pause = guard.suspected_speech_ms >= settings.barge_in_pause_ms
        if pause and not held:
            pauses.append(round(k * 0.02, 2))
        held = pause
    guard.close()
    return pauses


def test_the_echo_rising_over_the_raw_guards_return_pauses_the_answer_without_the_cancellers_levels():
    """The case (as stop 40's traces): the raw guard calls the louder echo loud, and pauses."""
    pauses = _answer(None)
    assert pauses and 2.0 <= pauses[0] < 2.5, pauses
    assert _answer(None, rise_at_s=None) == []  # (the echo alone at the return it learned: no pause)


def test_an_echo_frame_the_canceller_takes_most_of_is_not_loud_to_the_raw_guard():
    """The canceller takes 20 dB (or just RAW_CANCELLED_DB) of the louder echo: no pause (before:
    a pause 2.0-2.5 s in); taking 3 dB of it, the raw guard pauses as before."""
    assert _answer(20.0) == []  # old: [2.0x]
    assert _answer(RAW_CANCELLED_DB + 0.5) == []
    pauses = _answer(3.0)
    assert pauses and 2.0 <= pauses[0] < 2.5, pauses


@pytest.mark.parametrize("taken_db", [None, 20.0])
def test_a_visitor_as_loud_as_the_echo_still_pauses_the_answer_within_100_ms(taken_db):
    """A visitor as loud as the (louder) echo, 3 s in: the canceller takes the echo, not her (at
    most ~3 dB of her frames); the raw guard pauses the answer within 100 ms of her onset, with
    the canceller's levels or without."""
    pauses = _answer(taken_db, visitor_at_s=3.0, rise_at_s=None)
    assert pauses and 3.0 <= pauses[0] <= 3.1, pauses


def test_what_the_canceller_took_is_read_from_its_three_levels():
    assert cancelled_db((-40.0, -30.0, -28.0)) == 12.0
    assert cancelled_db((-40.0, -30.0)) is None  # (no microphone level told)
    assert cancelled_db(None) is None
    assert cancelled_db((-float("inf"), -30.0, -28.0)) is None  # (a silent linear output: not judged)

"""SpeexDSP behind a trusted filter, the filter's estimate not in the microphone: through
PulseAudio the answer paused itself where the echo came on a path the filter did not hold (a later
answer at -6 dB, fresh seed 2241 mix 074 at 15.14 s; s2261 mix 085's warm-up answer): the filter
took away its estimate, the microphone did not hold it, and the linear output stood over the
estimate (double talk's estimate path), anti-correlated with it and louder than the microphone
itself. The guard takes such a frame (the linear output correlated with the estimate at most
kiosk.core.echo_double_talk.ESTIMATE_APART_CORR, over 3 kHz no more than
ESTIMATE_APART_HIGH_OVER_DB over the estimate there) for the answer's own voice: not loud, no
double talk. (bench/results/echo44-2026-12-07.md)

A fake filter models a fixed echo path (3 ms after its reference); from ``CHANGE_S`` (the answer's
next word, after a short gap) the room's echo comes ``MOVE`` samples later than the filter models
for ``MOVED_S``: the estimate the filter subtracts is not in the microphone."""

from __future__ import annotations

import numpy as np

from kiosk.audio.echo_cancel import EchoCanceller
from kiosk.config import VadSettings
from kiosk.core import echo_double_talk as edt
from kiosk.core.endpointing import Endpointer

from .test_echo_cancel import FRAME, RATE, db, i16, speech
from .test_warm43_missed_echo import (
    LAG,
    MODELLED,
    _FirstOpinion,
    _her_voice,
    _ModelledPath,
    _Reference,
)

CHANGE_S = 2.0
GAP_S = 0.1
MOVE = 84  # samples (5.25 ms): the room's echo that much later than the filter models
MOVED_S = 0.2


def lobby(moved: bool, visitor_db: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """4 s of an answer at -14 dBFS with ``GAP_S`` of silence before its next word at
    ``CHANGE_S``; the microphone: its echo at ``MODELLED`` ``LAG`` after it (if ``moved``, ``MOVE``
    samples later for ``MOVED_S`` from that word) in a -60 dBFS room, and from the word's second
    frame a visitor ``visitor_db`` against the echo."""
    far = speech(4.0)
    far *= 10 ** ((-14.0 + 20 * np.log10(32768) - db(far)) / 20)
    at, gap = int(CHANGE_S * RATE), int(GAP_S * RATE)
    far[at - gap : at] = 0.0
    far16 = i16(far)
    padded = np.concatenate([np.zeros(LAG + MOVE), far16.astype(np.float64)])
    echo = MODELLED * padded[MOVE : MOVE + far.size]
    if moved:
        end = at + int(MOVED_S * RATE)
        echo[at:end] = MODELLED * padded[at:end]
    mic = echo + np.random.default_rng(1).standard_normal(far.size) * 10 ** (-60 / 20) * 32768
    if visitor_db is not None:
        on = at + FRAME
        mic[on:] += _her_voice(far.size - on, db(echo[on:]) + visitor_db)
    return far16, i16(mic)


def pauses(moved: bool, visitor_db: float | None = None) -> tuple[list[float], bool, int]:
    """The answer's pauses (s) behind the trusted canceller, whether it was trusted by
    ``CHANGE_S``, and the frames the estimate-apart cue cleared (0 where the code has none)."""
    far16, mic16 = lobby(moved, visitor_db)
    canceller = EchoCanceller(_Reference(far16), 20, _ModelledPath, align=False)  # type: ignore[arg-type]
    endpointer = Endpointer(_FirstOpinion(), settings := VadSettings(), 20)
    endpointer.echo_relearn = True
    cleared = [0]
    apart = getattr(endpointer, "_estimate_apart", None)
    if apart is not None:
        def counted() -> bool:
            got = apart()
            cleared[0] += got
            return got

        endpointer._estimate_apart = counted  # type: ignore[method-assign]
    room = i16(np.random.default_rng(2).standard_normal(FRAME) * 10 ** (-60 / 20) * 32768)
    for _ in range(100):  # the room alone, 2 s
        endpointer.process(room.tobytes(), None)
    got, held, trusted = [], False, False
    for k in range(far16.size // FRAME):
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.hearing does)
        frame = canceller.process(mic16[k * FRAME : (k + 1) * FRAME].tobytes(), k * 0.02)
        endpointer.guarded = True
        trusted = trusted or (k * 0.02 < CHANGE_S - GAP_S and endpointer.echo_cancelled_well)
        endpointer.process(  # (what kiosk.hearing hands it of a frame the canceller filtered)
            frame,
            canceller.reference_dbfs,
            linear=canceller.linear_levels,
            linear_pitch=canceller.linear_pitch,
            linear_high=canceller.linear_high_levels,
        )
        pause = endpointer.suspected_speech_ms >= settings.barge_in_pause_ms
        if pause and not held:
            got.append(round(k * 0.02, 2))
        held = pause
    canceller.close()
    return got, trusted, cleared[0]


def test_the_echo_on_the_path_the_filter_holds_does_not_pause_the_answer():
    got, trusted, cleared = pauses(moved=False)
    assert trusted and got == [] and cleared == 0


def test_an_echo_on_a_path_the_filter_does_not_hold_does_not_pause_the_answer():
    """5.25 ms later than the filter models for 0.2 s from the answer's next word: the estimate
    it subtracts is not in the microphone (main 76178ba: paused at the word, double talk's
    estimate path)."""
    got, trusted, cleared = pauses(moved=True)
    assert trusted and got == [], got
    assert cleared > 0


def test_a_visitor_as_loud_as_the_echo_still_pauses_the_answer_within_100_ms():
    for moved in (False, True):  # (over the echo the filter holds, or over the one it does not)
        got, trusted, _ = pauses(moved=moved, visitor_db=0.0)
        assert trusted and got and CHANGE_S <= got[0] <= CHANGE_S + 0.1, (moved, got)


def test_the_cue_needs_the_estimate_apart_and_the_high_band_within_its_bound():
    assert -1.0 < edt.ESTIMATE_APART_CORR < 0.0
    assert edt.ESTIMATE_APART_HIGH_OVER_DB < 15.0  # (under a visitor's consonant: echo_consonant)

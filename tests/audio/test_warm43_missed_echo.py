"""SpeexDSP behind a trusted filter, an echo louder than the filter models: through PulseAudio the
warm-up answer paused itself at its next word (kind A, used seed 1621 mix 080: a young filter, the
linear output 1.5-7.4 dB over its own echo estimate on two frames in a row: double talk's estimate
path). What the filter missed there is the reference's echo: a least-squares FIR on the reference
the filter was given explains nearly all of the linear output, frame after frame; a visitor's voice
it does not, or once. The guard takes such a row of frames for the answer's own voice (not loud, no
double talk: kiosk.core.echo_double_talk.MISSED_ECHO_FIT); the cleaned frame is the filter's.
(bench/results/warm43-2026-12-07.md)

A fake filter here models a fixed echo path (3 ms after its reference, as kiosk.audio.echo_delay
lines it up). At ``CHANGE_S`` the answer's next word begins, its first frame soft, and from there
the room's echo comes ``louder_db`` louder than the filter models."""

from __future__ import annotations

import numpy as np

from kiosk.audio.echo_cancel import EchoCanceller
from kiosk.audio.wav import read_wav_mono
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer

from .test_echo_cancel import FIXTURES, FRAME, RATE, _voiced, db, i16, speech

LAG = 48  # samples: the echo 3 ms after its reference
MODELLED = 10 ** (-12 / 20)  # the echo path the filter holds: -12 dB
CHANGE_S = 2.0
GAP_S = 0.1  # the pause before the answer's next word
SOFT_DB = -20.0  # the word's first frame against the rest of it
LOUDER_S = 0.2  # how long the echo stays louder than modelled (the filter then catches up)


class _FirstOpinion:
    """The crude energy detector of test_echo_cancel, as webrtcvad's quick first opinion."""

    provisional = False

    def __call__(self, frame: bytes) -> bool:
        self.provisional = _voiced(frame)
        return self.provisional


class _Reference:
    """The speaker's reference as the canceller takes it: one frame of ``far`` per call."""

    restamps = 0

    def __init__(self, far: np.ndarray) -> None:
        self.far, self.k = far, 0

    def clock(self) -> float:
        return self.k * 0.02

    def take_marked(self, start_s: float, n: int) -> tuple[bytes, bool]:
        block = self.far[self.k * n : (self.k + 1) * n]
        self.k += 1
        return block.tobytes(), False


class _ModelledPath:
    """A linear filter that holds the echo path ``MODELLED``, ``LAG`` after its reference."""

    def __init__(self, *_: int) -> None:
        self.history = np.zeros(LAG)
        self.linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        r = np.concatenate([self.history, np.frombuffer(ref, dtype=np.int16).astype(np.float64)])
        self.history = r[-LAG:]
        out = i16(np.frombuffer(mic, dtype=np.int16) - MODELLED * r[:FRAME]).tobytes()
        self.linear_output = out
        return out


def _her_voice(n: int, level_db: float) -> np.ndarray:
    visitor = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", RATE).astype(np.float64)
    start = next(i for i in range(0, visitor.size - FRAME, FRAME) if db(visitor[i : i + FRAME]) > db(visitor) - 6)
    visitor = np.tile(visitor[start:], 3)[:n]  # (from her first loud frame on)
    return visitor * 10 ** ((level_db - db(visitor)) / 20)


def lobby(louder_db: float, visitor_db: float | None = None, fits_once: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """4 s of an answer at -14 dBFS (the filter's reference), ``GAP_S`` of silence before its
    next word at ``CHANGE_S`` (that word's first frame ``SOFT_DB``), and the microphone: its echo
    at ``MODELLED``, for ``LOUDER_S`` from that word ``louder_db`` louder, in a -60 dBFS room; and from
    the word's second frame a visitor (another voice) ``visitor_db`` against the echo as modelled
    (her first frame, if ``fits_once``, the answer's echo again: a frame the reference explains)."""
    far = speech(4.0)
    far *= 10 ** ((-14.0 + 20 * np.log10(32768) - db(far)) / 20)
    at, gap = int(CHANGE_S * RATE), int(GAP_S * RATE)
    far[at - gap : at] = 0.0
    far[at : at + FRAME] *= 10 ** (SOFT_DB / 20)
    far16 = i16(far)
    echo = MODELLED * np.concatenate([np.zeros(LAG), far16.astype(np.float64)])[: far.size]
    modelled_db = db(echo[at + FRAME :])
    echo[at : at + int(LOUDER_S * RATE)] *= 10 ** (louder_db / 20)
    mic = echo + np.random.default_rng(1).standard_normal(far.size) * 10 ** (-60 / 20) * 32768
    if visitor_db is not None:
        on = at + FRAME
        her = _her_voice(far.size - on, modelled_db + visitor_db)
        if fits_once:
            her = np.concatenate([MODELLED * far16[on - LAG : on + FRAME - LAG] * 1.5, her[: her.size - FRAME]])
        mic[on:] += her
    return far16, i16(mic)


def pauses(louder_db: float, visitor_db: float | None = None, fits_once: bool = False) -> tuple[list[float], bool]:
    """The answer's pauses (s) behind the trusted canceller, and whether it was trusted by
    ``CHANGE_S``."""
    far16, mic16 = lobby(louder_db, visitor_db, fits_once)
    canceller = EchoCanceller(_Reference(far16), 20, _ModelledPath, align=False)  # type: ignore[arg-type]
    endpointer = Endpointer(_FirstOpinion(), settings := VadSettings(), 20)
    endpointer.echo_relearn = True
    room = i16(np.random.default_rng(2).standard_normal(FRAME) * 10 ** (-60 / 20) * 32768)
    for _ in range(100):  # the room alone, 2 s
        endpointer.process(room.tobytes(), None)
    got, held, trusted = [], False, False
    for k in range(far16.size // FRAME):
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.hearing does)
        frame = canceller.process(mic16[k * FRAME : (k + 1) * FRAME].tobytes(), k * 0.02)
        endpointer.guarded = True
        trusted = trusted or (k * 0.02 < CHANGE_S - GAP_S and endpointer.echo_cancelled_well)
        endpointer.process(frame, canceller.reference_dbfs, linear=canceller.linear_levels)
        pause = endpointer.suspected_speech_ms >= settings.barge_in_pause_ms
        if pause and not held:
            got.append(round(k * 0.02, 2))
        held = pause
    canceller.close()
    return got, trusted


def test_the_echo_as_the_filter_models_it_does_not_pause_the_answer():
    got, trusted = pauses(0.0)
    assert trusted and got == []


def test_an_echo_louder_than_the_filter_models_does_not_pause_the_answer():
    """10 dB louder from the answer's next word: the linear output 6.7 dB over the filter's
    estimate, all of it the reference's, frame after frame (main 66c8877: paused at 2.02 s, double
    talk's estimate path)."""
    got, trusted = pauses(10.0)
    assert trusted and got == [], got


def test_a_visitor_as_loud_as_the_echo_still_pauses_the_answer_within_100_ms():
    for louder_db in (0.0, 10.0):  # (over the echo as modelled, or over the louder one)
        for fits_once in (False, True):  # (her first frame explained by the reference)
            got, trusted = pauses(louder_db, visitor_db=0.0, fits_once=fits_once)
            assert trusted and got and CHANGE_S <= got[0] <= CHANGE_S + 0.1, (louder_db, fits_once, got)


def test_the_fit_explains_a_missed_echo_and_not_a_voice():
    from kiosk.audio.echo_cancel import reference_fit
    from kiosk.core.echo_double_talk import MISSED_ECHO_FIT

    far16, _ = lobby(0.0)
    ref = far16[16000:16640].astype(np.float32)  # (the frame's reference last, the one before first)
    missed = 1.16 * np.concatenate([np.zeros(LAG), ref])[320 : 320 + FRAME]  # the echo the filter missed
    assert reference_fit(missed.astype(np.float32), ref) >= 0.99
    her = _her_voice(FRAME, -30.0).astype(np.float32)
    assert reference_fit(her, ref) < MISSED_ECHO_FIT
    assert reference_fit(np.zeros(FRAME, dtype=np.float32), ref) == 0.0


def test_the_canceller_tells_the_fits_of_trusted_frames_in_a_row_only():
    far16, mic16 = lobby(10.0)
    canceller = EchoCanceller(_Reference(far16), 20, _ModelledPath, align=False)  # type: ignore[arg-type]
    told = []
    for k in range(far16.size // FRAME):
        canceller.pitch_wanted = k < 80 or k == 103  # trusted from 1.6 s, but for one frame
        canceller.process(mic16[k * FRAME : (k + 1) * FRAME].tobytes(), k * 0.02)
        fits = getattr(canceller.linear_levels, "reference_fits", None)
        told.append(None if fits is None else fits(2))
    canceller.close()
    assert told[79] is None and told[103] is None
    assert len(told[80]) == 1 and len(told[104]) == 1  # (a row starts again after an untrusted frame)
    over, fit = told[102][1]
    assert over > 6.0 and fit > 0.99, told[102]  # the word after the gap: the echo it missed
    assert told[90][1][0] < -20.0  # (the echo as modelled: the linear output far under its estimate)


def test_the_levels_pickle_without_the_fits():
    """bench/pulse_trace.py pickles what the pipeline hands the guard."""
    import pickle

    far16, mic16 = lobby(10.0)
    canceller = EchoCanceller(_Reference(far16), 20, _ModelledPath, align=False)  # type: ignore[arg-type]
    canceller.pitch_wanted = False
    canceller.process(mic16[:FRAME].tobytes(), 0.0)
    levels = canceller.linear_levels
    assert levels is not None and levels.reference_fits is not None
    levels.lag_remeasuring = True
    back = pickle.loads(pickle.dumps(levels))
    assert tuple(back) == tuple(levels) and back.lag_remeasuring and back.reference_fits is None
    canceller.close()

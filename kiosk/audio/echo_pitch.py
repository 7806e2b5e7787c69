"""A second voice in the microphone: periodicity the speaker's reference lacks.

Without echo cancellation the guard hears a visitor only where she is louder than the answer's
echo, as a whole frame or in enough bands (:mod:`kiosk.core.echo_bands`). A visitor who starts
talking as loud as the echo, in the same bands, is heard by neither. But her voice has its own
pitch: the microphone then repeats itself at her pitch period, and the kiosk knows exactly what
it plays. :class:`PitchCue` measures, per microphone frame, how strongly the microphone repeats
at its best period (normalized autocorrelation over the last 40 ms at 8 kHz, 80-500 Hz) and how
strongly the reference did at that period over its last few frames (``HISTORY_WINDOWS``, the
guard's tap ``GUARD_HISTORY_WINDOWS``: the room's tail and an echo lag not yet measured blur
which reference frame is in the microphone). The echo
repeats where the reference does; a second voice, where it does not. The numbers go to the core
as data (:meth:`kiosk.core.echo_guard.EchoGuard._loud_in_pitch` decides).

Cost while the speaker plays: for a microphone frame loud enough to count, one batched rfft pair
of 512 points (it and the reference windows not yet looked at); for a quieter one, keeping its
reference frame (decimated only if a later frame compares with it); nothing idle. A caller that
needs the levels of few frames asks for them on demand (:meth:`PitchCue.pair_on_demand`: the
canceller's cleaned frame before it is trusted, its linear output after).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

# Pitch is looked for at 8 kHz (pairs of samples averaged: a voice's pitch and first harmonics
# lie far below 4 kHz), in periods of 500 Hz .. 80 Hz (samples at 8 kHz).
LAG_MIN, LAG_MAX = 16, 100
# The reference's periodicity counts within this many samples (8 kHz) of the microphone's period...
LAG_TOLERANCE = 1
# ...over the reference windows of this many frames, the current one included (100 ms at 20 ms
# frames: the room's tail repeats the answer's last syllable; before the echo's lag is measured
# the reference frame may be tens of ms off).
HISTORY_WINDOWS = 5
# The guard's tap (the raw microphone, no canceller) looks back further, 160 ms: the room's tail
# at -6 dB echo outlasts 100 ms. Through PulseAudio on the 80 ms room pipe the same moment of one
# Japanese answer (used seeds 2421, 2481 and 2511, echo mix 077 at -6 dB) paused it, the
# microphone repeating at 0.64-0.77 where the last 100 ms of reference did at 0.15-0.35; with 7
# windows one of three still paused, with 8 none (replayed over 204 used-seed traces: those 3
# pauses gone, none added, 2 of 81 barge-ins 20 ms later: bench/results/lead49-pitch-screen-*).
GUARD_HISTORY_WINDOWS = 8
# Microphone frames quieter than this (dBFS) are not looked at, by default: the guard counts
# none of them (vad.barge_in_min_level_dbfs, which the pipeline passes instead).
MIN_MIC_DBFS = -30.0
# For the guard's tap (the raw microphone), the reference's periodicity at these multiples of the
# microphone's period counts too (a room's ring at a half, a third or a quarter of the answer's
# period is the echo; see PitchCue.pair). The canceller's cue on its cleaned output looks at the
# period only (the ring is cancelled with the rest of the echo; aec7 tuned it so). The 4th: stop
# 40's held-out s1451 mix 076 at -12 dB rang at ~400 Hz under a ~100 Hz answer and paused it
# (tests/audio/test_guard41_fourth_subharmonic.py). 4x reaches LAG_MAX for periods up to 25
# samples (320 Hz and higher).
SUBHARMONICS = (2, 3, 4)
# The guard alone (not the raw guard beside a canceller) counts the 5th too: at -6 dB echo the
# room left a Japanese answer's ~100 Hz voice ringing at its 5th harmonic, the microphone's best
# period 16-17 samples (470-500 Hz) where the reference repeated at 79-85 (stop 49's s2711 mix
# 077: two self-pauses; tests/audio/test_guard50_fifth_subharmonic.py). 5x reaches LAG_MAX only
# for periods up to 20 samples: a voice at 400-500 Hz, over an answer at its fifth of that.
GUARD_SUBHARMONICS = (*SUBHARMONICS, 5)

PitchLevels = tuple[float, float]  # (microphone periodicity, the reference's at that period)


class PitchCue:
    """Feed (microphone frame, reference frame) pairs while the speaker plays; :meth:`pair`
    returns (the microphone's periodicity at its best period, the reference's best at that
    period over its recent windows), or None when the microphone frame is too quiet.

    A reference window is decimated and its periodicity computed only once a loud microphone
    frame needs it (with the microphone's, in one batch), and then kept: quiet frames cost
    nothing but keeping the reference."""

    def __init__(
        self,
        frame_samples: int,
        min_mic_dbfs: float = MIN_MIC_DBFS,
        subharmonics: tuple[int, ...] = (),
        history_windows: int = HISTORY_WINDOWS,
    ) -> None:
        self.min_mic_dbfs = min_mic_dbfs
        self.subharmonics = subharmonics  # multiples of the period the reference counts at too
        self._half = frame_samples // 2
        n = 2 * self._half  # two frames: 40 ms at 20 ms frames (three periods at 80 Hz)
        self._fft = 1 << (n + LAG_MAX - 1).bit_length()  # no circular wrap up to LAG_MAX
        self._mic_prev: bytes | None = None
        self._ref_prev: bytes | None = None  # (None: nothing before, zeros)
        # The recent reference windows and their periodicity once known (_RefWindow).
        self._refs: deque[_RefWindow] = deque(maxlen=history_windows)
        self.frames_measured = 0  # microphone frames whose periodicity was computed

    def restart(self) -> None:
        """A new playback stretch: nothing heard before counts."""
        self._mic_prev = None
        self._ref_prev = None
        self._refs.clear()

    def pair(
        self, mic: bytes, ref: bytes, mic_dbfs: float, tolerance: int = LAG_TOLERANCE
    ) -> PitchLevels | None:
        """``tolerance``: the reference's periodicity counts within this many samples (8 kHz)
        of the microphone's period (``LAG_TOLERANCE``, unless the caller knows better)."""
        measure = self.pair_on_demand(mic, ref, mic_dbfs, tolerance)
        return None if measure is None else measure()

    def pair_on_demand(
        self,
        mic: bytes,
        ref: bytes,
        mic_dbfs: float,
        tolerance: int = LAG_TOLERANCE,
        harmonics: bool = False,
    ) -> Callable[[], PitchLevels] | None:
        """:meth:`pair`, measured only if and when the returned function is called (then once:
        later calls return the same levels). The pair goes into the history now, so the levels
        are those :meth:`pair` would have returned for it, whenever they are asked for: a
        caller that needs them in few frames saves the autocorrelations of the rest.
        ``harmonics``: the frame may be a harmonic of the reference without its fundamental
        (:func:`_harmonic_levels`: an echo canceller's output where its filter stalled)."""
        self._refs.append(_RefWindow(self._ref_prev, ref, self._half))  # (decimated if needed)
        self._ref_prev = ref
        before, self._mic_prev = self._mic_prev, mic
        if mic_dbfs < self.min_mic_dbfs:
            return None
        refs = tuple(self._refs)  # (the windows this frame compares with, whatever comes next)
        measured: list[PitchLevels] = []

        def measure() -> PitchLevels:
            if not measured:
                measured.append(self._measure(before, mic, refs, tolerance, harmonics))
            return measured[0]

        return measure

    def _measure(
        self,
        before: bytes | None,
        mic: bytes,
        refs: tuple[_RefWindow, ...],
        tolerance: int,
        harmonics: bool = False,
    ) -> PitchLevels:
        self.frames_measured += 1
        m = _decimated(before + mic) if before is not None else _decimated(bytes(len(mic)) + mic)
        todo = [w for w in refs if w.samples() is not None and w.periodicity is None]
        windows = np.stack([m] + [w.samples() for w in todo])  # type: ignore[misc]
        ac = _normalized_autocorrelation(windows, self._fft)
        for w, a in zip(todo, ac[1:], strict=True):
            w.periodicity = a
        k = int(np.argmax(ac[0]))
        lo, hi = max(0, k - tolerance), k + tolerance + 1
        known = [float(np.max(w.periodicity[lo:hi])) for w in refs if w.periodicity is not None]
        # A room's resonance (or an echo whose fundamental the room damps) repeats at a half, a
        # third, a quarter (the guard: a fifth) of the answer's period, where the reference does
        # not: its periodicity at those multiples of the microphone's period counts too
        # (``subharmonics``). (Fresh tuning seed 6 mix 074 at -6 dB: a 320 Hz ring, 25 samples,
        # under an answer at 50 and 75; a visitor whose pitch is then exactly two or three times
        # the answer's is heard by level only.)
        for times in self.subharmonics:
            at, within = times * (k + LAG_MIN) - LAG_MIN, times * tolerance
            if at - within < ac.shape[1]:
                lo, hi = at - within, at + within + 1
                known += [float(np.max(w.periodicity[lo:hi])) for w in refs if w.periodicity is not None]
        if harmonics:
            known += _harmonic_levels(ac[0], k, refs, tolerance)
        return float(ac[0][k]), max(known, default=-1.0)


def _harmonic_levels(
    mic_ac: np.ndarray, k: int, refs: tuple[_RefWindow, ...], tolerance: int
) -> list[float]:
    """Per reference window whose best period is at least twice the microphone's (``k``, an
    index into ``mic_ac``: a harmonic of it, or a pitch at least an octave higher), the lesser of
    the reference's periodicity there and the microphone's at that same period (within
    ``tolerance``): a frame that repeats at the reference's period as well as at a whole fraction
    of it is that reference's harmonic. An echo canceller that stalls on the answer's fundamental
    but still cancels some of its harmonics leaves one (the 2nd, 3rd, ...; the sum of a few), and
    its best period is then a half, a third or two fifths of the answer's, where the reference
    does not repeat. (A visitor whose pitch is a whole multiple of the answer's is taken for it;
    a visitor an octave higher repeats at the answer's period only if her pitch is such a multiple.
    Not below an octave: a visitor a few Hz over the answer repeats at its period nearly as well,
    her own period's peak is that broad: tuning seeds 44 and 62 mix 086 and held-out s261 mix
    080, barge-ins 20-60 ms later.)"""
    levels = []
    for window in refs:
        periodicity = window.periodicity  # (None: nothing played, or not computed)
        if periodicity is None:
            continue
        r = int(np.argmax(periodicity))
        if 2 * (k + LAG_MIN) > r + LAG_MIN + 2 * tolerance:
            continue  # (the microphone's period is more than half the reference's)
        lo, hi = max(0, r - tolerance), r + tolerance + 1
        levels.append(min(float(periodicity[r]), float(np.max(mic_ac[lo:hi]))))
    return levels


class _RefWindow:
    """One reference window: the frame before (None: zeros) and this frame's samples, decimated
    and joined only when a measured frame compares with it (most frames are never measured);
    :meth:`samples` is None when nothing played in this frame. ``periodicity``: its normalized
    autocorrelation, once computed."""

    __slots__ = ("_before", "_ref", "_half", "_samples", "periodicity")

    def __init__(self, before: bytes | None, ref: bytes, half: int) -> None:
        self._before, self._ref, self._half = before, ref, half
        self._samples: np.ndarray | None | bool = False  # (False: not decimated yet)
        self.periodicity: np.ndarray | None = None

    def samples(self) -> np.ndarray | None:
        if self._samples is False:
            r = _decimated(self._ref)
            before = np.zeros(self._half) if self._before is None else _decimated(self._before)
            self._samples = np.concatenate([before, r]) if r.any() else None
        return self._samples  # type: ignore[return-value]


def _decimated(pcm: bytes) -> np.ndarray:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return x[0::2] + x[1::2]  # (twice the mean of each pair: the scale cancels out)


def _normalized_autocorrelation(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Per row: sum x[t] x[t+lag] / sqrt(energy of both overlapping parts), for each lag of
    LAG_MIN..LAG_MAX (slices, not index arrays: this runs for every frame the speaker plays)."""
    spec = np.fft.rfft(x, n_fft, axis=1)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, n_fft, axis=1)[:, LAG_MIN : LAG_MAX + 1]
    energy = np.cumsum(x**2, axis=1)
    n = x.shape[1]
    head = energy[:, n - 1 - LAG_MIN : n - 2 - LAG_MAX : -1]  # x[0 : n-lag]
    tail = energy[:, n - 1 : n] - energy[:, LAG_MIN - 1 : LAG_MAX]  # x[lag : n]
    return ac / (np.sqrt(head * tail) + 1e-9)

"""A second voice in the microphone: periodicity the speaker's reference lacks.

Without echo cancellation the guard hears a visitor only where she is louder than the answer's
echo, as a whole frame or in enough bands (:mod:`kiosk.core.echo_bands`). A visitor who starts
talking as loud as the echo, in the same bands, is heard by neither. But her voice has its own
pitch: the microphone then repeats itself at her pitch period, and the kiosk knows exactly what
it plays. :class:`PitchCue` measures, per microphone frame, how strongly the microphone repeats
at its best period (normalized autocorrelation over the last 40 ms at 8 kHz, 80-500 Hz) and how strongly
the reference did at that period over the last ``HISTORY_WINDOWS`` frames (the room's tail and an
echo lag not yet measured blur which reference frame is in the microphone). The echo repeats
where the reference does; a second voice, where it does not. The numbers go to the core as
data (:meth:`kiosk.core.echo_guard.EchoGuard._loud_in_pitch` decides).

Cost while the speaker plays: one batched rfft pair of 512 points per frame (microphone and
reference together); the microphone's only for frames loud enough to matter; nothing idle.
"""

from __future__ import annotations

from collections import deque

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
# Microphone frames quieter than this (dBFS) are not looked at: the guard counts none of them
# (vad.barge_in_min_level_dbfs, -30 by default, is the least it asks).
MIN_MIC_DBFS = -36.0

PitchLevels = tuple[float, float]  # (microphone periodicity, the reference's at that period)


class PitchCue:
    """Feed (microphone frame, reference frame) pairs while the speaker plays; :meth:`pair`
    returns (the microphone's periodicity at its best period, the reference's best at that
    period over its recent windows), or None when the microphone frame is too quiet."""

    def __init__(self, frame_samples: int) -> None:
        half = frame_samples // 2
        self._n = 2 * half  # two frames: 40 ms at 20 ms frames (three periods at 80 Hz)
        self._fft = 1 << (self._n + LAG_MAX - 1).bit_length()  # no circular wrap up to LAG_MAX
        self._mic = np.zeros(half)
        self._ref = np.zeros(half)
        # The reference's normalized autocorrelation per recent frame (-1: nothing played).
        self._ref_ac = np.full((HISTORY_WINDOWS, LAG_MAX - LAG_MIN + 1), -1.0)
        self._next = 0

    def restart(self) -> None:
        """A new playback stretch: nothing heard before counts."""
        self._mic[:] = 0
        self._ref[:] = 0
        self._ref_ac[:] = -1.0

    def pair(self, mic: bytes, ref: bytes, mic_dbfs: float) -> PitchLevels | None:
        r = _decimated(ref)
        loud = mic_dbfs >= MIN_MIC_DBFS
        m = _decimated(mic) if loud else np.zeros_like(r)
        windows = np.stack([np.concatenate([self._ref, r]), np.concatenate([self._mic, m])])
        self._mic, self._ref = m, r
        ac = _normalized_autocorrelation(windows[: 1 + loud], self._fft)
        self._ref_ac[self._next] = ac[0] if r.any() else -1.0
        self._next = (self._next + 1) % HISTORY_WINDOWS
        if not loud:
            return None
        k = int(np.argmax(ac[1]))
        lo, hi = max(0, k - LAG_TOLERANCE), k + LAG_TOLERANCE + 1
        return float(ac[1][k]), float(self._ref_ac[:, lo:hi].max())


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

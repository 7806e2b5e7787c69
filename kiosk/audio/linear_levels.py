"""Levels of SpeexDSP's linear filter output against its echo estimate (the microphone frame
less that output), per 16 kHz frame: what the echo guard compares behind a trusted canceller
(:mod:`kiosk.core.echo_guard`: double talk, the answer's own voice, a visitor's first consonant).

:func:`frame_samples` converts a frame once; :func:`linear_levels_from` and
:class:`HighBandLevels` take the converted samples, so that a frame is not converted again for
each measure (the canceller measures both in every trusted frame).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

RATE_HZ = 16000
# Once trusted, the linear output's and the echo estimate's levels over this band are measured
# too (Hz; kiosk.core.echo_consonant.HighBandCue: a visitor's first unvoiced consonant).
HIGH_BAND_HZ = (3000, 8000)


def frame_samples(pcm: bytes) -> np.ndarray:
    """A PCM16 frame as float32 samples (the precision every level here is measured in)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def linear_levels_dbfs(mic: bytes, linear: bytes) -> tuple[float, float, float]:
    """(the linear filter's output, its echo estimate = ``mic`` minus that output, ``mic``) in
    dBFS. A second voice is in the output but not in the estimate: while the filter holds the
    echo well, the output rises to the estimate's level or over it only in double talk (or
    where the filter all but stopped cancelling: then the microphone is no louder than usual)."""
    return linear_levels_from(frame_samples(mic), frame_samples(linear))


def linear_levels_from(mic: np.ndarray, out: np.ndarray) -> tuple[float, float, float]:
    """:func:`linear_levels_dbfs` of samples (:func:`frame_samples`)."""
    est = mic - out
    full = 32768.0**2 * max(1, mic.size)
    levels = (float(np.dot(out, out)), float(np.dot(est, est)), float(np.dot(mic, mic)))
    return tuple(10 * math.log10(x / full) if x > 0 else -math.inf for x in levels)  # type: ignore[return-value]


def high_band_levels_db(mic: bytes, linear: bytes) -> tuple[float, float]:
    """(the linear filter's output, its echo estimate) over ``HIGH_BAND_HZ`` in dB re full scale
    (Hann-windowed power spectrum of the frame)."""
    levels = HighBandLevels(frame_samples(mic), frame_samples(linear))
    return levels[0], levels[1]


class HighBandLevels(Sequence[float]):
    """:func:`high_band_levels_db` of one frame's samples, each level measured when first read:
    ``[0]`` the linear output's, ``[1]`` the echo estimate's. The guard's consonant cue reads
    the output's level in every frame it hears (its recent median) and the estimate's only in a
    frame whose output stands out of that median (0.9 % of them, lobby tuning split): one FFT a
    frame instead of two. ``spent`` is told the CPU seconds each measure took.

    The levels are bit for bit those of measuring both at once (one two-row FFT, before): the
    rows' transforms are the same, and a row's power is summed in float32 one bin after another,
    as the two-row sum over the bins did."""

    def __init__(
        self, mic: np.ndarray, out: np.ndarray, spent: Callable[[float], None] = lambda s: None
    ) -> None:
        self._mic, self._out, self._spent = mic, out, spent
        self._out_spectrum: np.ndarray | None = None
        self._levels: list[float | None] = [None, None]

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> float:  # type: ignore[override]
        k = range(2)[index]  # (an IndexError past the pair ends iteration)
        level = self._levels[k]
        if level is None:
            started = time.process_time()
            level = self._levels[k] = self._measure(k)
            self._spent(time.process_time() - started)
        return level

    def _measure(self, k: int) -> float:
        window, band, full = _high_band(self._out.size)
        if self._out_spectrum is None:
            self._out_spectrum = np.fft.rfft(self._out * window)[band]
        spectrum = self._out_spectrum
        if k == 1:  # the estimate's: the microphone's less the output's
            spectrum = np.fft.rfft(self._mic * window)[band] - spectrum
        power = np.cumsum(spectrum.real**2 + spectrum.imag**2)[-1] / full
        return 10 * math.log10(power) if power > 0 else -math.inf


@functools.lru_cache(maxsize=4)
def _high_band(n: int) -> tuple[np.ndarray, slice, float]:
    """(window, the band's bins, full scale's power over them) for ``n``-sample frames."""
    window = np.hanning(n).astype(np.float32)
    hz = np.fft.rfftfreq(n, 1 / RATE_HZ)
    bins = np.flatnonzero((hz >= HIGH_BAND_HZ[0]) & (hz <= HIGH_BAND_HZ[1]))
    band = slice(int(bins[0]), int(bins[-1]) + 1)  # (one run of bins: a view, not a copy)
    return window, band, 32768.0**2 * float(np.dot(window, window)) * n / 2

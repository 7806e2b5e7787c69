"""How far the echo lags the reference the echo canceller is fed: found once, then lined up.

The speaker's stamps (now + the latency the sink reports) and the microphone's (arrival -
the input latency) are estimates; on a real device they can be off by tens of milliseconds
either way. SpeexDSP's filter copes with any lag within its length, but it converges more
slowly and less deep the longer the pure delay it has to model (on the lobby corpus's room:
~5 dB less ERLE over the first seconds at 40 ms than at 0), and it cannot cancel an echo
that comes *before* its reference at all. So while the first answers play, the lag is
measured from the signals themselves (GCC-PHAT between the raw microphone and the reference,
over the last ``WINDOW_MS``) until ``AGREE`` estimates in a row agree; the canceller then
shifts its reference so the echo's first arrival lags it by ``TARGET_MS`` and restarts its
filter (:class:`~kiosk.audio.echo_cancel.EchoCanceller`).

Pure numpy, no threads; one rfft pair every ``EVERY_FRAMES`` frames while the speaker plays
and the lag is not settled yet, nothing afterwards.
"""

from __future__ import annotations

from collections import deque

import numpy as np

# Microphone and reference audio the lag is measured over.
WINDOW_MS = 320
# A new estimate every this many frames (while the speaker plays)...
EVERY_FRAMES = 4
# ...until this many in a row agree within TOLERANCE_MS.
AGREE = 3
TOLERANCE_MS = 1.5
# Lags searched: the echo up to this much before its reference (a latency over-estimated)...
EARLIEST_MS = -60.0
# ...or this much after it (under-estimated).
LATEST_MS = 200.0
# An estimate counts only if its peak stands this far above the correlation's typical level.
MIN_PEAK_RATIO = 6.0
# Reference windows quieter than this (dBFS, mean power) say nothing about the lag.
MIN_REFERENCE_DBFS = -50.0
# Bands weaker than this fraction of the mean cross-spectrum are weighted down (not whitened).
PHAT_FLOOR = 0.1
# Where the echo's first arrival is put: a few ms after the reference (causal, little to model).
TARGET_MS = 3.0


class EchoDelayEstimator:
    """Feed (raw microphone frame, reference frame fed to the filter) pairs while the speaker
    plays; :meth:`observe` returns the lag in ms once it is settled (then None again).

    Args:
        frame_samples: samples per frame (both signals, 16 kHz mono int16).
        rate_hz: their sample rate.
    """

    def __init__(self, frame_samples: int, rate_hz: int = 16000) -> None:
        self.rate_hz = rate_hz
        frames = max(1, round(WINDOW_MS * rate_hz / 1000 / frame_samples))
        self._mic: deque[np.ndarray] = deque(maxlen=frames)
        self._ref: deque[np.ndarray] = deque(maxlen=frames)
        self._since = 0
        self._recent: deque[float] = deque(maxlen=AGREE)
        self.settled_ms: float | None = None
        self.estimates = 0

    @property
    def settled(self) -> bool:
        return self.settled_ms is not None

    def restart(self) -> None:
        """Measure afresh (the signals' alignment changed)."""
        self._mic.clear()
        self._ref.clear()
        self._recent.clear()
        self._since = 0
        self.settled_ms = None

    def observe(self, mic: bytes, ref: bytes) -> float | None:
        if self.settled:
            return None
        self._mic.append(np.frombuffer(mic, dtype="<i2"))
        self._ref.append(np.frombuffer(ref, dtype="<i2"))
        self._since += 1
        if len(self._mic) < (self._mic.maxlen or 0) or self._since < EVERY_FRAMES:
            return None
        self._since = 0
        lag = self.estimate(np.concatenate(self._mic), np.concatenate(self._ref))
        if lag is None:
            self._recent.clear()
            return None
        self._recent.append(lag)
        if len(self._recent) == AGREE and max(self._recent) - min(self._recent) <= TOLERANCE_MS:
            self.settled_ms = _median(np.array(self._recent, dtype=np.float64))
            return self.settled_ms
        return None

    def estimate(self, mic: np.ndarray, ref: np.ndarray) -> float | None:
        """The lag (ms) of ``mic`` behind ``ref`` at the strongest GCC-PHAT peak, or None
        when the reference is too quiet or the peak does not stand out."""
        x = mic.astype(np.float64)
        y = ref.astype(np.float64)
        power = float(np.mean(y * y))
        if power <= (10 ** (MIN_REFERENCE_DBFS / 10)) * 32768.0**2:
            return None
        n = 1 << (2 * x.size - 1).bit_length()
        cross = np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n))
        # Phase transform (every band counts alike: a sharp peak, robust to the room), but
        # only bands the reference sounds in: the rest would be noise at full weight.
        magnitude = np.abs(cross)
        cross /= magnitude + PHAT_FLOOR * float(np.mean(magnitude)) + 1e-30
        corr = np.fft.irfft(cross, n)
        lo = int(EARLIEST_MS * self.rate_hz / 1000)
        hi = int(LATEST_MS * self.rate_hz / 1000)
        hi = min(hi, x.size - 1)
        lags = np.concatenate([np.arange(lo, 0), np.arange(0, hi + 1)])
        values = np.abs(corr[lags])  # negative lags index from the end
        k = int(np.argmax(values))
        typical = _median(values) + 1e-12
        self.estimates += 1
        if values[k] / typical < MIN_PEAK_RATIO:
            return None
        # The strongest path: in a kiosk's box the direct sound (reflections come later and
        # weaker, and the filter models what follows it). Not the earliest strong peak: a
        # voiced answer's periodicity puts aliases one pitch period to either side.
        return float(lags[k]) * 1000 / self.rate_hz


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, without it: numpy's median imports numpy.ma (+1.3 MB
    resident for the rest of the daemon's life, from the first answer on)."""
    n = values.size
    middle = [(n - 1) // 2, n // 2]
    return float(np.partition(values, middle)[middle].mean())

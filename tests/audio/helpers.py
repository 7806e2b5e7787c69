"""Signals and measurements shared by the audio tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def tone(
    freq_hz: float, rate_hz: int, duration_s: float, amplitude: float = 0.5
) -> npt.NDArray[np.int16]:
    """A sine at ``amplitude`` of full scale as int16 samples."""
    t = np.arange(int(rate_hz * duration_s)) / rate_hz
    return np.rint(np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype(np.int16)


def dominant_freq_hz(samples: npt.NDArray[np.int16], rate_hz: int) -> float:
    """Frequency of the strongest FFT bin (Hann window), interpolated to within ~1 Hz."""
    x = samples.astype(np.float64) * np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(x))
    k = int(np.argmax(spectrum[1:])) + 1
    if 0 < k < spectrum.size - 1:  # parabolic interpolation around the peak bin
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k * rate_hz / samples.size)


def rms_dbfs(samples: npt.NDArray[np.int16]) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-9) / 32768)

"""Signals for the lobby corpus (``lobby_corpus.py``): seeded noise beds, the room's echo
path, two-channel microphones, and the levels and true bounds of clean speech."""

from __future__ import annotations

import math

import numpy as np


def speech_bounds(x: np.ndarray, rate_hz: int) -> tuple[float, float]:
    """True (start, end) seconds of speech in a clean clip: the first and last 5 ms block
    within 35 dB of its loudest."""
    block = rate_hz // 200
    n = len(x) // block
    if n == 0:
        return 0.0, len(x) / rate_hz
    rms = np.sqrt(np.mean(x[: n * block].reshape(n, block) ** 2, axis=1)) + 1e-9
    db = 20 * np.log10(rms)
    active = np.flatnonzero(db >= db.max() - 35)
    return active[0] * block / rate_hz, (active[-1] + 1) * block / rate_hz


def active_rms_db(x: np.ndarray, rate_hz: int) -> float:
    """RMS (dBFS) over the 20 ms blocks within 30 dB of the loudest: speech level without pauses."""
    block = rate_hz // 50
    n = max(1, len(x) // block)
    blocks = x[: n * block].reshape(n, -1) if len(x) >= block else x.reshape(1, -1)
    power = np.mean(blocks**2, axis=1) + 1e-9
    keep = power >= power.max() * 10 ** (-30 / 10)
    return 10 * math.log10(float(np.mean(power[keep]))) - 20 * math.log10(32768)


def _colored(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (1 pink, 2 brown), unit RMS."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spectrum /= f ** (exponent / 2)
    spectrum[f < 20 / 48000] = 0  # no DC / sub-audio drift
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _hvac(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    mains = rng.choice((50.0, 60.0))
    hum = sum(
        rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3))
        for k in range(1, 8)
    )
    fan = _colored(rng, n, 1.5)
    blade = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(8, 25) * t)  # fan-blade flutter
    x = 0.6 * hum / np.sqrt(np.mean(hum**2)) + fan * blade
    return x / np.sqrt(np.mean(x**2))


def _transients(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Quiet pink bed + door slams (broadband burst, 150-400 ms decay) and footstep runs."""
    x = 0.3 * _colored(rng, n, 1.0)
    t = 0.0
    dur = n / rate
    while t < dur:
        t += rng.uniform(2.0, 8.0)
        start = int(t * rate)
        if rng.random() < 0.4:  # door
            length = int(rng.uniform(0.15, 0.4) * rate)
            burst = (
                rng.standard_normal(length)
                * np.exp(-np.arange(length) / (0.06 * rate))
                * rng.uniform(6, 15)
            )
            thump = (
                np.sin(2 * np.pi * 60 * np.arange(length) / rate)
                * np.exp(-np.arange(length) / (0.1 * rate))
                * 10
            )
            seg = burst + thump
        else:  # footsteps: 4-10 steps at ~2 per second
            steps = rng.integers(4, 11)
            seg = np.zeros(int(steps * 0.5 * rate) + rate // 10)
            for k in range(steps):
                s = int(k * rng.uniform(0.45, 0.55) * rate)
                m = rate // 20
                seg[s : s + m] += (
                    rng.standard_normal(m)
                    * np.exp(-np.arange(m) / (0.01 * rate))
                    * rng.uniform(3, 8)
                )
        end = min(n, start + len(seg))
        if start < n:
            x[start:end] += seg[: end - start]
        t += len(seg) / rate
    return x / np.sqrt(np.mean(x**2))


def _steps(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Brown/pink noise whose level steps by 6-15 dB every 4-15 s (a machine switching on/off)."""
    x = _colored(rng, n, rng.choice((1.0, 2.0)))
    gain = np.ones(n)
    pos, level = 0, 0.0
    while pos < n:
        length = int(rng.uniform(4, 15) * rate)
        gain[pos : pos + length] = 10 ** (level / 20)
        pos += length
        level = -level if level else -rng.uniform(6, 15)
    smooth = rate // 50  # 20 ms ramps
    gain = np.convolve(gain, np.ones(smooth) / smooth, mode="same")
    y = x * gain
    return y / np.max(np.abs(gain))  # the loud steps are at the nominal level


def noise_bed(kind: str, n: int, rate: int, seed: int) -> np.ndarray:
    """Unit-RMS mono noise of ``kind`` (steps: unit RMS in the loud stretches); babble's bed
    is a faint pink floor (the talkers are speech segments of the mix)."""
    rng = np.random.default_rng(seed)
    if kind == "pink":
        return _colored(rng, n, 1.0)
    if kind == "brown":
        return _colored(rng, n, 2.0)
    if kind == "hvac":
        return _hvac(rng, n, rate)
    if kind == "transients":
        return _transients(rng, n, rate)
    if kind == "steps":
        return _steps(rng, n, rate)
    if kind == "babble":
        return 0.1 * _colored(rng, n, 1.0)
    raise ValueError(f"unknown noise type {kind!r}")


def db_to_amp(x: float) -> float:
    return 10 ** (x / 20) * 32768


def to_stereo(mono: np.ndarray, seed: int) -> np.ndarray:
    """Two mic channels: slightly different gains and their own -80 dBFS self-noise."""
    rng = np.random.default_rng(seed + 1)
    left = mono * 1.0 + rng.standard_normal(mono.size) * db_to_amp(-80)
    right = mono * 0.92 + rng.standard_normal(mono.size) * db_to_amp(-80)
    return np.stack([left, right], axis=1)


def room_ir(rate: int, seed: int, echo_db: float) -> np.ndarray:
    """Speaker -> mic impulse response: a direct path 1.5 ms late plus a 150 ms decaying tail,
    scaled so the echo's level is ``echo_db`` relative to what the speaker plays."""
    rng = np.random.default_rng(seed + 2)
    n = int(0.15 * rate)
    ir = np.zeros(n)
    ir[int(0.0015 * rate)] = 1.0
    tail = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.03 * rate)) * 0.08
    tail[: int(0.003 * rate)] = 0
    ir += tail
    return ir / np.sqrt(np.sum(ir**2)) * 10 ** (echo_db / 20)

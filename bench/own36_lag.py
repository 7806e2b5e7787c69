"""The echo's lag behind the canceller's reference in a pulse trace (stop 36 helper own36; analysis
only): GCC-PHAT of the traced raw microphone against the reference each frame was cancelled with,
over windows of the trace's clock (s after the room started), and the canceller's own lag state.

    python bench/own36_lag.py TRACE.pkl 5.4-6.2 12.3-12.8 ...
    python bench/own36_lag.py TRACE.pkl --estimator 603 700   # kiosk's EchoDelayEstimator's readings

A lag of ~3 ms (echo_delay.TARGET_MS) means the reference sits where the canceller meant it to;
another value means the echo path moved since the filter learned it. Windows of < ~0.4 s or with
little playback can read a spurious 0.0 ms (weak peak): trust only windows whose reading repeats.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def lag_ms(mic: np.ndarray, ref: np.ndarray, rate: int = 16000, max_s: float = 0.03) -> tuple[float, float]:
    """(lag of ``mic`` after ``ref`` in ms at 1/8 sample, peak height) by GCC-PHAT."""
    n = 1
    while n < 2 * len(mic):
        n *= 2
    cross = np.fft.rfft(mic, n) * np.conj(np.fft.rfft(ref, n))
    cross /= np.maximum(np.abs(cross), 1e-9)
    up = 8
    cc = np.fft.irfft(cross, n * up)
    m = int(max_s * rate * up)
    cc = np.concatenate([cc[-m:], cc[: m + 1]])
    return (int(np.argmax(cc)) - m) / up / rate * 1000, float(cc.max())


def estimator_readings(trace: dict, first: int, last: int) -> None:
    """The importable kiosk's EchoDelayEstimator fed the traced frames first..last (raw mic and the
    reference each was cancelled with, as the canceller feeds it): every reading until it settles."""
    from kiosk.audio.echo_delay import EchoDelayEstimator

    frames, start = trace["aec"], trace["row"]["room"]["started_mono"]
    est = EchoDelayEstimator(len(frames[first]["raw"]) // 2, 16000)
    measure, at = est.estimate, [0]

    def reading(mic: np.ndarray, ref: np.ndarray) -> float | None:
        got = measure(mic, ref)
        f = frames[at[0]]
        power = 10 * np.log10(np.mean(ref.astype(float) ** 2) / 32768.0**2 + 1e-20)
        print(f"frame {at[0]} {f['mono'] - start:.3f} s: reference {power:.1f} dBFS over the window, reading {got} ms")
        return got

    est.estimate = reading  # type: ignore[method-assign]
    for k in range(first, last):
        if frames[k]["ref"] is None:
            continue
        at[0] = k
        if est.observe(frames[k]["raw"], frames[k]["ref"]) is not None:
            print(f"settled at frame {k}: {est.settled_ms} ms")
            return


def main() -> None:
    trace = pickle.loads(open(sys.argv[1], "rb").read())
    if sys.argv[2:3] == ["--estimator"]:
        estimator_readings(trace, int(sys.argv[3]), int(sys.argv[4]))
        return
    start = trace["row"]["room"]["started_mono"]
    frames = trace["aec"]
    last = None
    for k, f in enumerate(frames):
        state = (f["trusted"], f["realign"], f["relines"], f["restamps"], round(f["lead_s"] * 1000, 2), f["settled"], f["active"])
        if state != last:
            print(f"frame {k} {f['mono'] - start:.3f} s trusted {f['trusted']} realign {f['realign']} relines {f['relines']} "
                  f"restamps {f['restamps']} lead {f['lead_s'] * 1000:.2f} ms lag settled {f['settled']} ({f['settled_ms']}) active {f['active']}")
            last = state
    for window in sys.argv[2:]:
        lo, hi = (float(x) for x in window.split("-"))
        ks = [k for k, f in enumerate(frames) if lo <= f["mono"] - start < hi and f["ref"] is not None]
        if not ks:
            print(f"window {window}: no reference")
            continue
        mic = np.concatenate([np.frombuffer(frames[k]["raw"], np.int16) for k in ks]).astype(float)
        ref = np.concatenate([np.frombuffer(frames[k]["ref"], np.int16) for k in ks]).astype(float)
        lag, peak = lag_ms(mic, ref)
        print(f"window {window} s: {len(ks)} frames, lead {frames[ks[0]]['lead_s'] * 1000:.2f} ms, echo {lag:.3f} ms after the reference (peak {peak:.3f})")


if __name__ == "__main__":
    main()

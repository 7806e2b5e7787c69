"""Spectral cues of SpeexDSP self-pauses and of visitors' first frames over stored pulse traces
(TUNING TOOL, stop 47 helper echo47): ``bench/warm46_frames.py``'s per-frame features, plus cues
that are not a level bound on over / rover / g.

    python bench/echo47_frames.py OUT.json TRACE.pkl...

Per frame the replay's canceller filtered (the importable kiosk: pick it with PYTHONPATH), the
microphone, the linear output and the reference the filter was given are kept as power spectra
(320-point frames, Hann window, 50 Hz bins), and for each frame ``warm46_frames`` keeps (pausing
frames and the 3 before; visitors' frames from 0.1 s before her onset to her first pause) adds:

- ``nov_m<d>`` / ``nov_l<d>``: spectral novelty, dB: the part of the microphone's (``m``) or the
  linear output's (``l``) power in bins over the echo's ceiling there, over the frame's power. The
  ceiling of bin b is the reference's most in b over the echo path window (this frame and the
  ``SPAN - 1`` before it: the canceller's span) times the echo's usual raw return (``usual``, the
  guard's median, dB) plus ``d`` dB: a room adds no frequency its loudspeaker was not fed (a
  visitor can). -60 = none over.
- ``refwin``: the loudest reference frame in the window (dBFS), ``refsil``: frames in it whose
  reference is silent (< -70 dBFS).
- ``nov_h<d>``: the same over a ceiling per bin learned from the frames before: the median over
  the last ``RETURN_FRAMES`` frames the guard judged no double talk, nor loud, with the reference
  window over ``RETURN_MIN_REF_DBFS``, of the microphone's power over the window's reference in
  that bin (the room's return per bin, its noise included), plus ``d`` dB.
- ``fit``: kiosk.audio.echo_cancel.reference_fit of this frame's linear output (the fraction a
  least-squares FIR on the reference explains), and ``fit8``: the same over the whole window.

A replay is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import warm46_frames as w46  # noqa: E402  (installs the levels and warm39_why's instruments)

from kiosk.audio import echo_cancel as ec  # noqa: E402

SPAN = 8  # frames: the canceller's span (ceil((FILTER_MS + REFERENCE_LEAD_MS) / 20) + 1)
MARGINS_DB = (0, 6, 12)
SILENT_DBFS = -70.0
RETURN_FRAMES = 50
RETURN_MIN_REF_DBFS = -45.0
WINDOW = np.hanning(320).astype(np.float64)
SPEC: list[dict[str, Any] | None] = []

_process0 = ec.EchoCanceller.process


def _power(x: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(x.astype(np.float64) / 32768.0 * WINDOW)) ** 2


def _process(self: Any, frame: bytes, captured_at_s: float) -> bytes:
    out = _process0(self, frame, captured_at_s)
    if type(self) is ec.EchoCanceller:  # (the replay's canceller, not a tap)
        linear = getattr(self._filter, "linear_output", None)
        if self.linear_levels is None or not linear:
            SPEC.append(None)
        else:
            mic = np.frombuffer(frame, dtype=np.int16)
            lin = np.frombuffer(linear, dtype=np.int16)
            ref = np.asarray(self._last_ref, dtype=np.float64)
            SPEC.append({"m": _power(mic), "l": _power(lin), "r": _power(ref), "ref": ref, "lin": lin.astype(np.float64)})
    return out


ec.EchoCanceller.process = _process  # type: ignore[method-assign]


def _db(x: float) -> float:
    return round(10 * math.log10(x), 1) if x > 0 else -60.0


def _window(k: int) -> tuple[np.ndarray, list[float]]:
    """The reference's most per bin over frame ``k``'s window, and its frames' levels (dBFS)."""
    win = [s for s in SPEC[max(0, k - SPAN + 1) : k + 1] if s is not None]
    refmax = np.max([s["r"] for s in win], axis=0)
    levels = [10 * math.log10(max(float(np.mean(s["ref"] ** 2)) / 32768.0**2, 1e-12)) for s in win]
    return refmax, levels


def learned_return(k: int, log: list[dict[str, Any]]) -> np.ndarray | None:
    """The median per bin of the microphone's power over its window's reference over the last
    ``RETURN_FRAMES`` frames before ``k`` the guard judged echo (no double talk, not loud)."""
    ratios = []
    for j in range(k - 1, -1, -1):
        if len(ratios) >= RETURN_FRAMES:
            break
        if SPEC[j] is None or j >= len(log) or log[j].get("dt") or log[j].get("loud"):
            continue
        refmax, levels = _window(j)
        if max(levels) < RETURN_MIN_REF_DBFS:
            continue
        ratios.append(np.log10(SPEC[j]["m"] + 1e-20) - np.log10(refmax + 1e-20))
    if len(ratios) < 10:
        return None
    return 10 ** np.median(np.array(ratios), axis=0)


def cues(k: int, usual: float | None, log: list[dict[str, Any]]) -> dict[str, Any]:
    """The spectral cues of frame ``k`` (``usual``: the echo's usual raw return, dB)."""
    now = SPEC[k] if 0 <= k < len(SPEC) else None
    if now is None:
        return {}
    refmax, levels = _window(k)
    got: dict[str, Any] = {"refwin": round(max(levels), 1), "refsil": sum(x < SILENT_DBFS for x in levels)}
    if usual is not None:
        for d in MARGINS_DB:
            ceiling = refmax * 10 ** ((usual + d) / 10)
            for key in ("m", "l"):
                p = now[key]
                got[f"nov_{key}{d}"] = _db(float(np.sum(np.maximum(p - ceiling, 0.0))) / max(float(np.sum(p)), 1e-20))
    ret = learned_return(k, log)
    if ret is not None:
        for d in MARGINS_DB:
            ceiling = refmax * ret * 10 ** (d / 10)
            p = now["m"]
            got[f"nov_h{d}"] = _db(float(np.sum(np.maximum(p - ceiling, 0.0))) / max(float(np.sum(p)), 1e-20))
    refs = np.concatenate([s["ref"] for s in SPEC[max(0, k - SPAN + 1) : k + 1] if s is not None])
    if refs.size >= 320 + 156:
        got["fit"] = round(ec.reference_fit(now["lin"], refs[-(320 + 160) :]), 3)
    return got


def one(path: Path, cfg: Any) -> dict[str, Any] | None:
    SPEC.clear()
    got = w46.one(path, cfg)
    if got is None:
        return None
    log = list(w46.w39.ow.LOG)
    got["spec_frames"], got["log_frames"] = len(SPEC), len(log)
    for f in [*(f for p in got["pauses"] for f in p["frames"]), *got["visitor"]]:
        k = f["k"]
        f.update(cues(k, log[k].get("usual") if k < len(log) else None, log))
    got.pop("warm", None)
    return got


def main() -> int:
    out, paths = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    rows = w46.collect(paths, one, lambda got: f"frames {got['spec_frames']}/{got['log_frames']}")
    import kiosk

    out.write_text(json.dumps({"kiosk_code": str(Path(kiosk.__file__).parent), "rows": rows}))
    return 0

if __name__ == "__main__":
    sys.exit(main())

"""Per-frame spectral shape of SpeexDSP's linear output against its echo estimate, added to
bench/warm41_why.py's ``why`` log (TUNING TOOL, stop 42 helper warm42).

    python bench/warm42_why.py OUT.pkl TRACE.pkl...

As ``warm41_why.py why`` (the raw guard handed the canceller's levels; warm39_why's per-frame log,
[(summary, frames, t0, path)] in OUT.pkl), plus in each main-endpointer frame: ``cos`` the cosine
of the linear output's and the estimate's power spectra (Hann, 150-4000 Hz: the same harmonics
give ~1, a second voice at its own pitch less), ``lcorr`` the correlation of their log spectra,
``ex_est`` / ``ex_ref``: the fraction of the linear output's energy a least-squares FIR on the
estimate (shifts -8..8) / on the filter's reference (shifts 0..156 every 4 samples: the second
stage's fit, kiosk.audio.echo_cancel.reference_fit) explains. Run with main's kiosk (no second stage).
A replay is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import warm41_why  # noqa: E402

warm41_why.install_levels()
ARGV = sys.argv[1:]
sys.argv = [sys.argv[0], *ARGV]
import warm39_why  # noqa: E402  (patches the canceller and the endpointer on import)

from kiosk.audio import echo_cancel as ec  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402

SPEC: dict = {}
_WIN = np.hanning(320).astype(np.float64)
_HZ = np.fft.rfftfreq(320, 1 / 16000)
_BAND = (_HZ >= 150) & (_HZ <= 4000)


def spectral(mic: bytes, lin: bytes) -> tuple[float, float]:
    m = np.frombuffer(mic, dtype="<i2").astype(np.float64)
    y = np.frombuffer(lin, dtype="<i2").astype(np.float64)
    if m.size != 320 or y.size != 320:
        return math.nan, math.nan
    e = m - y
    pl = np.abs(np.fft.rfft(y * _WIN))[_BAND] ** 2
    pe = np.abs(np.fft.rfft(e * _WIN))[_BAND] ** 2
    den = math.sqrt(float(np.dot(pl, pl)) * float(np.dot(pe, pe)))
    cos = float(np.dot(pl, pe)) / den if den > 0 else math.nan
    ll, le = np.log10(pl + 1e-3), np.log10(pe + 1e-3)
    lcorr = float(np.corrcoef(ll, le)[0, 1]) if ll.std() > 0 and le.std() > 0 else math.nan
    return cos, lcorr


_proc = ec.EchoCanceller.process
PREV: dict = {}


def explained(target: np.ndarray, basis: np.ndarray, shifts: range) -> float:
    """Fraction of ``target``'s energy a least-squares FIR over ``basis`` (its history first:
    len(basis) = len(target) + history) at ``shifts`` explains."""
    n = target.size
    h = basis.size - n
    cols = [basis[h - k : h - k + n] for k in shifts]
    a = np.stack(cols, axis=1)
    tt = float(np.dot(target, target))
    if tt <= 0:
        return math.nan
    coef, *_ = np.linalg.lstsq(a, target, rcond=None)
    r = target - a @ coef
    return 1.0 - float(np.dot(r, r)) / tt


def process(self, frame, captured_at_s):
    out = _proc(self, frame, captured_at_s)
    if type(self) is ec.EchoCanceller:
        lin = getattr(self._filter, "linear_output", None)
        SPEC["now"] = spectral(frame, lin) if lin else (math.nan, math.nan)
        ref = PREV.get("ref_now")
        SPEC["ex"] = (math.nan, math.nan, math.nan)
        if lin and len(lin) == len(frame):
            m = np.frombuffer(frame, dtype="<i2").astype(np.float64)
            y = np.frombuffer(lin, dtype="<i2").astype(np.float64)
            e = m - y
            pe = PREV.get("est", np.zeros(320))
            pr = PREV.get("refs", np.zeros(640))
            yy = float(np.dot(y, y))
            # est shifted -8..8 (its history: the frame before; future shifts: zeros)
            ex_est = explained(y, np.concatenate([pe, e, np.zeros(8)]), range(17)) if yy > 0 else math.nan
            ex_ref = math.nan
            if ref is not None:
                rr = np.concatenate([pr, np.frombuffer(ref, dtype="<i2").astype(np.float64)])[-(320 + 640):]
                ex_ref = explained(y, rr, range(0, 160, 4)) if yy > 0 else math.nan
            SPEC["ex"] = (ex_est, ex_ref, math.nan)
            PREV["est"] = e
            if ref is not None:
                PREV["refs"] = rr[-640:]
    return out


ec.EchoCanceller.process = process


def _wrap_make():
    """Record the reference each cancel() call gets (the filter's own input)."""
    from kiosk.audio import speexdsp

    c0 = speexdsp.SpeexEcho.cancel

    def cancel(self, mic, ref):
        PREV["ref_now"] = ref
        return c0(self, mic, ref)

    speexdsp.SpeexEcho.cancel = cancel


_wrap_make()
_ep = ep.Endpointer.process


def ep_process(self, frame, far=None, *a, **kw):
    ev = _ep(self, frame, far, *a, **kw)
    if self.echo_relearn and warm39_why.ow.LOG:
        cos, lcorr = SPEC.get("now", (math.nan, math.nan))
        warm39_why.ow.LOG[-1]["cos"] = None if math.isnan(cos) else round(cos, 3)
        warm39_why.ow.LOG[-1]["lcorr"] = None if math.isnan(lcorr) else round(lcorr, 3)
        ex = SPEC.get("ex", (math.nan,) * 3)
        warm39_why.ow.LOG[-1]["ex_est"] = None if math.isnan(ex[0]) else round(ex[0], 3)
        warm39_why.ow.LOG[-1]["ex_ref"] = None if math.isnan(ex[1]) else round(ex[1], 3)
    return ev


ep.Endpointer.process = ep_process

if __name__ == "__main__":
    sys.exit(warm39_why.main())

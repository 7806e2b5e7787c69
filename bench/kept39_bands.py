"""kept39: how much the SpeexDSP filter cancels per band over the later answer, replayed on pulse traces
(TUNING TOOL: the canceller alone on the traced microphone frames and reference, as ``lobby_aec_replay``'s
``TracedReference`` lays it; exact where the lead is the traced one).

Per trace and reline bar (``KEPT39_RELINE_MIN_MS`` as in bench/kept39_replay.py): the later answer's re-measure
(settled lag, relines), and the filter's cancellation (microphone - linear output, dB) over 4-8 kHz and under
1 kHz, in frames whose microphone holds at least ``BAND_MIN_DB`` (dB, FFT power units) in that band, from the
settle to 1.3 s into the answer (or her onset), as the median and 10th percentile.

    python bench/kept39_bands.py OUT.json TRACE.pkl...
"""

from __future__ import annotations

import json
import math
import os
import pickle
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import lobby_aec_replay as lr  # noqa: E402

from kiosk.audio import echo_cancel as ec  # noqa: E402

if os.environ.get("KEPT39_RELINE_MIN_MS"):
    ec.RELINE_MIN_MS = float(os.environ["KEPT39_RELINE_MIN_MS"])
BAND_MIN_DB = 75.0
BANDS = {"hf": (4000, 8001), "lf": (0, 1000), "mid": (1000, 4000)}


def band_db(pcm: bytes) -> dict[str, float]:
    x = np.frombuffer(pcm, np.int16).astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / 16000)
    return {k: 10 * math.log10(spec[(f >= a) & (f < b)].sum() + 1e-9) for k, (a, b) in BANDS.items()}


def one(path: str) -> dict:
    trace = pickle.load(open(path, "rb"))
    room = trace["row"]["room"]
    t0, aud = room["started_mono"], room["audible_s"]
    onset = room.get("onset_s")
    end = min(1.3, onset - aud) if onset is not None else 1.3
    frames = trace["aec"]
    canceller = ec.EchoCanceller(lr.TracedReference(frames), 20)
    canceller.recheck = True
    run = lr.pulse_inputs(trace)
    k, rows, settle, rl0, lead0 = -1, {b: [] for b in BANDS}, None, None, None
    for entry in run["inputs"]:
        if entry[0] != "mic":
            continue
        k += 1
        canceller.process(entry[1], entry[2])
        tt = frames[min(k, len(frames) - 1)]["mono"] - t0 - aud
        if tt < 0:
            rl0, lead0 = canceller.relines, canceller.lead_ms
            continue
        if settle is None and canceller._delay is not None and canceller._delay.settled and tt < end + 1:
            settle = (round(tt, 3), canceller._delay.settled_ms, canceller.relines - (rl0 or 0),
                      round(canceller.lead_ms - (lead0 or 0), 4))  # fmt: skip
        lin = getattr(canceller._filter, "linear_output", None)
        if settle is None or tt > end or not lin:
            continue
        m, o = band_db(entry[1]), band_db(lin)
        for b in BANDS:
            if m[b] >= BAND_MIN_DB:
                rows[b].append(m[b] - o[b])
    out = {"trace": path, "mix": trace["row"]["mix"], "echo_db": trace["row"]["echo_db"], "settle": settle,
           "reline_min_ms": ec.RELINE_MIN_MS}  # fmt: skip
    for b, v in rows.items():
        out[b] = None if not v else {"n": len(v), "med": round(statistics.median(v), 1), "p10": round(sorted(v)[len(v) // 10], 1)}
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    rows = []
    for p in argv[1:]:
        try:
            r = one(p)
        except Exception as e:  # (older trace formats)
            print(p, "skipped", type(e).__name__, e, file=sys.stderr)
            continue
        rows.append(r)
        print(Path(p).parent.name[:26], Path(p).stem[:30], r["settle"], "hf", r["hf"], "lf", r["lf"], flush=True)
    out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

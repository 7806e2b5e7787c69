"""rig47: does the room pipe's latency really sink over a row (pipe46: abs20's write -> heard latency, as
libpulse's interpolated timing tells it, falls ~2 ms over a 15 s row), or only its estimate? A bench look
at the rig from ``pulse_trace`` traces, not a kiosk figure.

    python bench/rig47_drift.py TRACE.pkl...
    python bench/rig47_drift.py --whole-row TRACE.pkl...   from the warm-up answer's first second on
    python bench/rig47_drift.py --zeros TRACE.pkl...   runs of exact digital silence in what the daemon heard


Per trace: the writer's latency (``pacat_latency_ms_per_s``) in the first whole second of the answer and
in the last whole second before the visitor's onset (or the answer's end), and the echo's lag behind the
canceller's reference measured on the traced raw microphone and reference (GCC-PHAT, ``own36_lag.lag_ms``)
over the same two seconds, plus the canceller's lead at each (the reference is taken ``lead`` ahead, so
the echo path the microphone saw = lag - lead, up to a constant). If the pipe's latency fell by D ms, the echo comes
D ms sooner and the measured path shrinks by D; if the path holds while the estimate sinks, the drift is
in the estimate. Then per pipe the medians.
"""

from __future__ import annotations

import pickle
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from own36_lag import lag_ms  # noqa: E402

WHOLE_ROW = False  # --whole-row: from the warm-up answer on (the first second with playback), not the measured answer
MIN_PEAK = 0.01  # a GCC-PHAT peak under this: too little playback in the window, not read


def window_path(frames: list[dict[str, Any]], t0: float, lo: float, hi: float) -> tuple[float, float, int] | None:
    """(echo path ms = lag after the reference - the lead it was taken with (up to a constant), peak, frames)
    over frames at room s [lo, hi) with a reference; None if too few or a weak peak."""
    ks = [f for f in frames if lo <= f["mono"] - t0 < hi and f.get("ref") is not None and f.get("raw") is not None]
    if len(ks) < 20:
        return None
    leads = {round(f["lead_s"] * 1000, 2) for f in ks}
    if len(leads) > 1:  # the canceller moved its lead inside the window: not one alignment
        return None
    mic = np.concatenate([np.frombuffer(f["raw"], np.int16) for f in ks]).astype(float)
    ref = np.concatenate([np.frombuffer(f["ref"], np.int16) for f in ks]).astype(float)
    lag, peak = lag_ms(mic, ref)
    if peak < MIN_PEAK:
        return None
    return round(lag - leads.pop(), 3), round(peak, 3), len(ks)  # (a realign moves lag and lead alike)


def one(path: Path) -> dict[str, Any] | None:
    t = pickle.load(open(path, "rb"))
    row = t["row"]
    room = row.get("room") or {}
    t0, answer = room.get("started_mono"), room.get("answer_message_s")
    if t0 is None or answer is None:
        return None
    end = room.get("onset_s") or room.get("last_loud_s") or room.get("room_s")
    per_s = dict(room.get("pacat_latency_ms_per_s") or [])
    first, last = (1 if WHOLE_ROW else int(answer) + 1), int(end) - 1
    if last <= first:
        return None
    got = [(s, window_path(t["aec"], t0, s, s + 1)) for s in range(first, last + 1)]
    got = [(s, w) for s, w in got if w is not None]  # (whole seconds with one lead and a readable peak)
    if len(got) < 2:
        return None
    (first, a), (last, b) = got[0], got[-1]
    la, lb = per_s.get(first), per_s.get(last)
    return {"trace": path.name, "pipe": row.get("room_pipe"), "seconds": [first, last],
            "latency_ms": [la, lb], "latency_change_ms": None if la is None or lb is None else round(lb - la, 1),
            "path_ms": [a and a[0], b and b[0]], "peaks": [a and a[1], b and b[1]],
            "path_change_ms": None if a is None or b is None else round(b[0] - a[0], 3),
            "gaps": len(room.get("abs_gaps") or []), "underruns": len(room.get("pacat_underruns") or [])}  # fmt: skip


def zero_runs(path: Path, min_ms: float = 2.0) -> list[tuple[float, float]]:
    """Runs of >= ``min_ms`` exact zeros in the traced raw microphone (room noise is never exactly 0: a
    run is the room pipe's silence, a gap), as (room s of the run's first frame, ms)."""
    t = pickle.load(open(path, "rb"))
    t0 = t["row"]["room"].get("started_mono") or 0.0
    fs = [f for f in t["aec"] if f.get("raw") is not None]
    if not fs:
        return []
    x = np.concatenate([np.frombuffer(f["raw"], np.int16) for f in fs])
    at = np.concatenate([np.full(len(f["raw"]) // 2, f["mono"] - t0) for f in fs])
    z = np.concatenate([[0], (x == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(z))
    starts, ends = edges[::2], edges[1::2]
    return [(round(float(at[a]), 3), round((b - a) / 16, 2)) for a, b in zip(starts, ends) if b - a >= min_ms * 16]


def main(paths: list[str]) -> int:
    global WHOLE_ROW
    if paths[:1] == ["--whole-row"]:
        WHOLE_ROW, paths = True, paths[1:]
    if paths[:1] == ["--zeros"]:
        for p in paths[1:]:
            t = pickle.load(open(p, "rb"))
            room = t["row"].get("room") or {}
            print(f"{Path(p).parent.parent.name}/{Path(p).parent.name}/{Path(p).name}: zero runs {zero_runs(Path(p))} | "
                  f"gaps {[(g[1], g[2]) for g in room.get('abs_gaps') or []]} start {[(g[1], g[2]) for g in room.get('abs_start_gaps') or []]} "
                  f"underflows {[u[1] for u in room.get('abs_underflows') or []]} underruns {[u[1] for u in room.get('pacat_underruns') or []]}")  # fmt: skip
        return 0
    by: dict[str, list[dict[str, Any]]] = {}
    for p in paths:
        got = one(Path(p))
        if got is None:
            continue
        by.setdefault(str(got["pipe"]), []).append(got)
        print(f"{Path(p).parent.name}/{got['trace']}: pipe {got['pipe']} s {got['seconds']} latency {got['latency_ms']} "
              f"(change {got['latency_change_ms']}) echo path {got['path_ms']} (change {got['path_change_ms']}) "
              f"peaks {got['peaks']} gaps {got['gaps']} underruns {got['underruns']}")  # fmt: skip
    for pipe, rows in by.items():
        lat = [r["latency_change_ms"] for r in rows if r["latency_change_ms"] is not None]
        path = [r["path_change_ms"] for r in rows if r["path_change_ms"] is not None]
        both = [(r["latency_change_ms"], r["path_change_ms"]) for r in rows
                if r["latency_change_ms"] is not None and r["path_change_ms"] is not None]  # fmt: skip
        corr = None
        if len(both) >= 3 and np.std([x for x, _ in both]) > 0 and np.std([y for _, y in both]) > 0:
            corr = round(float(np.corrcoef(np.array(both).T)[0, 1]), 2)
        print(f"pipe {pipe}: traces {len(rows)}; latency change median "
              f"{statistics.median(lat) if lat else None} ms (n={len(lat)}); echo path change median "
              f"{statistics.median(path) if path else None} ms (n={len(path)}, range "
              f"{min(path) if path else None}..{max(path) if path else None}); correlation {corr}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

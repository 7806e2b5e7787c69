"""ug38: the SpeexDSP filter's gain g = <mic, estimate> / |estimate|^2 on the frames that paused
an answer, read from ``bench/pulse_trace.py`` traces (the rig's own per-frame levels; a tuning
tool: no replay, nothing re-run).

g comes from the three levels the canceller tells each frame (linear output = mic - estimate):
g = (P_mic + P_est - P_lin) / (2 P_est). ~1 where the estimate is the echo (with or without a
visitor on top: her voice is not correlated with the estimate); well under 1 where the filter's
estimate is not in the microphone (a stale alignment).

    python bench/ug38_g.py /tmp/ug38/tr1/*.pkl [--json out.json]

Per trace: each pause (the front end's suspicion reaching ``--pause-ms``) with its frame's time
(rig s from the room's start), whether before the visitor's onset (self) or after it (hers),
which endpointer paused (main / raw guard), the trust, the lag state, the levels and g of that
frame and of the 2 before; and, for a barge-in, every trusted frame from her onset to her first
pause with its g (the frames a veto on g could delay).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any


def gain(levels: Any) -> float | None:
    """g from (linear, estimate, mic) dBFS; None when not told or the estimate is silent."""
    if not levels or len(levels) < 3:
        return None
    lin, est, mic = (10 ** (x / 10) if math.isfinite(x) else 0.0 for x in levels[:3])
    if est <= 0:
        return None
    return (mic + est - lin) / (2 * est)


def scan(path: Path, pause_ms: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        d = pickle.load(f)
    row = d["row"]
    room = row.get("room") or {}
    t0 = room.get("started_mono")
    onset = room.get("onset_s") if row.get("kind") == "bargein" else None
    out: dict[str, Any] = {
        "trace": str(path), "mix": row.get("mix"), "kind": row.get("kind"), "echo_db": row.get("echo_db"),
        "onset_s": onset, "delay_s": row.get("delay_s"), "self": row.get("self"),
        "warm_self": row.get("warm_self"), "underruns": room.get("pacat_underruns"),
        "pauses": [], "visitor_frames": [],
    }
    aec = d.get("aec") or []
    prev = 0
    first_hers = None
    lined_up = False
    out["window"] = {"self": [], "hers": [], "after": []}  # g of trusted frames while re-measuring
    for k, r in enumerate(aec):
        lined_up = lined_up or bool(r.get("settled"))
        remeasuring = lined_up and r.get("settled") is False
        if t0 is None or r.get("captured") is None:
            continue
        t = r["captured"] - t0
        total = r.get("suspect_total_ms") or 0
        g = gain(r.get("linear"))
        frame = {
            "t": round(t, 3), "k": k, "trusted": r.get("trusted"), "settled": r.get("settled"),
            "relines": r.get("relines"), "realign": r.get("realign"),
            "levels": None if not r.get("linear") else [round(x, 1) for x in r["linear"]],
            "g": None if g is None else round(g, 3), "main_ms": r.get("suspect_ms"),
            "raw_ms": r.get("raw_suspect_ms"), "total_ms": total, "guarded": r.get("guarded"),
            "remeasuring": remeasuring,
        }
        if r.get("guarded") and r.get("trusted") and remeasuring and g is not None:
            hers = onset is not None and t >= onset - 0.02
            part = "self" if not hers else "hers" if first_hers is None else "after"
            out["window"][part].append(round(g, 3))
        if r.get("guarded") and prev < pause_ms <= total:
            before = [gain(aec[j].get("linear")) for j in range(max(0, k - 2), k)]
            frame["g_before"] = [None if x is None else round(x, 3) for x in before]
            frame["who"] = "main" if (r.get("suspect_ms") or 0) >= pause_ms else "raw"
            frame["hers"] = onset is not None and t >= onset - 0.02
            out["pauses"].append(frame)
            if frame["hers"] and first_hers is None:
                first_hers = t
        if onset is not None and r.get("guarded") and t >= onset - 0.02 and first_hers is None:
            if r.get("trusted") and r.get("linear"):
                out["visitor_frames"].append(frame)
        prev = total if r.get("guarded") else 0
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--pause-ms", type=int, default=40)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows = []
    for path in args.traces:
        try:
            rows.append(scan(path, args.pause_ms))
        except Exception as exc:  # noqa: BLE001 - an odd trace is reported, not fatal
            print(f"{path}: {exc}", file=sys.stderr)
    for r in rows:
        print(f"{r['mix']} {r['kind']} {r['echo_db']} onset {r['onset_s']} delay {r['delay_s']} self {r['self']} ({Path(r['trace']).name})")
        for f in r["pauses"]:
            tag = "HERS" if f["hers"] else "SELF"
            print(f"   {tag} {f['t']:.3f} {f['who']} trusted={f['trusted']} settled={f['settled']} remeas={f['remeasuring']} "
                  f"lin/est/mic={f['levels']} g={f['g']} before={f['g_before']} main/raw={f['main_ms']}/{f['raw_ms']}")
        vs = [f for f in r["visitor_frames"] if f["g"] is not None]
        if vs:
            print("   her trusted frames to her pause: " + ", ".join(
                f"{f['t'] - r['onset_s']:+.2f}:{f['g']:.2f}{'' if f['settled'] else 'u'}" for f in vs))
    pool: dict[str, list[float]] = {"self": [], "hers": [], "after": []}
    for r in rows:
        for part, gs in r["window"].items():
            pool[part] += gs
    for part, gs in pool.items():
        gs.sort()
        print(f"window (trusted, lag re-measured) {part}: n={len(gs)} lowest {gs[:12]}")
        for bar in (0.3, 0.4, 0.5, 0.6):
            print(f"   under {bar}: {sum(g < bar for g in gs)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

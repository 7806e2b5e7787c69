"""The warm-up answer's self-pauses as the rig traced them (TUNING TOOL, stop 39 helper warm39):
no replay, the trace's own per-frame rows (``bench/pulse_trace.py`` ``aec``): for each pause
before the visitor's onset in the first answer (the front end's suspicion reaching 40 ms), which
endpointer (main / raw guard), the trust, trusted frames so far, the canceller's levels
(linear, estimate, mic), g and the frames before it.

    python bench/warm39_rig.py TRACE.pkl... [--json OUT]
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ug38_g import gain  # noqa: E402


def scan(path: Path, pause_ms: int = 40, before: int = 6) -> dict:
    d = pickle.loads(path.read_bytes())
    row = d["row"]
    t0 = row["room"].get("started_mono")
    onset = row["room"].get("onset_s") if row.get("kind") == "bargein" else None
    aec = d.get("aec") or []
    out = {"trace": str(path), "mix": row["mix"], "echo_db": row["echo_db"], "holds": row.get("holds"),
           "warm_self": row.get("warm_self"), "pauses": []}
    prev, trusted_n, first_trust = 0, 0, None
    for k, r in enumerate(aec):
        if r.get("captured") is None or t0 is None:
            continue
        t = r["captured"] - t0
        r["_t"] = t
        if r.get("trusted") and r.get("guarded"):
            trusted_n += 1
            first_trust = t if first_trust is None else first_trust
        r["_tn"] = trusted_n
        total = r.get("suspect_total_ms") or 0
        if r.get("guarded") and prev < pause_ms <= total and (onset is None or t < onset - 0.02):
            frames = []
            for j in range(max(0, k - before), k + 1):
                a = aec[j]
                lin = a.get("linear")
                g = gain(lin)
                ref = a.get("ref_span_dbfs")
                frames.append({
                    "t": round(a.get("_t", math.nan), 3), "trusted": a.get("trusted"), "tn": a.get("_tn"),
                    "settled": a.get("settled"), "realign": a.get("realign"), "relines": a.get("relines"),
                    "lin": None if not lin else [round(x, 1) for x in lin], "g": None if g is None else round(g, 2),
                    "ref": None if ref is None or not math.isfinite(ref) else round(ref, 1),
                    "raw_ret": None if not lin or len(lin) < 3 or ref is None or not math.isfinite(ref) else round(lin[2] - ref, 1),
                    "echo_max": None if a.get("echo_max") is None or not math.isfinite(a["echo_max"]) else round(a["echo_max"], 1),
                    "echo_return": a.get("echo_return") and round(a["echo_return"], 1),
                    "main": a.get("suspect_ms"), "raw": a.get("raw_suspect_ms"),
                })  # fmt: skip
            out["pauses"].append({
                "t": round(t, 3), "who": "main" if (r.get("suspect_ms") or 0) >= pause_ms else "raw",
                "trusted": r.get("trusted"), "trusted_frames": trusted_n,
                "first_trust_t": None if first_trust is None else round(first_trust, 3), "frames": frames,
            })  # fmt: skip
        prev = total if r.get("guarded") else 0
    return out


def main(argv: list[str]) -> int:
    js = None
    if "--json" in argv:
        i = argv.index("--json")
        js, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2 :]
    rows = [scan(Path(p)) for p in argv]
    for r in rows:
        print(f"== {Path(r['trace']).parent.name}/{Path(r['trace']).stem} warm {r['warm_self']} holds {str(r['holds'])[:60]}")
        for p in r["pauses"]:
            print(f"  PAUSE {p['t']} {p['who']} trusted={p['trusted']} trusted_frames={p['trusted_frames']} first_trust={p['first_trust_t']}")
            for f in p["frames"]:
                print("     ", " ".join(f"{k}={v}" for k, v in f.items()))
    if js:
        js.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""warm40's held-out rule (warm40-notes.md, written 16:16 UTC before any held-out run) on its
held-out JSONs (stop 40 helper warm40): pooled over the holds given, per code, self-pauses (warm-up
+ later answer, all rows), -12 dB barge-in p95 (nearest rank) and missed barge-ins; then the
three clauses, mine against main.

    python bench/warm40_rule.py bench/results/lobby-pulse-warm40-heldout-H1-*-2026-12-06.json ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lobby_scoring import pct  # the bench's nearest-rank percentile


def main() -> int:
    pooled: dict[str, dict] = {}
    for path in sys.argv[1:]:
        d = json.loads(Path(path).read_text())
        code = "mine" if "-mine-" in Path(path).name else "main"
        p = pooled.setdefault(code, {"rows": 0, "n_warm": 0, "n_later": 0, "warm": [], "later": [], "delays": [], "missed": [], "loaded": [], "glitch": []})
        for r in d["rows"]:
            p["rows"] += 1
            p["n_warm"] += r.get("warm_self") or 0
            p["n_later"] += len(r.get("self") or [])
            if r.get("warm_self"):
                p["warm"].append(f"{r['mix']} {r['echo_db']}: {r['warm_self']}")
            if r.get("self"):
                p["later"].append(f"{r['mix']} {r['echo_db']}: {r['self']}")
            if r["kind"] == "bargein" and r["echo_db"] == -12.0:
                if r.get("missed") or r.get("delay_s") is None:
                    p["missed"].append(r["mix"])
                else:
                    p["delays"].append(r["delay_s"] * 1000)
            if r.get("loaded"):
                p["loaded"].append(f"{r['mix']} load {r.get('load1_end')} other {r.get('other_busy_cores')}")
            room = r.get("room") or {}
            g = {k: room.get(k) for k in ("pacat_underruns", "parec_overruns", "late_blocks") if room.get(k)}
            if g:
                p["glitch"].append(f"{r['mix']} {r['echo_db']} {g}")
    out = {}
    for code, p in pooled.items():
        warm, later = p["n_warm"], p["n_later"]
        out[code] = {"rows": p["rows"], "self": warm + later, "warm_self": warm, "later_self": later,
                     "n_m12": len(p["delays"]), "p95_ms": round(pct(p["delays"], 95) or 0), "p50_ms": round(sorted(p["delays"])[len(p["delays"]) // 2]) if p["delays"] else None,
                     "missed": len(p["missed"]), "warm_rows": p["warm"], "later_rows": p["later"], "loaded_rows": p["loaded"], "glitch_rows": p["glitch"]}  # fmt: skip
        print(code, json.dumps(out[code], indent=1))
    if {"mine", "main"} <= set(out):
        m, b = out["mine"], out["main"]
        c1, c2, c3 = m["self"] <= b["self"], m["p95_ms"] <= b["p95_ms"] + 10, m["missed"] <= b["missed"]
        print(f"(1) self {m['self']} <= {b['self']}: {c1}; (2) p95 {m['p95_ms']} <= {b['p95_ms']} + 10: {c2}; (3) missed {m['missed']} <= {b['missed']}: {c3}")
        print("RULE MET" if c1 and c2 and c3 else "RULE NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())

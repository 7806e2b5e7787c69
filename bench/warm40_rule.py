"""warm40's held-out rule (warm40-notes.md, written 16:16 UTC before any held-out run) on its
held-out JSONs (stop 40 helper warm40): pooled over the holds given, per code, self-pauses (warm-up
+ later answer, all rows), -12 dB barge-in p95 (nearest rank) and missed barge-ins; then the
three clauses, mine against main.

    python bench/warm40_rule.py bench/results/lobby-pulse-warm40-heldout-H1-*-2026-12-06.json ...
"""

from __future__ import annotations

import json
import sys

from rule_rows import pool_rig_rows


def main() -> int:
    out = pool_rig_rows(sys.argv[1:], lambda name: "mine" if "-mine-" in name else "main")
    for code, f in out.items():
        # warm40's own row format: "mix echo_db: n" per warm-up row, "mix echo_db: [times]" per later row
        f["warm_rows"] = [f"{w['row']}: {w['n']}" for w in f["warm_rows"]]
        f["later_rows"] = [f"{x['row']}: {x['self']}" for x in f["later_rows"]]
        f["p95_ms"] = f["p95_ms"] or 0
        print(code, json.dumps(f, indent=1))
    if {"mine", "main"} <= set(out):
        m, b = out["mine"], out["main"]
        c1, c2, c3 = m["self"] <= b["self"], m["p95_ms"] <= b["p95_ms"] + 10, m["missed"] <= b["missed"]
        print(f"(1) self {m['self']} <= {b['self']}: {c1}; (2) p95 {m['p95_ms']} <= {b['p95_ms']} + 10: {c2}; (3) missed {m['missed']} <= {b['missed']}: {c3}")
        print("RULE MET" if c1 and c2 and c3 else "RULE NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rule G of bench/results/lead43-plan-2026-12-07.md on a held-out hold (helper guard43, stop 43).
As ``bench/guard41_rule.py`` (its row/trace pairing and figures), with stop 43's G1: every branch
rig self-pause's trace, replayed with main's code, pauses too (all rows); and the rig self-pause
entries on rows WITHOUT pipe glitches (no pacat underrun, no parec overrun, not ``loaded``) branch
<= main + 1. G2 missed branch <= main; G3 -12 dB barge-in p95 (nearest rank) branch <=
max(300, main + 10) ms; G4 replays of every trace of both runs with both codes: the branch's code
adds no self-pause and delays no barge-in by > 20 ms against main's on the same trace.

    python bench/guard43_rule.py --run branch bargein B.json TRACEDIR --run main bargein M.json DIR \
        --run branch echo ... --run main echo ... --replays branch.jsonl main.jsonl
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from guard41_rule import _ms, g4_lines, read_inputs  # noqa: E402
from lobby_scoring import pct  # noqa: E402
from rule_rows import glitched  # noqa: E402


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    barge = [r for r in rows if r["kind"] == "bargein" and r["echo_db"] == -12.0]
    delays = [_ms(r.get("delay_s")) for r in barge]
    return {
        "n": len(barge),
        "p95": pct(delays, 95),
        "p50": pct(delays, 50),
        "missed": sum(bool(r.get("missed")) for r in barge),
        "not_confirmed": sum(not r.get("confirmed", True) for r in barge),
        "slowest": sorted(((d, r["mix"]) for d, r in zip(delays, barge, strict=True)), reverse=True)[:3],
        "selfs": [(r["mix"], r["echo_db"], s, r["_trace"], glitched(r)) for r in rows for s in r.get("self") or []],
        "glitched_rows": [
            (r["mix"], r["echo_db"], "loaded" if r.get("loaded") else "",
             len((r.get("room") or {}).get("pacat_underruns") or []),
             len((r.get("room") or {}).get("parec_overruns") or []))
            for r in rows if glitched(r)
        ],
    }  # fmt: skip


def rule(
    rows: dict[str, list[dict[str, Any]]], replay: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    out = ["## rig rows (pulse_aec.py via pulse_trace.py)"]
    fig = {code: figures(rows[code]) for code in ("branch", "main")}
    for code in ("branch", "main"):
        out.append(f"{code} {json.dumps(fig[code], default=str)}")
    b, m = fig["branch"], fig["main"]
    out.append("## G1")
    attributed = True
    for mix, db, what, trace, glitch in b["selfs"]:
        r_main, r_branch = (
            replay["main"].get(trace or "", {}),
            replay["branch"].get(trace or "", {}),
        )
        pauses = bool(r_main.get("self"))
        attributed = attributed and pauses
        out.append(
            f"  branch self-pause {mix} {db:g} dB {what}{' (glitched row)' if glitch else ''}: trace {trace}; "
            f"replay main {r_main.get('self')} branch {r_branch.get('self')} -> "
            f"{'main pauses too' if pauses else 'THE CHANGE'}"
        )
    clean_b = sum(not s[4] for s in b["selfs"])
    clean_m = sum(not s[4] for s in m["selfs"])
    g1 = attributed and clean_b <= clean_m + 1
    out.append(
        f"  attribution {'met' if attributed else 'NOT met'}; rig self-pause entries on glitch-free rows branch "
        f"{clean_b} <= main {clean_m} + 1 (all rows: branch {len(b['selfs'])}, main {len(m['selfs'])}): "
        f"G1 {'met' if g1 else 'NOT met'}"
    )
    g2 = b["missed"] <= m["missed"]
    out.append(
        f"## G2 missed branch {b['missed']} <= main {m['missed']}: {'met' if g2 else 'NOT met'}"
    )
    bar = max(300, (m["p95"] if m["p95"] is not None else math.inf) + 10)
    g3 = b["p95"] is not None and b["p95"] <= bar
    out.append(
        f"## G3 -12 dB p95 branch {b['p95']} <= max(300, main {m['p95']} + 10) = {bar}: {'met' if g3 else 'NOT met'}"
    )
    out.append("## G4 replay of every trace of both runs with both codes")
    traces = sorted(set(replay["branch"]) | set(replay["main"]))
    g4, lines = g4_lines(replay, traces, "  a replay missing for ")
    out.extend(lines)
    out.append(f"## RULE G {'MET' if g1 and g2 and g3 and g4 else 'NOT MET'}")
    return out


def main(argv: list[str] | None = None) -> int:
    rows, replay = read_inputs(argv, __doc__.splitlines()[0])
    print("\n".join(rule(rows, replay)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

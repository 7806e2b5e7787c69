"""Rule S of bench/results/lead45-plan-2026-12-07.md (written 07:09 UTC before any run) on speex45's
held-out 2361-2391 (stop 45 helper speex45): the rig rows of both codes (pulse_trace.py's JSONs; a
file's code is "branch" if its name holds ``-branch``) and the replays of every held-out trace with
both codes (``bench/warm41_why.py replay``; a replay's code is "branch" if its ``kiosk_code`` path
holds ``/branch``; a trace is the branch run's if its path holds ``/branch/``).

    python bench/speex45_rule.py OUT.json [--extra-ms E] --rig RIG.json... --replay BRANCH.json MAIN.json

A row is CLEAN if it has no pacat underrun, no parec overrun and is not ``loaded``.
 S1. self-pause entries (warm-up + later) on CLEAN rows branch <= main; and each branch rig
     self-pause on a clean row that the branch's code reproduces in replay of its own trace (that
     replay pauses itself: any self-pause, a replay being exact only up to its first) also pauses
     with main's code in that replay.
 S2. missed -12 dB barge-ins (all rows) branch <= main.
 S3. -12 dB barge-in p95 (nearest rank) over CLEAN rows branch <= max(150 + E, main's clean p95 + 10);
     fewer than 12 clean barge-ins for either code: "not decidable" (not met).
 S4. replay (every held-out trace of both runs, both codes): the branch's code adds no self-pause
     and delays no barge-in by > 20 ms against main's code (bench/warm41_rule.py's W4).
All-row figures are printed beside the clean-row ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lobby_scoring import pct
from rule_rows import glitched, pool_rig_rows
from warm41_rule import print_verdict, replay_diffs


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    d = sorted(r["delay_s"] * 1000 for r in rows if r["kind"] == "bargein" and r["echo_db"] == -12.0
               and not r.get("missed") and r.get("delay_s") is not None)  # fmt: skip
    warm = sum(r.get("warm_self") or 0 for r in rows)
    later = sum(len(r.get("self") or []) for r in rows)
    return {"rows": len(rows), "self": warm + later, "warm_self": warm, "later_self": later, "n_m12": len(d),
            "p95_ms": round(pct(d, 95)) if d else None, "p50_ms": round(pct(d, 50)) if d else None,
            "missed": sum(1 for r in rows if r["kind"] == "bargein" and r["echo_db"] == -12.0
                          and (r.get("missed") or r.get("delay_s") is None))}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--extra-ms", type=float, default=0.0)
    ap.add_argument("--rig", nargs="+", required=True)
    ap.add_argument("--replay", nargs=2, required=True)
    a = ap.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {"branch": [], "main": []}
    for p in a.rig:
        rows["branch" if "-branch" in Path(p).name else "main"] += json.loads(Path(p).read_text())["rows"]
    allrow = {c: _figures(rs) for c, rs in rows.items()}
    cleanrow = {c: _figures([r for r in rs if not glitched(r)]) for c, rs in rows.items()}
    pooled = pool_rig_rows(a.rig, lambda name: "branch" if "-branch" in name else "main")
    reps = {}
    for p in a.replay:
        d = json.loads(Path(p).read_text())
        reps["branch" if "/branch" in d["kiosk_code"] else "main"] = {r["trace"]: r for r in d["rows"]}
    rb, rm = reps["branch"], reps["main"]
    clean_of = {("branch", r["mix"], r["echo_db"]): not glitched(r) for r in rows["branch"]}
    clean_of.update({("main", r["mix"], r["echo_db"]): not glitched(r) for r in rows["main"]})
    # S1 attribution: the branch run's traces with a rig self-pause on a clean row.
    attrib = []
    for trace, r in sorted(rb.items()):
        if "/branch/" not in trace or not (r["rig_warm_self"] or r["rig_self"]):
            continue
        is_clean = clean_of.get(("branch", r["mix"], r["echo_db"]))
        m = rm.get(trace)
        reproduced = bool(r["replay_self"])
        attrib.append({"trace": trace, "clean": is_clean, "rig_warm_self": r["rig_warm_self"], "rig_self": r["rig_self"],
                       "replay_branch_self": r["replay_self"], "replay_main_self": None if m is None else m["replay_self"],
                       "branch_code_reproduces": reproduced, "main_code_pauses_too": bool(m and m["replay_self"])})  # fmt: skip
    s1a = all(x["main_code_pauses_too"] for x in attrib if x["clean"] and x["branch_code_reproduces"])
    cb, cm = cleanrow["branch"], cleanrow["main"]
    s1b = cb["self"] <= cm["self"]
    s2 = allrow["branch"]["missed"] <= allrow["main"]["missed"]
    decidable = cb["n_m12"] >= 12 and cm["n_m12"] >= 12
    bound = None if cm["p95_ms"] is None else max(150 + a.extra_ms, cm["p95_ms"] + 10)
    s3 = decidable and cb["p95_ms"] is not None and bound is not None and cb["p95_ms"] <= bound
    added, delayed, changed = replay_diffs(rm, rb)
    s4 = not added and not delayed
    verdict = {
        "S1": {"met": s1a and s1b, "clean_self_branch_main": [cb["self"], cm["self"]], "count_met": s1b,
               "attribution_met": s1a, "attribution": attrib},
        "S2": {"met": s2, "missed_branch_main": [allrow["branch"]["missed"], allrow["main"]["missed"]]},
        "S3": {"met": s3, "decidable": decidable, "clean_n_m12_branch_main": [cb["n_m12"], cm["n_m12"]],
               "clean_p95_branch_main": [cb["p95_ms"], cm["p95_ms"]], "bound": bound, "extra_ms": a.extra_ms},
        "S4": {"met": s4, "traces_replayed_both": len(set(rb) & set(rm)), "changed": changed,
               "branch_added_self_pause": added, "branch_delayed_over_20ms": delayed},
    }  # fmt: skip
    met = all(v["met"] for v in verdict.values())
    got = {"rule": "lead45-plan-2026-12-07.md rule S", "clean_rows": cleanrow, "all_rows": allrow,
           "pooled_all_rows": pooled, "rule_S": verdict, "met": met}  # fmt: skip
    a.out.write_text(json.dumps(got, indent=1))
    for c in ("branch", "main"):
        print(c, "CLEAN", cleanrow[c], "| ALL", allrow[c])
    print_verdict(verdict, "S")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

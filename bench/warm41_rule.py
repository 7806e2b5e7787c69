"""Rule W (bench/results/lead41-plan-2026-12-06.md, written 18:48 UTC before any run) on warm41's
held-out (stop 41 helper warm41): the rig rows of both codes (pulse_trace.py's JSONs), pooled over
the holds, and the replays of every held-out trace with both codes (``bench/warm41_why.py replay``).

    python bench/warm41_rule.py OUT.json --rig H1-branch.json H1-main.json ... \\
        --replay branch-code-on-all.json main-code-on-all.json

A JSON's code is "branch" if its file name holds ``-branch``, else "main"; each replay JSON's
``kiosk_code`` says which code replayed it (``/branch`` or ``/main`` in the path).

 W1. no self-pause of the branch's run is the change's: each branch rig self-pause's trace,
     replayed with main's code, pauses too (any self-pause of that replay); and rig self-pauses
     (warm-up + later) branch <= main + 1;
 W2. missed -12 dB barge-ins branch <= main;
 W3. -12 dB barge-in p95 (nearest rank, lobby_scoring.pct; p50 too since lead42) branch <= max(150, main + 10) ms;
 W4. replay, every held-out trace of both runs, both codes: the branch's code adds no self-pause
     and delays no barge-in by > 20 ms against main's code on the same trace.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rule_rows import pool_rig_rows


def rig(paths: list[str]) -> dict[str, Any]:
    return pool_rig_rows(paths, lambda name: "branch" if "-branch" in name else "main")


def _code(d: dict[str, Any]) -> str:
    return "branch" if "/branch" in d["kiosk_code"] else "main"


def replay_diffs(
    rm: dict[str, dict[str, Any]], rb: dict[str, dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Per trace replayed with both codes (main ``rm``, branch ``rb``): the traces whose first
    self-pause the branch's code adds or brings earlier, its barge-ins > 20 ms later, and every
    trace whose first pause or silence differs."""
    added: list[str] = []
    delayed: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for trace, m in sorted(rm.items()):
        b = rb.get(trace)
        if b is None:
            continue
        fmp = m["replay_self"][0]["replay_s"] if m["replay_self"] else None
        fbp = b["replay_self"][0]["replay_s"] if b["replay_self"] else None
        sm, sb = m["replay_silent_ms"], b["replay_silent_ms"]
        if fmp != fbp or sm != sb:
            changed.append({"trace": trace, "first_self_main_branch": [fmp, fbp], "silent_ms_main_branch": [sm, sb]})
        if fbp is not None and (fmp is None or fbp < fmp):
            added.append(trace)
        if sm is not None and (sb is None or sb > sm + 20):
            delayed.append({"trace": trace, "silent_ms_main_branch": [sm, sb]})
    return added, delayed, changed


def print_verdict(verdict: dict[str, dict[str, Any]], rule: str) -> None:
    """One line per clause (its figures, not its long lists), then the rule's verdict."""
    for k, v in verdict.items():
        print(k, "met" if v["met"] else "NOT met", {x: y for x, y in v.items() if x not in ("attribution", "changed")})
    print(f"RULE {rule} MET" if all(v["met"] for v in verdict.values()) else f"RULE {rule} NOT MET")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--rig", nargs="+", required=True)
    ap.add_argument("--replay", nargs=2, required=True)
    args = ap.parse_args()
    figures = rig(args.rig)
    reps = {_code(d): {r["trace"]: r for r in d["rows"]} for d in (json.loads(Path(p).read_text()) for p in args.replay)}
    rb, rm = reps["branch"], reps["main"]
    # W1: each branch rig self-pause's trace (the branch run's traces: /branch in the path).
    attrib = []
    for trace, r in sorted(rb.items()):
        if "/branch" not in trace or not (r["rig_warm_self"] or r["rig_self"]):
            continue
        m = rm.get(trace)
        attrib.append({"trace": trace, "rig_warm_self": r["rig_warm_self"], "rig_self": r["rig_self"],
                       "replay_branch_self": r["replay_self"], "replay_main_self": None if m is None else m["replay_self"],
                       "main_code_pauses_too": bool(m and m["replay_self"])})  # fmt: skip
    fb, fm = figures.get("branch", {}), figures.get("main", {})
    w1a = all(a["main_code_pauses_too"] for a in attrib)
    w1b = fb["self"] <= fm["self"] + 1
    w2 = fb["missed"] <= fm["missed"]
    w3 = fb["p95_ms"] is not None and fm["p95_ms"] is not None and fb["p95_ms"] <= max(150, fm["p95_ms"] + 10)
    added, delayed, changed = replay_diffs(rm, rb)
    w4 = not added and not delayed
    verdict = {
        "W1": {"met": w1a and w1b, "attribution": attrib, "all_branch_pauses_pause_on_main_code": w1a,
               "self_branch_main": [fb["self"], fm["self"]], "self_within_main_plus_1": w1b},
        "W2": {"met": w2, "missed_branch_main": [fb["missed"], fm["missed"]]},
        "W3": {"met": w3, "p95_branch_main": [fb["p95_ms"], fm["p95_ms"]], "bound": None if fm["p95_ms"] is None else max(150, fm["p95_ms"] + 10)},
        "W4": {"met": w4, "traces_replayed_both": len(set(rb) & set(rm)), "changed": changed,
               "branch_added_self_pause": added, "branch_delayed_over_20ms": delayed},
    }  # fmt: skip
    met = all(v["met"] for v in verdict.values())
    got = {"rig": figures, "rule_W": verdict, "met": met}
    args.out.write_text(json.dumps(got, indent=1))
    for code, f in figures.items():
        print(code, {k: f[k] for k in ("rows", "self", "warm_self", "later_self", "n_m12", "p95_ms", "p50_ms", "missed")})
    print_verdict(verdict, "W")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

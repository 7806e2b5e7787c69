"""Rule G of bench/results/lead41-plan-2026-12-06.md on a held-out hold (helper guard41, stop 41):
the rig rows (``bench/pulse_aec.py`` JSONs, the user figures) for G1-G3 and the replays of every
trace of both runs with both codes (``bench/guard41_replay.py`` JSON lines, tuning-tool figures)
for G1's attribution and G4.

    python bench/guard41_rule.py --run branch bargein B.json TRACEDIR --run main bargein M.json DIR \
        --run branch echo ... --run main echo ... --replays branch.jsonl main.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lobby_scoring import pct  # noqa: E402

DELAY_MS = 20  # G4: a barge-in the branch's code hears more than this later than main's


def _ms(s: float | None) -> float:
    return math.inf if s is None else round(s * 1000)


def _trace_of(trace_dir: Path, mix: str, seen: dict[Path, int]) -> Path | None:
    """The trace of a row: <dir>/<mix>-guard*.pkl (each file once, in order)."""
    for path in sorted(trace_dir.glob(f"{mix}-guard*.pkl")):
        if path not in seen:
            seen[path] = 1
            return path
    return None


def compare_replays(
    trace: str, rb: dict[str, Any], rm: dict[str, Any]
) -> tuple[bool, bool, str | None]:
    """One trace replayed with the branch's code (``rb``) and main's (``rm``): whether the branch
    adds a self-pause, delays the barge-in by more than DELAY_MS, and the line telling how they
    differ (None: identical). Shared by guard41_rule and guard43_rule (rule G4)."""
    added = len(rb["self"]) > len(rm["self"])
    later = rm["barge_ms"] is not None and (
        rb["barge_ms"] is None or rb["barge_ms"] - rm["barge_ms"] > DELAY_MS
    )
    keys = ("self", "barge_ms", "loud_echo_frames")
    if not (any(rb[k] != rm[k] for k in keys) or added or later):
        return added, later, None
    return added, later, (
        f"  {Path(trace).parent.name}/{Path(trace).name}: branch self {rb['self']} barge "
        f"{rb['barge_ms']} loud {rb['loud_echo_frames']} | main self {rm['self']} barge "
        f"{rm['barge_ms']} loud {rm['loud_echo_frames']}"
        + ("  ADDS A SELF-PAUSE" if added else "")
        + (f"  LATER > {DELAY_MS} ms" if later else "")
    )


def g4_lines(
    replay: dict[str, dict[str, dict[str, Any]]], traces: list[str], missing: str
) -> tuple[bool, list[str]]:
    """Rule G4 over ``traces``: each compared with :func:`compare_replays`; a trace without a
    replay with both codes gets ``missing`` + its name and fails G4. Returns whether G4 holds and
    the lines telling it, the count line last (shared by guard41_rule and guard43_rule)."""
    g4, n, same, lines = True, 0, 0, []
    for trace in traces:
        rb, rm = replay["branch"].get(trace), replay["main"].get(trace)
        if rb is None or rm is None:
            lines.append(f"{missing}{trace}")
            g4 = False
            continue
        n += 1
        added, later, line = compare_replays(trace, rb, rm)
        same += line is None
        if line is not None:
            lines.append(line)
        g4 = g4 and not added and not later
    lines.append(f"  {n} traces, {same} identical with both codes: G4 {'met' if g4 else 'NOT met'}")
    return g4, lines


def read_inputs(
    argv: list[str] | None, description: str
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, dict[str, Any]]]]:
    """The rule's inputs from its command line: the rig rows per code (each with its trace) and the
    replays per code, keyed by trace (shared by guard41_rule and guard43_rule)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--run",
        nargs=4,
        action="append",
        metavar=("CODE", "KIND", "JSON", "TRACEDIR"),
        required=True,
    )
    p.add_argument("--replays", nargs=2, metavar=("BRANCH_JSONL", "MAIN_JSONL"), required=True)
    args = p.parse_args(argv)
    rows: dict[str, list[dict[str, Any]]] = {"branch": [], "main": []}
    for code, kind, path, trace_dir in args.run:
        seen: dict[Path, int] = {}
        for row in json.loads(Path(path).read_text())["rows"]:
            trace = _trace_of(Path(trace_dir), row["mix"], seen)
            rows[code].append({**row, "_kind": kind, "_trace": str(trace) if trace else None})
    replay: dict[str, dict[str, dict[str, Any]]] = {"branch": {}, "main": {}}
    for code, path in zip(("branch", "main"), args.replays, strict=True):
        for line in Path(path).read_text().splitlines():
            if line:
                got = json.loads(line)
                replay[code][got["trace"]] = got
    return rows, replay


def main(argv: list[str] | None = None) -> int:
    rows, replay = read_inputs(argv, __doc__.splitlines()[0])
    ok = True
    print("## rig rows (pulse_aec.py)")
    fig: dict[str, dict[str, Any]] = {}
    for code in ("branch", "main"):
        barge = [r for r in rows[code] if r["kind"] == "bargein" and r["echo_db"] == -12.0]
        delays = [_ms(r.get("delay_s")) for r in barge]
        selfs = [
            (r["mix"], r["echo_db"], s, r["_trace"])
            for r in rows[code]
            for s in r.get("self") or []
        ]
        fig[code] = {
            "n": len(barge),
            "p95": pct(delays, 95),
            "p50": pct(delays, 50),
            "missed": sum(bool(r.get("missed")) for r in barge),
            "not_confirmed": sum(not r.get("confirmed", True) for r in barge),
            "selfs": selfs,
            "slowest": sorted(
                ((d, r["mix"]) for d, r in zip(delays, barge, strict=True)), reverse=True
            )[:3],
            "loaded": [r["mix"] for r in rows[code] if r.get("loaded")],
            "underruns": [
                (r["mix"], r["room"].get("pacat_underruns"))
                for r in rows[code]
                if r["room"].get("pacat_underruns")
            ],
            "late": [
                (r["mix"], r["room"].get("late_blocks"))
                for r in rows[code]
                if r["room"].get("late_blocks")
            ],
        }
        print(code, json.dumps(fig[code], default=str))
    b, m = fig["branch"], fig["main"]
    # G1: each branch self-pause's trace, replayed with main's code, pauses too; rig count <= main + 1
    print("## G1")
    g1 = len(b["selfs"]) <= len(m["selfs"]) + 1
    for mix, db, what, trace in b["selfs"]:
        r_main = replay["main"].get(trace or "", {})
        r_branch = replay["branch"].get(trace or "", {})
        pauses = bool(r_main.get("self"))
        g1 = g1 and pauses
        print(
            f"  branch self-pause {mix} {db:g} dB {what}: trace {trace}; replay main {r_main.get('self')} "
            f"branch {r_branch.get('self')} -> {'main pauses too' if pauses else 'THE CHANGE'}"
        )
    print(
        f"  rig self-pauses branch {len(b['selfs'])} main {len(m['selfs'])}: G1 {'met' if g1 else 'NOT met'}"
    )
    g2 = b["missed"] <= m["missed"]
    print(f"## G2 missed branch {b['missed']} <= main {m['missed']}: {'met' if g2 else 'NOT met'}")
    bar = max(300, (m["p95"] if m["p95"] is not None else math.inf) + 10)
    g3 = b["p95"] is not None and b["p95"] <= bar
    print(
        f"## G3 -12 dB p95 branch {b['p95']} <= max(300, main {m['p95']} + 10) = {bar}: "
        f"{'met' if g3 else 'NOT met'}"
    )
    print("## G4 replay of every trace of both runs with both codes")
    g4, lines = g4_lines(replay, sorted(replay["branch"]), "  no main replay of ")
    print("\n".join(lines))
    ok = g1 and g2 and g3 and g4
    print(f"## RULE G {'MET' if ok else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

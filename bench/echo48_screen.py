"""The screen of bench/results/lead48-plan-2026-12-07.md for echo48's candidate (TUNING TOOL, stop 48
helper echo48), over two ``bench/warm41_why.py replay`` passes of the same traces (main's code, the
candidate's) and their ``warm41_why.py compare``:

 1. the candidate adds no self-pause (a trace whose first replayed self-pause comes earlier, or
    that pauses itself only with the candidate);
 2. it delays no barge-in by > 20 ms (the replay's speaker-silent time);
 3. it removes >= 2 of main's replayed later-answer self-pauses (main's first self-pause, in the
    later part, that the candidate's replay does not make at or before that time:
    bench/echo47_rule.py's ``removed_pauses``);
 4. every barge-in main's code pauses for still pauses within 20 ms (her double-talk frame on which
    main pauses: main's replay silent time s, the candidate's at most s + 20 ms; not silent = not
    paused).

    python bench/echo48_screen.py OUT.json MAIN_REPLAY.json BRANCH_REPLAY.json COMPARE.json [--warm FRAMES.json...]

With ``--warm`` (stop 49 helper warm49, bench/results/lead49-plan-2026-12-07.md's screen) clause 3 counts
main's replayed WARM-UP first self-pauses instead: those whose pausing frame in ``FRAMES.json``
(bench/echo47_frames.py over the same traces with main's code) comes before the canceller's first trust
or in warm46's window (bench/echo47_classify.py ``warm_state``); the rig-time part of each removed pause
(warm41_why's WARM_S) is printed beside.

A replay is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from echo47_rule import removed_pauses  # noqa: E402


def counts(rows: dict[str, dict[str, Any]]) -> dict[str, int]:
    firsts = [r["replay_self"][0] for r in rows.values() if r["replay_self"]]
    return {"traces": len(rows), "self_pauses": sum(len(r["replay_self"]) for r in rows.values()),
            "traces_pausing": len(firsts), "first_later": sum(p["part"] == "later" for p in firsts),
            "first_warm_up": sum(p["part"] == "warm-up" for p in firsts),
            "bargeins_silent": sum(r["replay_silent_ms"] is not None for r in rows.values())}  # fmt: skip


def main(out: Path, main_path: Path, branch_path: Path, compare_path: Path, frames: list[Path] | None = None) -> int:
    rm = {r["trace"]: r for r in json.loads(main_path.read_text())["rows"]}
    rb = {r["trace"]: r for r in json.loads(branch_path.read_text())["rows"]}
    cmp = json.loads(compare_path.read_text())
    if frames:
        from echo47_classify import warm_state

        state = {r["trace"]: warm_state(r["pauses"][0]["frames"][-1]) for p in frames for r in json.loads(p.read_text())["rows"]
                 if r["pauses"]}  # fmt: skip
        removed = [dict(x, state=state.get(x["trace"]), part=rm[x["trace"]]["replay_self"][0]["part"])
                   for x in removed_pauses(rm, rb) if state.get(x["trace"])]  # fmt: skip
        print("main's warm-up first pauses (frames):", sorted(t for t, s in state.items() if s), flush=True)
    else:
        removed = [x for x in removed_pauses(rm, rb) if rm[x["trace"]]["replay_self"][0]["part"] == "later"]
    late = []
    for trace, m in rm.items():
        b = rb.get(trace)
        if b is None or m["replay_silent_ms"] is None:
            continue
        if b["replay_silent_ms"] is None or b["replay_silent_ms"] > m["replay_silent_ms"] + 20:
            late.append({"trace": trace, "silent_ms": [m["replay_silent_ms"], b["replay_silent_ms"]]})
    clauses = {
        "1_adds_no_self_pause": {"met": not cmp["b_added_self_pause"], "added": cmp["b_added_self_pause"]},
        "2_delays_no_bargein_over_20ms": {"met": not cmp["b_delayed_over_20ms"], "delayed": cmp["b_delayed_over_20ms"]},
        f"3_removes_ge_2_{'warm_up' if frames else 'later'}_pauses": {"met": len(removed) >= 2, "removed": removed},
        "4_every_main_bargein_pause_within_20ms": {"met": not late, "late": late},
    }
    got = {"main": str(main_path), "main_code": cmp["a_code"], "branch": str(branch_path), "branch_code": cmp["b_code"],
           "counts_main": counts(rm), "counts_branch": counts(rb), "changed": cmp["changed"], "clauses": clauses,
           "met": all(c["met"] for c in clauses.values())}  # fmt: skip
    out.write_text(json.dumps(got, indent=1))
    print("main", got["counts_main"])
    print("branch", got["counts_branch"])
    print("changed traces", len(cmp["changed"]))
    for c in cmp["changed"]:
        print("  ", c)
    for k, v in clauses.items():
        print(k, "met" if v["met"] else "NOT met", {a: b for a, b in v.items() if a != "met"})
    print("SCREEN", "MET" if got["met"] else "NOT MET")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    warm = [Path(p) for p in args[args.index("--warm") + 1 :]] if "--warm" in args else None
    sys.exit(main(*(Path(p) for p in args[:4]), frames=warm))

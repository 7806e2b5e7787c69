"""The screen clause of bench/results/lead42-plan-2026-12-06.md (helper guard42, stop 42): a
candidate's replays against main's over the same stored traces (``bench/guard41_replay.py`` JSON
lines, one file per code). Passes if it removes at least one self-pause, adds none, and delays no
barge-in by more than 20 ms. A tuning tool (replays, not user figures).

    python bench/guard42_screen.py main.jsonl candidate.jsonl [--name c5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DELAY_MS = 20


def _load(path: Path) -> dict[str, dict[str, Any]]:
    return {(got := json.loads(line))["trace"]: got for line in path.read_text().splitlines() if line}


def screen(main: dict[str, dict[str, Any]], cand: dict[str, dict[str, Any]], name: str) -> list[str]:
    out: list[str] = []
    removed = added = delayed = sooner = missed = 0
    moved: list[str] = []
    for trace in sorted(main):
        a, b = main[trace], cand.get(trace)
        if b is None:
            out.append(f"  MISSING in {name}: {trace}")
            added += 1
            continue
        sa, sb = len(a["self"]), len(b["self"])
        removed += max(0, sa - sb)
        added += max(0, sb - sa)
        ba, bb = a["barge_ms"], b["barge_ms"]
        late = ba is not None and (bb is None or bb - ba > DELAY_MS)
        missed += ba is not None and bb is None
        delayed += late
        sooner += ba is not None and bb is not None and bb < ba
        if sa != sb or ba != bb or a["loud_echo_frames"] != b["loud_echo_frames"]:
            moved.append(
                f"  {trace.replace('/tmp/', '')}: main self {a['self']} barge {ba} loud echo "
                f"{a['loud_echo_frames']} | {name} self {b['self']} barge {bb} loud echo {b['loud_echo_frames']}"
                f"{'  <-- DELAYED' if late else ''}"
            )
    total = {k: sum(len(x["self"]) for x in d.values()) for k, d in (("main", main), (name, cand))}
    loud = {k: sum(x["loud_echo_frames"] for x in d.values()) for k, d in (("main", main), (name, cand))}
    ok = removed >= 1 and added == 0 and delayed == 0
    out.insert(0, f"## {name} vs main, {len(main)} traces: self-pauses {total} loud echo frames {loud}; "
                  f"removed {removed}, added {added}, barge-ins delayed > {DELAY_MS} ms {delayed} "
                  f"(missed {missed}), sooner {sooner} -> screen {'PASSES' if ok else 'FAILS'}")
    return out + moved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("main", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("--name", default="candidate")
    args = p.parse_args(argv)
    print("\n".join(screen(_load(args.main), _load(args.candidate), args.name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

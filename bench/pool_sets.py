"""Per fresh set and pooled: the rig rows of ``pulse_trace`` / ``pulse_aec`` JSONs, named sets of
files (stop 48's pooled SpeexDSP figures were an ad hoc script copied into its results file; this
is that script made a tool). Clean rows: not ``rule_rows.glitched``; p95 / p50 nearest rank of
-12 dB barge-in delays.

    python bench/pool_sets.py [--mode guard] 'NAME=GLOB' ...

``--mode`` keeps only rows of that mode (a JSON of both codes or modes holds each row's ``mode``).
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rule_rows import barge_in_figures, glitched  # noqa: E402


def main(argv: list[str]) -> int:
    mode = None
    if argv[:1] == ["--mode"]:
        mode, argv = argv[1], argv[2:]
    pooled: dict[str, list[dict]] = {"all": [], "clean": []}
    for named in argv:
        name, _, pattern = named.partition("=")
        files = sorted(glob.glob(pattern))
        rows = [r for f in files for r in json.loads(Path(f).read_text())["rows"]]
        rows = [r for r in rows if mode in (None, r.get("mode"))]
        for which, sel in (("all", rows), ("clean", [r for r in rows if not glitched(r)])):
            n, p95, p50, missed, later, warm = barge_in_figures(sel, lambda r: r["echo_db"] == -12.0)
            steal = max((r.get("steal_cores") or 0 for r in sel), default=0)
            print(f"{name:28s} {which:5s} files {len(files):2d} rows {len(sel):3d} -12 dB n {n:2d} "
                  f"p95 {p95} p50 {p50} missed {missed} self-pauses later {later} + warm-up {warm} "
                  f"steal max {steal:.3f}")  # fmt: skip
            pooled[which] += sel
    for which, sel in pooled.items():
        n, p95, p50, missed, later, warm = barge_in_figures(sel, lambda r: r["echo_db"] == -12.0)
        print(f"POOLED {which:5s} ({len(argv)} sets) rows {len(sel)} -12 dB n {n} "
              f"p95 {p95} p50 {p50} "
              f"missed {missed} self-pauses later {later} + warm-up {warm}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

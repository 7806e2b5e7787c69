"""Visitor frames (barge-ins without an earlier self-pause, trusted, double talk or loud, from 0.1 s
before her onset to her first pause) whose linear output is correlated with the filter's estimate
at most -0.4, from ``bench/warm42_why.py`` logs (TUNING TOOL, stop 44 helper echo44).

    python bench/echo44_visitor_corr.py WHY.pkl...
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import echo44_why as w  # noqa: E402


def main(paths: list[str]) -> int:
    rows = []
    for got, log, _t0, path in w.load(paths):
        name = "/".join(path.split("/")[-3:])
        onset = got.get("onset", math.inf)
        if [x for x in got["self_pauses_s"] if x < onset] or not math.isfinite(onset):
            continue
        k1 = w.pause_frame(log, int(onset / w.FRAME_S) - 5)
        if k1 is None:
            continue
        for j in range(max(0, int(onset / w.FRAME_S) - 5), k1 + 1):
            c, r = w.cols(log[j]), w.corr(log[j])
            if c["T"] and (c["dt"] or c["loud"]) and r <= -0.4:
                rows.append((r, name, j, k1, w.line(log[j], j)))
    rows.sort()
    for r in rows:
        print(f"{r[0]:+.2f} {r[1]} k{r[2]} pause k{r[3]} :: {r[4]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

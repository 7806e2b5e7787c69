"""Evaluate bench/results/kept39-rule-2026-12-06.md on the held-out JSONs (helper kept39): tapskip38's
evaluator (bench/tapskip38_rule.py, itself adapted from rawlag37's) with clause 1 on later-answer
self-pauses only. Exit 0 if met, 1 if not met, 2 if inconclusive.

    python bench/kept39_rule.py [H1-mine H1-peer H2-mine H2-peer]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tapskip38_rule as rule  # noqa: E402

FILES = [f"{rule.R}lobby-pulse-kept39-heldout-{p}-{c}-{rule.D}.json"
         for p in ("H1-1401-1431-bargein-12db", "H2-1401-1411-echo") for c in ("mine", "peer")]  # fmt: skip

if __name__ == "__main__":
    sys.exit(rule.main(sys.argv[1:], FILES, "self_later", "1 later-answer self-pauses (H1+H2) mine <= main"))

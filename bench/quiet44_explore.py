"""Candidate onset cues tried on per-frame logs (TUNING TOOL, stop 44 helper quiet44).

    python bench/quiet44_explore.py LOG.pkl [RULE...]

LOG.pkl: ``bench/warm41_why.py why`` over stored SpeexDSP traces with main's code. A rule fires on
a trusted frame (the filter trusted before it, its linear levels known) from the frame's levels
(and the frames before it); where it fires before the labelled onset (or in an echo mix) it would
have paused the answer on its own echo; after the onset, before main's pause, it would have paused
sooner. Only up to main's first pause of each trace is a log exact (a replay is exact up to its
first pause): a quick look before a real replay screen (bench/quiet44_screen.py), never a figure.
RULE: ``name`` of RULES below. Prints per rule the echo frames it fires on and the barge-ins it
makes sooner (ms).
"""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Callable
from typing import Any

Frame = dict[str, Any]


def feats(d: Frame) -> dict[str, float] | None:
    lin = d.get("lin")
    if not lin or len(lin) < 3 or not d.get("T") or not d.get("tbf"):
        return None
    n = math.nan

    def sub(a: Any, b: Any) -> float:
        return n if a is None or b is None else a - b

    return {
        "lb": lin[0] - d.get("bar", n),
        "le": lin[0] - lin[1],
        "rr": sub(d.get("rret"), d.get("usual")),
        "he": sub(d.get("hi"), d.get("hi_est")),
        "hm": sub(d.get("hi"), d.get("hi_med")),
        "v": float(bool(d.get("voiced"))),
        "v1": float(bool(d.get("first"))),
        "lin": lin[0],
        "lvl": d.get("lvl", n),
        "bar": d.get("bar", n),
        "tsince": d.get("tsince", 0),
    }


def consecutive(n: int, test: Callable[[dict[str, float]], bool]) -> Callable[[list[Any], int], bool]:
    def rule(fs: list[Any], k: int) -> bool:
        if k + 1 < n:
            return False
        return all(fs[j] is not None and test(fs[j]) for j in range(k - n + 1, k + 1))

    return rule


def ge(x: float, y: float) -> bool:
    return not math.isnan(x) and x >= y


RULES: dict[str, Callable[[list[Any], int], bool]] = {}
for lb in (0, 1, 2, 3, 4, 5):
    for le in (0, 1, 2, 3):
        for n in (1, 2):
            RULES[f"dt:lb{lb}:le{le}:n{n}"] = consecutive(n, lambda f, lb=lb, le=le: ge(f["lb"], lb) and ge(f["le"], le))
for hm in (8, 10, 12, 14, 16):
    for he in (6, 8, 10, 12):
        for n in (1, 2):
            RULES[f"cons:hm{hm}:he{he}:n{n}"] = consecutive(n, lambda f, hm=hm, he=he: ge(f["hm"], hm) and ge(f["he"], he))
for s in (25, 26, 27, 28, 29):
    for m in (6, 8, 10):
        RULES[f"sum:s{s}:m{m}:n2"] = consecutive(
            2, lambda f, s=s, m=m: ge(f["hm"], m) and ge(f["he"], m) and f["hm"] + f["he"] >= s
        )


def first_pause(log: list[Frame], k0: int) -> int | None:
    for k in range(k0, len(log)):
        if log[k].get("sus"):
            return k
    return None


def evaluate(res: list[Any], rule: Callable[[list[Any], int], bool]) -> tuple[list[str], list[tuple[str, float, float]]]:
    false, faster = [], []
    for got, log, _t0, path in res:
        fs = [feats(d) for d in log]
        bargein = got.get("kind") == "bargein" and got.get("onset") not in (None, math.inf)
        onset_k = int(got["onset"] / 0.02) if bargein else len(log)
        # main's own first self-pause ends exactness: look no further than it
        self_k = [round(s / 0.02) - 1 for s in got.get("self_pauses_s") or []]
        exact_end = min([*self_k, len(log)])
        for k in range(min(onset_k, exact_end)):
            if fs[k] is not None and rule(fs, k):
                false.append(f"{path.split('/tmp/')[-1]}@{(k + 1) * 0.02:.2f}")
                break
        if bargein and onset_k < exact_end:
            pk = first_pause(log, onset_k)
            if pk is None:
                continue
            for k in range(onset_k, pk):
                if fs[k] is not None and rule(fs, k):
                    main_ms = ((pk + 1) * 0.02 - got["onset"]) * 1000
                    new_ms = ((k + 1) * 0.02 - got["onset"]) * 1000
                    faster.append((path.split("/tmp/")[-1], main_ms, new_ms))
                    break
    return false, faster


def main() -> int:
    res = pickle.load(open(sys.argv[1], "rb"))
    names = sys.argv[2:] or list(RULES)
    for name in names:
        false, faster = evaluate(res, RULES[name])
        slow = [x for x in faster if x[1] > 150]
        gain = sum(m - n for _, m, n in faster)
        print(f"{name:24s} false {len(false):3d} faster {len(faster):3d} slow-faster {len(slow):3d} sum {gain:6.0f} ms")
        if len(names) <= 3:
            for x in false:
                print("   FALSE", x)
            for p, m, n in faster:
                print(f"   faster {p} {m:.0f} -> {n:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

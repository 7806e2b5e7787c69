"""Classify the replayed SpeexDSP self-pauses of ``bench/warm46_frames.py`` outputs and measure how far
visitors' frames stand from them (TUNING TOOL, stop 46 helper warm46).

    python bench/warm46_classify.py FRAMES.json...

Per replayed self-pause (before the labelled onset): the pausing frame's features and its family:
  W  warm-up, the filter adds energy: in the warm-up window (trusted frames since start-up x 20 ms
     < WARM_UP_TRUSTED_MS), double talk's estimate path, g < STALE_FILTER_GAIN (the linear output
     louder than the microphone), the raw return < WARM_UP_RAW_OVER_RETURN_DB over its usual;
  other families by path (est / loud / cons) and the warm-up window.
Then the visitor frames (0.1 s before her onset to her first pause) that family W's test would
clear, over every replayed barge-in, and the nearest ones (margins). A replay is exact up to its
first pause: a tuning tool.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

WARM_MS = 800
G_MAX = 0.5
ROVER_MAX = 5.0


def in_warm(f: dict[str, Any]) -> bool:
    return f.get("T") and (f.get("tsince") or 0) * 20 < WARM_MS


def w_levels(f: dict[str, Any], g_max: float = G_MAX, rover_max: float = ROVER_MAX) -> bool:
    """Family W's levels: the filter adds to the echo (g) and the raw return is near its usual."""
    g, rover = f.get("g"), f.get("rover")
    return g is not None and g < g_max and rover is not None and rover < rover_max


def family_w(f: dict[str, Any], g_max: float = G_MAX, rover_max: float = ROVER_MAX) -> bool:
    return bool(in_warm(f) and w_levels(f, g_max, rover_max))


def family(f: dict[str, Any]) -> str:
    if family_w(f) and f.get("path") == "est":
        return "W"
    return f"{'warm' if in_warm(f) else 'later'}-{f.get('path')}"


def short(f: dict[str, Any]) -> str:
    keys = ("k", "t", "tsince", "lin", "over", "g", "rover", "hover", "path", "aov", "loud", "first", "lvl", "bar")
    return " ".join(f"{k}={f.get(k)}" for k in keys)


def name(trace: str) -> str:
    return "/".join(trace.split("/")[-3:])


def main(paths: list[str]) -> int:
    rows = [r for p in paths for r in json.load(open(p))["rows"]]
    print(f"{len(rows)} traces replayed")
    fams: Counter[str] = Counter()
    print("\n== replayed self-pauses before the labelled onset (each trace's first 3), pausing frame")
    for r in rows:
        for p in r["pauses"]:
            f = p["frames"][-1]
            fam = family(f)
            fams[fam] += 1
            print(f"{fam:10s} {name(r['trace'])} {r['echo_db']} s={p['s']} | {short(f)}")
    print("\nfamilies:", dict(fams))
    print("\n== visitor frames (onset - 0.1 s .. her first pause) inside the warm-up window")
    n_barge, n_warm, cleared = 0, 0, []
    near = []
    for r in rows:
        if not r["visitor"]:
            continue
        n_barge += 1
        vw = [f for f in r["visitor"] if in_warm(f)]
        if vw:
            n_warm += 1
        for f in vw:
            print(f"   {name(r['trace'])} {r['echo_db']} silent {r['silent_ms']} | {short(f)}")
            if family_w(f):
                cleared.append((name(r["trace"]), f))
            if f.get("g") is not None and f.get("rover") is not None:
                near.append((f["g"], f["rover"], name(r["trace"]), f["k"], f.get("dt")))
    print(f"barge-ins with a first pause: {n_barge}; with a visitor frame in the warm-up window: {n_warm}")
    print(f"visitor frames family W's test would clear: {len(cleared)}")
    for nm, f in cleared:
        print(f"   CLEAR {nm} | {short(f)}")
    print("visitor frames in the window, lowest g first (g, raw over usual, trace, k, dt):")
    for x in sorted(near)[:15]:
        print("  ", x)
    print("\n== all visitor frames (any window): g < 0.5 with the raw return < 5 dB over its usual")
    allv = [(f["g"], f["rover"], name(r["trace"]), f["k"], f.get("tsince"), f.get("dt"), f.get("over"))
            for r in rows for f in r["visitor"]
            if w_levels(f)]  # fmt: skip
    print(len(allv), "frames; lowest tsince first (g, rover, trace, k, tsince, dt, over):")
    for x in sorted(allv, key=lambda x: x[4] or 0)[:15]:
        print("  ", x)
    print("\n== echo frames in the warm-up window, >= 6 dB over the bar (before onset): g < 0.5, rover < 5")
    ew = [(name(r["trace"]), f) for r in rows for f in r["warm"] if family_w(f)]
    print(len(ew), "frames in", len({n for n, _ in ew}), "traces; of them double talk (paused):",
          sum(bool(f.get("dt")) for _, f in ew))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

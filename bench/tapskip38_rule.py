"""Evaluate bench/results/tapskip38-rule-2026-12-06.md on the held-out JSONs (helper tapskip38; adapted
from rawlag37's evaluator). Exit 0 if met, 1 if not met, 2 if inconclusive.

    python bench/tapskip38_rule.py [H1-mine H1-peer H2-mine H2-peer]
"""

from __future__ import annotations

import json
import math
import sys

from lobby_scoring import pct as nearest_rank

R = "bench/results/"
D = "2026-12-06"
BEFORE_S, AFTER_S, ONSET_BEFORE_S = 0.25, 1.0, 1.0  # (the glitch clause's windows)


def pct(v, q):
    """The bench's nearest-rank percentile; no rows = inf (the clause fails)."""
    return math.inf if not v else nearest_rank(v, q)


def glitches(r):
    """Each pacat underrun / parec overrun of the row, in s on the pause times' clock."""
    room = r.get("room") or {}
    t0 = room.get("started_mono")
    return [m - t0 for key in ("pacat_underruns", "parec_overruns") for m, _ in room.get(key) or []]


def self_times(r):
    return [float(e.split(" at ")[1].rstrip("s")) for e in r.get("self") or []]


def excused(r, t):
    return any(g - BEFORE_S <= t <= g + AFTER_S for g in glitches(r))


def delay_glitched(r):
    room = r.get("room") or {}
    if room.get("onset_mono") is None:
        return bool(glitches(r))
    onset = room["onset_mono"] - room["started_mono"]
    end = onset + (r["delay_s"] if r.get("delay_s") is not None else math.inf)
    return any(onset - ONSET_BEFORE_S <= g <= end for g in glitches(r))


def dl(r):
    return r["delay_s"] if r.get("delay_s") is not None else math.inf


def figures(h1, h2, drop_glitch):
    rows = [r for r in h1["rows"] if r["kind"] == "bargein" and r["echo_db"] == -12.0 and "error" not in r]
    if drop_glitch:
        rows = [r for r in rows if not delay_glitched(r)]
    d = [dl(r) for r in rows]
    allrows = h1["rows"] + h2["rows"]
    later = sum(1 for r in allrows for t in self_times(r) if not (drop_glitch and excused(r, t)))
    # warm_self is a count per row with no times: the clause cannot place it; a warm-up pause in a
    # row with any glitch is excused in B (a glitch anywhere in the row).
    warm = sum(int(r.get("warm_self") or 0) for r in allrows if not (drop_glitch and glitches(r)))
    p95 = pct(d, 95)
    return {
        "n": len(d), "p95_ms": None if math.isinf(p95) else round(p95 * 1000),
        "p50_ms": round(pct(d, 50) * 1000) if d else None,
        "missed": sum(bool(r.get("missed")) for r in rows), "self_later": later, "self_warm": warm,
        "self_total": later + warm, "p95_rows": [r["mix"] for r in rows if dl(r) == p95],
    }  # fmt: skip


def verdict(m, p, self_key="self_total"):
    return [
        m[self_key] <= p[self_key],
        (m["p95_ms"] or 1e9) <= (p["p95_ms"] or 1e9) + 10,
        m["missed"] <= p["missed"],
    ]


TAPSKIP38_FILES = [f"{R}lobby-pulse-tapskip38-heldout-{p}-{c}-{D}.json"
                   for p in ("H1-1241-1271-bargein-12db", "H2-1241-1251-echo") for c in ("mine", "peer")]  # fmt: skip


def main(argv, default_files=TAPSKIP38_FILES, self_key="self_total",
         self_rule="1 self (later + warm-up, H1+H2) mine <= main"):  # fmt: skip
    """The rule on H1 (barge-ins) and H2 (echo mixes), mine and main's; clause 1 counts ``self_key``
    (kept39's rule: later-answer pauses only)."""
    files = argv[:4] or default_files
    h1 = {c: json.load(open(f)) for c, f in zip(("mine", "peer"), files[:2])}
    h2 = {c: json.load(open(f)) for c, f in zip(("mine", "peer"), files[2:])}
    out = {}
    for c in ("mine", "peer"):
        allrows = h1[c]["rows"] + h2[c]["rows"]
        out[c] = {
            "code": [h1[c]["kiosk_code"], h2[c]["kiosk_code"]], "started": [h1[c].get("started"), h2[c].get("started")],
            "finished": [h1[c].get("finished"), h2[c].get("finished")],
            "A": figures(h1[c], h2[c], False), "B": figures(h1[c], h2[c], True),
            "errors": [r["mix"] for r in allrows if "error" in r],
            "self_rows": [(r["mix"], r["echo_db"], r["self"]) for r in allrows if r.get("self")],
            "warm_rows": [(r["mix"], r["echo_db"], r["warm_self"]) for r in allrows if r.get("warm_self")],
            "glitch_rows": [(r["mix"], [round(g, 2) for g in glitches(r)]) for r in allrows if glitches(r)],
            "excused": [(r["mix"], t) for r in allrows for t in self_times(r) if excused(r, t)],
            "delay_glitched": [r["mix"] for r in h1[c]["rows"] if r["kind"] == "bargein" and delay_glitched(r)],
        }  # fmt: skip
    paired = {}
    for r in h1["mine"]["rows"]:
        for q in h1["peer"]["rows"]:
            if q["mix"] == r["mix"] and r["echo_db"] == -12.0:
                paired[r["mix"]] = (r.get("delay_s"), q.get("delay_s"))
    out["paired_delays_mine_main"] = paired
    print(json.dumps(out, indent=1, default=str))
    a = verdict(out["mine"]["A"], out["peer"]["A"], self_key)
    b = verdict(out["mine"]["B"], out["peer"]["B"], self_key)
    errors = out["mine"]["errors"] + out["peer"]["errors"]
    names = [self_rule, "2 H1 -12 dB p95 mine <= main + 10 ms",
             "3 H1 missed mine <= main"]  # fmt: skip
    for n, x, y in zip(names, a, b):
        print(f"rule {n}: A (all counted) {x} | B (glitch-excused out) {y}")
    print("rule 4 no error rows:", not errors, errors)
    if errors:
        print("RULE INCONCLUSIVE (error rows)")
        return 2
    if all(a) and all(b):
        print("RULE MET")
        return 0
    if not all(a) and not all(b):
        print("RULE NOT MET")
        return 1
    print("RULE INCONCLUSIVE (the glitch clause: A and B differ)")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

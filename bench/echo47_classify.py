"""The later-answer self-pauses of ``bench/echo47_frames.py`` outputs against visitors' frames, cue by
cue (TUNING TOOL, stop 47 helper echo47).

    python bench/echo47_classify.py FRAMES.json...

1. The named clean-row later pauses (families E, R, P of bench/results/warm46-classify-2026-12-07.txt
   and stop 46's held-out three) with every cue of their pausing frame.
2. Every replayed self-pause before the onset, after the warm-up window (the first of a trace:
   exact), the pausing frame's cues.
3. Per cue (low = echo): the visitors' frames (0.1 s before her onset to her first pause) nearest
   the named pauses: over all her frames, her double-talk frames and her pausing frame, and the
   margin (dB or units) from each named pause; and what clearing every frame at or under the
   named pauses' highest value would do to the visitors' first pauses (frames later; "beyond" when
   no frame of hers in the list is left: her first pause moves past what the replay shows).
A replay is exact up to its first pause: a tuning tool.
"""

from __future__ import annotations

import json
import sys
from typing import Any

WARM_MS = 800
# (trace path ending, pause index in the trace's replay, family)
NAMED = (
    ("rig45/tr/C/s2281-heldout-echo-077-speex-later-1.pkl", 0, "E"),
    ("rig45/tr/C/s2281-heldout-echo-077-speex-later-1.pkl", 1, "R"),
    ("rig45/tr/C2/s2301-heldout-bargein-084-speex-later-pipe60-1.pkl", 0, "R"),
    ("rig45/tr/C2/s2301-heldout-bargein-079-speex-later-1.pkl", 0, "P"),
    ("warm46/ho/main/s2411-bargein/heldout-bargein-086-speex-later-pipe80-1.pkl", 0, "ho"),
    ("warm46/ho/main/s2411-echo/heldout-echo-076-speex-later-pipe80-1.pkl", 0, "ho"),
    ("warm46/ho/main/s2431-bargein/heldout-bargein-080-speex-later-pipe80-1.pkl", 0, "ho"),
)
CUES = ("nov_h0", "nov_h6", "nov_h12", "nov_m0", "nov_m6", "nov_m12", "nov_l0", "nov_l6", "nov_l12", "fit",
        "over", "rover", "hover", "refwin")  # fmt: skip
HIGH_IS_ECHO = {"fit"}
SHOW = ("k", "t", "tsince", "lin", "over", "g", "rover", "hover", "path", "aov", "pitch", "refnow", "refwin",
        "refsil", "nov_h0", "nov_h6", "nov_h12", "nov_m6", "nov_l6", "fit")  # fmt: skip


def short(f: dict[str, Any]) -> str:
    return " ".join(f"{k}={f.get(k)}" for k in SHOW if k in f)


def name(trace: str) -> str:
    return "/".join(trace.split("/")[-3:])


def echo_side(cue: str, x: float) -> float:
    """The cue turned so that lower is more echo-like."""
    return -x if cue in HIGH_IS_ECHO else x


def main(paths: list[str]) -> int:
    rows = [r for p in paths for r in json.load(open(p))["rows"]]
    print(f"{len(rows)} traces replayed")
    named = []
    print("\n== 1. named clean-row later pauses: the pausing frame and the 3 before")
    for end, i, fam in NAMED:
        r = next((r for r in rows if r["trace"].endswith(end)), None)
        if r is None or len(r["pauses"]) <= i:
            print(f"{fam} {end} pause {i}: NOT reproduced (replay self {None if r is None else r['self_pauses_s']})")
            continue
        p = r["pauses"][i]
        print(f"{fam} {end} {r['echo_db']} replay s={p['s']} (rig self {r['rig_self']}, onset {r['onset_s']})")
        for f in p["frames"]:
            print("    ", short(f))
        named.append((fam, end, p["frames"][-1]))
    print("\n== 2. every replayed first self-pause after the warm-up window (before the onset)")
    later = []
    for r in rows:
        if r["pauses"]:
            f = r["pauses"][0]["frames"][-1]
            if (f.get("tsince") or 0) * 20 >= WARM_MS:
                later.append((r, f))
                print(f"   {name(r['trace'])} {r['echo_db']} s={r['pauses'][0]['s']} | {short(f)}")
    print(f"{len(later)} later first pauses")
    vis = [(r, r["visitor"]) for r in rows if r["visitor"]]
    print(f"\n== 3. cues: named pauses vs visitors' frames ({len(vis)} barge-ins with a first pause replayed)")
    for cue in CUES:
        xs = [(fam, end, f.get(cue)) for fam, end, f in named]
        have = [echo_side(cue, x) for _, _, x in xs if x is not None]
        if not have:
            continue
        top = max(have)
        allf = [(echo_side(cue, f[cue]), name(r["trace"]), f["k"]) for r, fs in vis for f in fs if f.get(cue) is not None]
        dtf = [(echo_side(cue, f[cue]), name(r["trace"]), f["k"]) for r, fs in vis for f in fs
               if f.get(cue) is not None and f.get("dt")]  # fmt: skip
        pf = [(echo_side(cue, fs[-1][cue]), name(r["trace"]), fs[-1]["k"]) for r, fs in vis if fs[-1].get(cue) is not None]
        print(f"\n-- {cue} (echo side = {'high' if cue in HIGH_IS_ECHO else 'low'}): named "
              + ", ".join(f"{fam}:{x}" for fam, _, x in xs))  # fmt: skip
        for what, got in (("all frames", allf), ("double-talk frames", dtf), ("pausing frames", pf)):
            got.sort()
            under = [g for g in got if g[0] <= top]
            print(f"   visitors' {what}: n={len(got)}, lowest {got[:4]}; at or under the named top {top}: {len(under)}")
        for fam, end, x in xs:
            if x is not None and dtf:
                print(f"   margin {fam} {end.split('/')[-1][:40]}: to the lowest double-talk frame "
                      f"{round(min(dtf)[0] - echo_side(cue, x), 2)}, to the lowest frame {round(min(allf)[0] - echo_side(cue, x), 2)}")  # fmt: skip
        moved = []
        for r, fs in vis:
            k0 = fs[-1]["k"]
            left = [f for f in fs if f.get("dt") and (f.get(cue) is None or echo_side(cue, f[cue]) > top)]
            if not left:
                moved.append((name(r["trace"]), "beyond"))
            elif left[0]["k"] != k0:
                moved.append((name(r["trace"]), (left[0]["k"] - k0) * 20))
        print(f"   clearing <= {top}: visitors' first pauses moved: {len(moved)} {moved[:8]}")
        cleared = [(name(r["trace"]), f.get(cue)) for r, f in later if f.get(cue) is not None and echo_side(cue, f[cue]) <= top]
        print(f"   later first pauses (section 2) at or under it: {len(cleared)} of {len(later)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

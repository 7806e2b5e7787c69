"""Per self-pause (and per barge-in's first pause) of ``bench/warm42_why.py`` logs: which cue /
path let the frame through and what the echo-alone cues read there (TUNING TOOL, stop 44 helper
echo44).

    python bench/echo44_why.py pauses WHY.pkl...     each first self-pause before the onset: frames k-3..k
    python bench/echo44_why.py visitors WHY.pkl...   each barge-in's frames from 0.1 s before her onset
                                                     to her first pause (the same columns)

Columns per frame: T (trusted), ts (trusted frames since start-up; warm-up < 40), path (double
talk's: est / loud / consonant), over = linear - estimate dB, raw = raw return - usual return dB
(rret - usual), lm = linear - raw mic dB, g = <mic, estimate> / |estimate|^2, fit (ex_ref: a
least-squares FIR on the reference), pitch (linear output's, reference's), hb = linear - estimate
over 3 kHz dB, bar margin = linear - bar dB. A replay is exact up to its first pause: tuning only.
"""

from __future__ import annotations

import math
import pickle
import sys

FRAME_S = 0.02


def gain(lin: list) -> float | None:
    if not lin or len(lin) < 3 or any(x is None for x in lin[:3]):
        return None
    p = [10 ** (x / 10) if math.isfinite(x) else 0.0 for x in lin[:3]]
    return None if p[1] <= 0 else (p[2] + p[1] - p[0]) / (2 * p[1])


def cols(d: dict) -> dict:
    lin = d.get("lin") or []
    over = lin[0] - lin[1] if len(lin) > 1 else math.nan
    lm = lin[0] - lin[2] if len(lin) > 2 else math.nan
    raw = (d["rret"] - d["usual"]) if d.get("rret") is not None and d.get("usual") is not None else math.nan
    hb = d.get("hb")
    hbo = hb[0] - hb[1] if hb and None not in hb[:2] else math.nan
    bm = lin[0] - d["bar"] if lin and d.get("bar") is not None else math.nan
    g = gain(lin)
    return {"T": int(bool(d.get("T"))), "ts": d.get("tsince"), "path": d.get("path"), "over": over, "raw": raw,
            "lm": lm, "g": math.nan if g is None else g, "fit": d.get("ex_ref"), "pitch": d.get("pitch"),
            "hb": hbo, "bm": bm, "dt": int(bool(d.get("dt"))), "loud": int(bool(d.get("loud"))),
            "sus": d.get("sus"), "far": d.get("far")}  # fmt: skip


def line(d: dict, k: int) -> str:
    c = cols(d)
    p = c["pitch"]
    ps = "-" if not p else f"{p[0]:.2f}/{p[1]:.2f}"
    fit = "-" if c["fit"] is None else f"{c['fit']:.3f}"
    return (f"k{k} T{c['T']} ts{c['ts']} dt{c['dt']} loud{c['loud']} path={c['path']} over{c['over']:+.1f} "
            f"raw{c['raw']:+.1f} lm{c['lm']:+.1f} g{c['g']:+.2f} fit{fit} pitch{ps} hb{c['hb']:+.1f} "
            f"bar{c['bm']:+.1f} far{c['far']} sus{c['sus']}")  # fmt: skip


def pause_frame(log: list, start: int) -> int | None:
    for k in range(max(0, start), len(log)):
        if (log[k].get("sus") or 0) >= 40:
            return k
    return None


def load(paths: list[str]):
    for p in paths:
        yield from pickle.load(open(p, "rb"))


def pauses(paths: list[str]) -> int:
    for got, log, _t0, path in load(paths):
        onset = got.get("onset", math.inf)
        s = [x for x in got["self_pauses_s"] if x < onset]
        if not s:
            continue
        k = round(s[0] / FRAME_S) - 1
        name = "/".join(path.split("/")[-3:])
        print(f"== {name} {got.get('echo_db')} self {s[0]:.2f} rig_holds {got.get('rig_holds')}")
        for j in range(max(0, k - 3), min(len(log), k + 1)):
            print("   ", ">" if j == k else " ", line(log[j], j))
    return 0


def visitors(paths: list[str]) -> int:
    for got, log, _t0, path in load(paths):
        onset = got.get("onset", math.inf)
        if not math.isfinite(onset):
            continue
        s = [x for x in got["self_pauses_s"] if x < onset]
        k1 = pause_frame(log, int(onset / FRAME_S) - 5)
        if s or k1 is None:
            continue  # (paused before her: the replay is not exact after)
        name = "/".join(path.split("/")[-3:])
        print(f"== {name} {got.get('echo_db')} onset {onset:.2f} pause k{k1} silent {got.get('speaker_silent_ms')}")
        for j in range(max(0, int(onset / FRAME_S) - 5), k1 + 1):
            print("   ", ">" if j == k1 else " ", line(log[j], j))
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd != "margins":
        sys.exit({"pauses": pauses, "visitors": visitors}[cmd](args))


def corr(d: dict) -> float:
    """<linear, estimate> / (|linear| |estimate|) = (g - 1) |estimate| / |linear| (levels)."""
    lin = d.get("lin") or []
    g = gain(lin)
    if g is None or len(lin) < 3 or not math.isfinite(lin[0]):
        return math.nan
    return (g - 1.0) * 10 ** ((lin[1] - lin[0]) / 20)


def margins(paths: list[str]) -> int:
    """Per barge-in (no self-pause before her): the lowest corr (and its frame's columns) over
    trusted frames from 0.1 s before her onset to her first pause whose linear output is at least
    DOUBLE_TALK_OVER_BAR_DB over the bar; and per first self-pause, the pausing frame's corr."""
    vis, selfs = [], []
    for got, log, _t0, path in load(paths):
        name = "/".join(path.split("/")[-3:])
        onset = got.get("onset", math.inf)
        s = [x for x in got["self_pauses_s"] if x < onset]
        if s:
            k = round(s[0] / FRAME_S) - 1
            selfs.append((corr(log[k]), name, line(log[k], k)))
            continue
        if not math.isfinite(onset):
            continue
        k1 = pause_frame(log, int(onset / FRAME_S) - 5)
        if k1 is None:
            continue
        best = (math.inf, "")
        for j in range(max(0, int(onset / FRAME_S) - 5), k1 + 1):
            c = cols(log[j])
            if not c["T"] or not (c["bm"] >= 6.0):
                continue
            r = corr(log[j])
            if r < best[0]:
                best = (r, line(log[j], j) + f" pause k{k1}")
        vis.append((best[0], name, best[1]))
    vis.sort()
    selfs.sort()
    print(len(vis), "barge-ins: lowest corr over her frames >= bar + 6 dB (trusted), onset-0.1 s .. her pause")
    for r in vis[:25]:
        print(f"  {r[0]:+.2f} {r[1]} {r[2]}")
    print(len(selfs), "first self-pauses: the pausing frame's corr")
    for r in selfs:
        print(f"  {r[0]:+.2f} {r[1]} {r[2]}")
    return 0


if __name__ == "__main__" and sys.argv[1] == "margins":
    sys.exit(margins(sys.argv[2:]))

"""The later-answer self-pauses of ``bench/echo47_frames.py`` outputs against visitors' frames, cue by
cue (TUNING TOOL, stop 47 helper echo47).

    python bench/echo47_classify.py [--wlater | --warm] FRAMES.json...

1. The named clean-row later pauses (families E, R, P of bench/results/warm46-classify-2026-12-07.txt
   and stop 46's held-out three) with every cue of their pausing frame.
2. Every replayed self-pause before the onset, after the warm-up window (the first of a trace:
   exact), the pausing frame's cues.
3. Per cue (low = echo): the visitors' frames (0.1 s before her onset to her first pause) nearest
   the named pauses: over all her frames, her double-talk frames and her pausing frame, and the
   margin (dB or units) from each named pause; and what clearing every frame at or under the
   named pauses' highest value would do to the visitors' first pauses (frames later; "beyond" when
   no frame of hers in the list is left: her first pause moves past what the replay shows).
With ``--wlater`` (stop 48 helper echo48) only the state "W-later" instead: every replayed self-pause
(each trace's first 3; the first is exact) whose pausing frame is family W's state after the warm-up
window (double talk's estimate path, trusted frames since start-up x 20 ms >= WARM_MS, g < 0.5, the
raw return < 5 dB over its usual, the linear output at the answer's pitch as
kiosk.core.echo_double_talk judges it), with its cues; every visitor frame in that state (any path,
any window; pitch is only logged on double-talk frames: a frame without it is listed as possible);
and per cue (echo side as in section 3) the pauses' least echo-like value against the visitors'
most echo-like one, over her frames in the state and over her double-talk frames in it.
With ``--warm`` (stop 49 helper warm49) the warm-up instead: every replayed first self-pause (exact)
whose pausing frame comes before the canceller's first trust since start-up (0 trusted frames) or
in warm46's window (trusted, trusted frames x 20 ms < WARM_MS), with the rule of kiosk/core that
passed it as a visitor and why each veto of kiosk.core.echo_double_talk said no (from the logged
levels); the visitor frames in the same states; and every visitor double-talk frame (any window) at
the answer's pitch with the raw return under WARM_UP_RAW_OVER_RETURN_DB over its usual, with its fit.
A replay is exact up to its first pause: a tuning tool.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warm46_classify import WARM_MS, in_warm, w_levels  # noqa: E402

from kiosk.core.echo_double_talk import ANSWER_PITCH_MIN, ANSWER_PITCH_WITHIN  # noqa: E402

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


WLATER_CUES = ("fit", "nov_m6", "nov_m12", "nov_l6", "nov_h12", "g", "over", "rover", "hover")
WLATER_SHOW = ("k", "t", "tsince", "dt", "path", "over", "g", "rover", "hover", "pitch", "fit", "nov_m6", "nov_m12",
               "nov_l6", "nov_h12", "refsil")  # fmt: skip


def answers_pitch(f: dict[str, Any]) -> bool | None:
    """The linear output at the answer's pitch (None: not logged for this frame)."""
    p = f.get("pitch")
    if not p:
        return None
    return p[0] >= ANSWER_PITCH_MIN and p[1] >= p[0] - ANSWER_PITCH_WITHIN


def w_state(f: dict[str, Any], later: bool = True) -> bool:
    """Family W's levels (g, raw return), trusted, (``later``: after the warm-up window); the pitch
    and path are not asked here."""
    return bool(f.get("T")) and w_levels(f) and not (later and in_warm(f))


def wlater(rows: list[dict[str, Any]]) -> int:
    print(f"{len(rows)} traces replayed")
    pauses = []
    print("\n== replayed self-pauses in state W-later (each trace's first 3; 'first' = exact)")
    for r in rows:
        seen = set()
        for i, p in enumerate(r["pauses"]):
            f = p["frames"][-1]
            if f["k"] in seen:  # (a later pause of the same run: its suspicion held from that frame)
                continue
            seen.add(f["k"])
            if f.get("path") == "est" and w_state(f) and answers_pitch(f):
                pauses.append((r, i, f))
                print(f" P {'first' if i == 0 else 'then '} {name(r['trace'])} {r['echo_db']} s={p['s']} | "
                      + " ".join(f"{k}={f.get(k)}" for k in WLATER_SHOW))  # fmt: skip
    firsts = [x for x in pauses if x[1] == 0]
    n_first = sum(bool(r["pauses"]) for r in rows)
    n_later = sum(bool(r["pauses"]) and (r["pauses"][0]["frames"][-1].get("tsince") or 0) * 20 >= WARM_MS for r in rows)
    print(f"W-later pauses: {len(pauses)} ({len(firsts)} first pauses); traces with a first pause {n_first}, "
          f"of them after the warm-up window {n_later}")  # fmt: skip
    print("\n== visitor frames (0.1 s before her onset .. her first pause) in W's levels (any window, any path)")
    vis = []
    for r in rows:
        for f in r["visitor"]:
            if w_state(f, later=False):
                ap = answers_pitch(f)
                vis.append((r, f, ap))
                print(f" V {'PAUSE' if f is r['visitor'][-1] else '     '} pitch={'?' if ap is None else ap} "
                      f"{'later' if w_state(f) else 'warm '} {name(r['trace'])} silent {r['silent_ms']} | "
                      + " ".join(f"{k}={f.get(k)}" for k in WLATER_SHOW))  # fmt: skip
    n_vis = sum(len(r["visitor"]) for r in rows)
    n_dt = sum(bool(f.get("dt")) for r in rows for f in r["visitor"])
    print(f"visitor frames {n_vis} (double talk {n_dt}) in {sum(bool(r['visitor']) for r in rows)} barge-ins; "
          f"in W's levels {len(vis)}, of them not at a pitch known to be other than the answer's "
          f"{sum(ap is not False for _, _, ap in vis)}")  # fmt: skip
    print("\n== per cue: the W-later pauses' least echo-like value vs the visitors' most echo-like (echo side low)")
    near = [(r, f) for r, f, ap in vis if ap is not False]
    for cue in WLATER_CUES:
        ps = [echo_side(cue, f[cue]) for _, _, f in pauses if f.get(cue) is not None]
        if not ps:
            continue
        for what, fs in (("in W's levels, pitch not other", near), ("of them double talk", [x for x in near if x[1].get("dt")]),
                         ("all double talk", [(r, f) for r in rows for f in r["visitor"] if f.get("dt")])):  # fmt: skip
            vs = sorted((echo_side(cue, f[cue]), name(r["trace"]), f["k"]) for r, f in fs if f.get(cue) is not None)
            top = max(ps)
            if vs:
                print(f" {cue:8s} pauses <= {top} | visitors {what}: n={len(vs)}, lowest {vs[0]}; margin "
                      f"{round(vs[0][0] - top, 3)}")  # fmt: skip
    return 0


WARM_SHOW = ("k", "t", "T", "tsince", "lvl", "bar", "loud", "dt", "path", "aov", "sus", "lin", "over", "g", "corr",
             "rover", "hover", "pitch", "fit", "nov_m6")  # fmt: skip


def warm_state(f: dict[str, Any]) -> str | None:
    """"first-trust" (before the canceller's first trust since start-up), "window" (warm46's warm-up
    window, trusted) or None."""
    if not f.get("tsince"):
        return "first-trust"
    return "window" if in_warm(f) else None


def short_corr(f: dict[str, Any]) -> float | None:
    """<linear, estimate> / (|linear| |estimate|) = (g - 1) |estimate| / |linear| (the warm-up's
    short-of-echo cue), from the logged levels."""
    lin, g = f.get("lin") or [], f.get("g")
    if len(lin) < 2 or g is None:
        return None
    return round((g - 1.0) * 10 ** ((lin[1] - lin[0]) / 20), 3)


def warm_fields(f: dict[str, Any]) -> str:
    """A frame's ``WARM_SHOW`` fields, k=v (corr from the logged levels: :func:`short_corr`)."""
    return " ".join(f"{k}={short_corr(f) if k == 'corr' else f.get(k)}" for k in WARM_SHOW)


def why_passed(f: dict[str, Any]) -> str:
    """The rule that passed the frame as a visitor, and why each veto said no (logged levels)."""
    from kiosk.core import echo_double_talk as edt

    over, rover, g, hover, corr = f.get("over"), f.get("rover"), f.get("g"), f.get("hover"), short_corr(f)
    ap = answers_pitch(f)
    if f.get("dt"):
        rule = f"double talk ({f.get('path')} path)"
    elif f.get("loud") and f.get("lvl") is not None and f.get("bar") is not None and f["lvl"] >= f["bar"]:
        rule = f"level rule (cleaned frame {f['lvl']} >= bar {f['bar']})"
    elif f.get("loud"):
        rule = "bands or pitch rule"
    else:
        return "not loud, no double talk on the main endpointer (the raw guard's suspicion)"
    if not f.get("T"):
        return rule + "; canceller not trusted: no veto asked"
    notes = [f"corr {corr} vs {edt.WARM_UP_SHORT_OF_ECHO_CORR}"]
    if over is not None and rover is not None and f.get("dt") and f.get("path") != "loud":
        notes.append(f"leak: over {over} vs {edt.WARM_UP_LEAK_OVER_ESTIMATE_DB}, rover {rover} vs "
                     f"{edt.WARM_UP_RAW_OVER_RETURN_DB}")  # fmt: skip
    if over is not None and over > edt.ANSWER_OVER_ESTIMATE_DB:
        notes.append(f"own voice: over {over} > {edt.ANSWER_OVER_ESTIMATE_DB}, so asks low-only (hover {hover} vs "
                     f"{edt.ANSWER_HIGH_UNDER_ESTIMATE_DB}, over vs {edt.ANSWER_LOW_OVER_ESTIMATE_DB}), echo-alone "
                     f"(rover {rover} vs {edt.ANSWER_RAW_OVER_RETURN_DB}), young filter (g {g} vs "
                     f"{edt.YOUNG_FILTER_GAIN}, rover vs {edt.WARM_UP_RAW_OVER_RETURN_DB}) before the pitch")  # fmt: skip
    notes.append(f"answer's pitch {'?' if ap is None else ap}")
    notes.append(f"missed echo: fit {f.get('fit')} vs {edt.MISSED_ECHO_FIT} (2 frames)")
    return rule + "; " + "; ".join(notes)


def warm(rows: list[dict[str, Any]]) -> int:
    from kiosk.core import echo_double_talk as edt

    print(f"{len(rows)} traces replayed")
    print("\n== 1. replayed first self-pauses in the warm-up (before the first trust, or in warm46's window)")
    pauses = []
    for r in rows:
        if not r["pauses"]:
            continue
        p = r["pauses"][0]
        f = p["frames"][-1]
        state = warm_state(f)
        if state is None:
            continue
        pauses.append((r, f, state))
        print(f"\n{state} {name(r['trace'])} {r['echo_db']} s={p['s']} (rig self {r['rig_self']} warm {r['rig_warm']})")
        for x in p["frames"]:
            print("    ", warm_fields(x))
        print("   passed by:", why_passed(f))
    n_first = sum(bool(r["pauses"]) for r in rows)
    print(f"\nwarm-up first pauses: {len(pauses)} of {n_first} traces that pause first "
          f"({sum(s == 'first-trust' for *_, s in pauses)} before the first trust)")  # fmt: skip
    print("\n== 2. visitor frames (0.1 s before her onset .. her first pause) in the same states")
    for state in ("first-trust", "window"):
        fs = [(r, f) for r in rows for f in r["visitor"] if warm_state(f) == state]
        print(f"-- {state}: {len(fs)} frames in {len({r['trace'] for r, _ in fs})} barge-ins; double talk "
              f"{sum(bool(f.get('dt')) for _, f in fs)}, loud {sum(bool(f.get('loud')) for _, f in fs)}")  # fmt: skip
        for r, f in fs:
            if f.get("dt") or f.get("loud"):
                print(f"   {name(r['trace'])} silent {r['silent_ms']} | "
                      + warm_fields(f))  # fmt: skip
                print("      passed by:", why_passed(f))
    print(f"\n== 3. visitor double-talk frames (any window) at the answer's pitch, rover < "
          f"{edt.WARM_UP_RAW_OVER_RETURN_DB} (the warm-up pauses' state bar the window), and all at the answer's pitch")  # fmt: skip
    n_dt = 0
    for r in rows:
        for f in r["visitor"]:
            n_dt += bool(f.get("dt"))
            if f.get("dt") and answers_pitch(f):
                inside = f.get("rover") is not None and f["rover"] < edt.WARM_UP_RAW_OVER_RETURN_DB
                print(f"   {'IN ' if inside else 'out'} {name(r['trace'])} onset {round(r['onset_s'], 2)} silent "
                      f"{r['silent_ms']} | " + warm_fields(f))  # fmt: skip
    print(f"visitor double-talk frames: {n_dt}")
    return 0


def main(paths: list[str]) -> int:
    if "--warm" in paths:
        return warm([r for p in paths if p != "--warm" for r in json.load(open(p))["rows"]])
    if "--wlater" in paths:
        return wlater([r for p in paths if p != "--wlater" for r in json.load(open(p))["rows"]])
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

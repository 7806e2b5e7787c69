"""Two passes of ``bench/warm40_raw.py`` over the same pulse traces compared (TUNING TOOL, stop 40
helper warm40): per trace the first self-pause (warm-up answer: before 8 s of the room, else
later) and the barge-in delay, what changed, and from the first pass the raw guard's loud
frames with how much the canceller took of each (raw - linear output, dB): those of the echo
alone (before the labelled onset, up to the first pause) and those of visitors (within 1 s
after her onset).

    python bench/warm40_compare.py A.pkl B.pkl OUT.json

A replay is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from collections import Counter
from typing import Any

WARM_S = 8.0  # (room seconds: the warm-up answer of a speex-later run ends before this)


def _first(got: dict[str, Any], log: list[dict[str, Any]], t0: float | None, tf: list[float]) -> Any:
    for s in got["self_pauses_s"][:1]:
        k = round(s / 0.02) - 1
        rig = tf[k] - t0 if t0 is not None and k < len(tf) else None
        d = log[k] if k < len(log) else {}
        who = "raw guard" if (d.get("msus") or 0) < 40 else ("main trusted" if d.get("T") else "main untrusted")
        return {"replay_s": s, "rig_s": None if rig is None else round(rig, 3),
                "part": "warm-up" if rig is not None and rig < WARM_S else "later", "by": who}  # fmt: skip
    return None


def loud_frames(res: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"echo": [], "visitor": []}
    for got, log, t0, tf in res:
        onset = got.get("onset")
        onset = math.inf if onset is None else onset
        first = got["self_pauses_s"][0] if got["self_pauses_s"] else math.inf
        for k, d in enumerate(log):
            if not (d.get("listens") and d.get("loud") and d.get("first")):
                continue
            t = (k + 1) * 0.02
            lin = d.get("lin")
            taken = None if not lin or None in lin else round(lin[2] - lin[0], 1)
            rec = {"trace": got["path"], "mode": got.get("mode"), "k": k, "taken_db": taken, "lin": lin,
                   "raw": d.get("lvl"), "bar": d.get("bar"), "cue": "bands" if d.get("lband") else "pitch" if d.get("lpitch") else "level"}  # fmt: skip
            if t < onset and t <= first + 0.04:
                out["echo"].append(rec)
            elif onset <= t < onset + 1.0:
                out["visitor"].append(rec)
    return out


def main() -> int:
    a_res, b_res = (pickle.load(open(p, "rb")) for p in sys.argv[1:3])
    b = {g["path"]: (g, log, t0, tf) for g, log, t0, tf in b_res}
    for g, *_ in a_res:  # (a pass before the tool recorded the onset: the other's)
        if "onset" not in g and g["path"] in b:
            g.update(onset=b[g["path"]][0].get("onset"), mode=b[g["path"]][0].get("mode"))
    changed, counts = [], Counter()
    for g, log, t0, tf in a_res:
        if g["path"] not in b:
            continue
        fa, fb = _first(g, log, t0, tf), _first(*b[g["path"]])
        counts.update(f"A {f['part']} {f['by']}" for f in (fa,) if f)
        counts.update(f"B {f['part']} {f['by']}" for f in (fb,) if f)
        gb = b[g["path"]][0]
        if (fa or {}).get("replay_s") != (fb or {}).get("replay_s") or g["speaker_silent_ms"] != gb["speaker_silent_ms"]:
            changed.append({"trace": g["path"], "first_pause": [fa, fb], "silent_ms": [g["speaker_silent_ms"], gb["speaker_silent_ms"]]})  # fmt: skip
    frames = loud_frames(a_res)
    vis = [f["taken_db"] for f in frames["visitor"] if f["taken_db"] is not None]
    summary = {"traces": len(a_res), "first_pauses": dict(sorted(counts.items())), "changed": changed,
               "raw_loud_frames": {"echo": len(frames["echo"]), "visitor": len(frames["visitor"]),
                                   "visitor_with_levels": len(vis), "visitor_taken_max_db": max(vis, default=None)}}  # fmt: skip
    for c in changed:
        print(c)
    print(json.dumps({k: v for k, v in summary.items() if k != "changed"}, indent=1))
    summary["echo_frames"] = frames["echo"]
    summary["visitor_frames_taken_over_2db"] = [f for f in frames["visitor"] if (f["taken_db"] or -99) > 2]
    json.dump(summary, open(sys.argv[3], "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

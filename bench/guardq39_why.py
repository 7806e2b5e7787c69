"""Per slow traced barge-in (guard, no canceller): by how much the visitor misses each of the guard's
cues from her labelled onset to the pause (stop 39 helper guardq39; a tuning tool, on
``bench/guardq39_scan.py``'s cached per-frame rows of main's code).

    python bench/guardq39_why.py CACHE_DIR [--min-ms 250] [--json OUT]

Per run: the pause (replayed), frames from the onset to it, and per cue the best the visitor got
(dB to its bar; positive = over) and in how many frames she cleared it:
* whole: level - whole-frame bar (echo + return + margin, the absolute minimum);
* min30: frames under vad.barge_in_min_level_dbfs (-30), -32 (the bands' gate), -36 (after a loud frame);
* bands2: frames with >= 2 bands over their bars (BANDS_OVER); best non-sparse band - bar (needs 9 alone);
* band_any: best band (sparse too) - bar; the longest run of voiced frames with one over;
* pitch: frames measured (>= -30 dBFS only) and the best mic - reference periodicity (needs >= 0.3
  with mic >= 0.6).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import pickle
import sys
from pathlib import Path


def summarize(c: dict) -> dict | None:
    res, rows = c["result"], c["rows"]
    barge = res["barge_ms"]
    if c["row"]["kind"] != "bargein" or barge is None:
        return None
    fr = [r for r in rows if r["t_ms"] is not None and 0 <= r["t_ms"] < barge - 15]
    if not fr:
        return None
    d = [r["lvl"] - r["whole_bar"] for r in fr if r.get("whole_bar") is not None]
    ns, anyb, two, run, best_run, pitch = [], [], 0, 0, 0, []
    for r in fr:
        bands = [(m, f) for m, f in (r.get("bands") or []) if not math.isnan(m)]
        ns += [m for m, f in bands if f not in ("s", "n")]
        learned = [m for m, f in bands if f != "n"]
        anyb += learned
        two += sum(1 for m, _ in bands if m >= 0) >= 2
        over = bool(r.get("voiced")) and any(m >= 0 for m in learned) and r["lvl"] >= -36
        run = run + 1 if over else 0
        best_run = max(best_run, run)
        if r.get("pitch"):
            pitch.append(r["pitch"][0] - r["pitch"][1] if r["pitch"][0] >= 0.6 else -1.0)
    lv = [r["lvl"] for r in fr]
    return {
        "trace": c["trace"], "mix": c["row"]["mix"], "recorded_ms": c["result"]["recorded"]["delay_ms"], "pause_ms": barge,
        "frames": len(fr), "level_max": round(max(lv), 1),
        "whole_best_db": round(max(d), 1) if d else None, "whole_within_3db": sum(x >= -3 for x in d),
        "under_30": sum(x < -30 for x in lv), "under_32": sum(x < -32 for x in lv), "under_36": sum(x < -36 for x in lv),
        "bands2_frames": two, "best_nonsparse_db": round(max(ns), 1) if ns else None,
        "best_band_db": round(max(anyb), 1) if anyb else None, "longest_one_band_run": best_run,
        "pitch_measured": len(pitch), "pitch_best_diff": round(max(pitch), 2) if pitch else None,
        "band_frames_from_ms": next((r["t_ms"] for r in fr if r.get("bands")), None),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cache", type=Path)
    p.add_argument("--min-ms", type=int, default=250)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    out = []
    for path in sorted(glob.glob(str(args.cache / "*.pkl"))):
        with open(path, "rb") as f:
            s = summarize(pickle.load(f))
        if s is not None:
            out.append(s)
    for s in sorted(out, key=lambda s: -s["pause_ms"]):
        if s["pause_ms"] >= args.min_ms:
            print(json.dumps({k: v for k, v in s.items() if k != "trace"}))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How often, through PulseAudio, the raw guard's tap is behind a trusted canceller (issue 10
item (b), helper tapskip38; a tuning tool over ``bench/pulse_trace.py`` traces of modes speex /
speex-later, whatever code ran them).

Per trace: the canceller's frames (``aec`` rows) the raw guard's tap did not process (its
``frames`` rows, matched by capture stamp: the raw guard skipped them behind a trusted canceller),
in runs of consecutive frames; per run, its length, whether the tap took frames again while the
speaker still played or its echo rang (``active`` or the guard up: where the raw guard judges again), and
where the tap's timeline put the first frame it took after the run against that frame's stamp
(``at - captured``, ms: on main a run of 1-5 frames leaves it that many frames early; with
``EchoLevelTap.skip`` ~0). Then, within 0.6 s after such a resumption, whether the raw guard's
suspicion rose, whether it reached the pause bar, and whether the pipeline's did (either's).

    python bench/tapskip38_gaps.py /tmp/x/tr/*.pkl [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path
from typing import Any

PAUSE_MS = 40  # (vad.barge_in_pause_ms, the bench config's)
AFTER_S = 0.6


def gaps(trace: dict[str, Any]) -> dict[str, Any]:
    aec = trace.get("aec") or []
    tapped = {round(f["captured"], 6): f for f in trace.get("frames", []) if "captured" in f and "at" in f}
    runs: list[dict[str, Any]] = []
    k, n = 0, len(aec)
    while k < n:
        if round(aec[k]["captured"], 6) in tapped:
            k += 1
            continue
        start = k
        while k < n and round(aec[k]["captured"], 6) not in tapped:
            k += 1
        if start == 0 or k >= n:
            continue  # (before the tap's first frame or to the end: not a gap)
        resumed = aec[k]
        first = tapped[round(resumed["captured"], 6)]
        t0 = resumed["captured"]
        later = [a for a in aec[k:] if a["captured"] - t0 <= AFTER_S]
        runs.append({
            "at_s": round(aec[start]["captured"] - aec[0]["captured"], 2),
            "frames": k - start,
            "trusted_before": bool(aec[start]["trusted"]),
            "resumed_playing": bool(resumed["active"] or resumed["guarded"]),
            "resumed_off_ms": round((first["at"] - first["captured"]) * 1000, 1),
            "raw_suspect_after": max((a["raw_suspect_ms"] or 0 for a in later), default=0),
            "raw_pause_after": any((a["raw_suspect_ms"] or 0) >= PAUSE_MS and a["guarded"] for a in later),
            "pause_after": any((a["suspect_total_ms"] or 0) >= PAUSE_MS and a["guarded"] for a in later),
        })  # fmt: skip
    row = trace["row"]
    return {"mix": row["mix"], "mode": row["mode"], "echo_db": row["echo_db"], "self": row.get("self"),
            "warm_self": row.get("warm_self"), "runs": runs}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = []
    for path in args.traces:
        try:
            trace = pickle.loads(path.read_bytes())
        except Exception:  # (not a trace)
            continue
        if not isinstance(trace, dict) or not trace.get("aec"):
            continue
        got = gaps(trace)
        got["trace"] = str(path)
        rows.append(got)
    short = [(r["trace"], g) for r in rows for g in r["runs"] if g["resumed_playing"]]
    summary = {
        "traces": len(rows),
        "gaps_resumed_while_playing": len(short),
        "by_length": {},
    }
    for _, g in short:
        key = str(g["frames"]) if g["frames"] <= 6 else ">6"
        b = summary["by_length"].setdefault(key, {"n": 0, "off_ms": [], "raw_suspect": 0, "raw_pause": 0, "pause": 0})
        b["n"] += 1
        b["off_ms"].append(g["resumed_off_ms"])
        b["raw_suspect"] += g["raw_suspect_after"] > 0
        b["raw_pause"] += g["raw_pause_after"]
        b["pause"] += g["pause_after"]
    print(json.dumps(summary, indent=1))
    for t, g in short:
        if g["frames"] <= 6:
            print(t, g)
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare passes of bench/fast37_why.py (TUNING TOOL, stop 37 helper fast37): per SpeexDSP
trace, the barge-in delay (frame time, replay) and the pauses before the onset (self-pauses), the
main pass against each variant: barge-ins made faster / slower, self-pauses added or gone,
warm-up frames heard as a visitor, and the -12 dB later-answer barge-ins' p95 and mean.

    python bench/fast37_compare.py MAIN.pkl[,MAIN2.pkl] VARIANT.pkl[,...]... [--json OUT]
    python bench/fast37_compare.py --rows MAIN.pkl[,...]   (each -12 dB later barge-in: delay,
                                                           what paused it, trust at her onset)
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
from typing import Any

PAUSE_MS = 40  # (vad.barge_in_pause_ms: the suspicion that pauses)


def load(spec: str) -> list[tuple[dict, list[dict], float, str]]:
    out: list[Any] = []
    for path in spec.split(","):
        with open(path, "rb") as f:
            out += pickle.load(f)
    return out


def pause_frame(summary: dict, onset_s: float) -> int | None:
    silent = summary["speaker_silent_ms"]
    return None if silent is None else round((silent / 1000 + onset_s) / 0.02) - 2


def paused_by(frames: list[dict], k: int | None) -> str | None:
    """What paused the answer at frame k: double talk (its path), the first opinion, the raw guard."""
    if k is None or k >= len(frames):
        return None
    d = frames[k]
    if d.get("sus", 0) >= PAUSE_MS:
        return f"dt-{d.get('path')}" if d.get("dt") else "first-opinion"
    return "raw-guard" if d.get("rsus", 0) >= PAUSE_MS else "?"


def _p95(values: list[int]) -> int:
    return sorted(values)[int(0.95 * len(values))]


def later12(summary: dict) -> bool:
    return summary["kind"] == "bargein" and summary["echo_db"] == -12.0 and summary["mode"] == "speex-later"


def compare(base: list, variant: list) -> dict[str, Any]:
    a = {(p, r["mix"]): r for r, _, _, p in base}
    b = {(p, r["mix"]): r for r, _, _, p in variant}
    moved, selfs, warm, va, vb = [], [], [], [], []
    for key, ra in a.items():
        rb = b[key]
        if ra["self_pauses_s"] != rb["self_pauses_s"]:
            selfs.append({"trace": key[0], "echo_db": ra["echo_db"], "kind": ra["kind"],
                          "main": ra["self_pauses_s"], "variant": rb["self_pauses_s"]})
        if ra["warm_suspect"] != rb["warm_suspect"]:
            warm.append({"trace": key[0], "main": ra["warm_suspect"], "variant": rb["warm_suspect"]})
        if ra["kind"] != "bargein":
            continue
        sa, sb = ra["speaker_silent_ms"] or 9999, rb["speaker_silent_ms"] or 9999
        if later12(ra):
            va.append(sa)
            vb.append(sb)
        if sa != sb:
            moved.append({"trace": key[0], "echo_db": ra["echo_db"], "mode": ra["mode"], "main_ms": sa, "variant_ms": sb})
    return {
        "traces": len(a), "faster": sum(m["variant_ms"] < m["main_ms"] for m in moved),
        "slower": sum(m["variant_ms"] > m["main_ms"] for m in moved), "moved": moved,
        "self_pause_changes": selfs, "warm_suspect_changes": warm, "later_12db_n": len(va),
        "later_12db_p95": [_p95(va), _p95(vb)] if va else None,
        "later_12db_mean": [round(statistics.mean(va), 1), round(statistics.mean(vb), 1)] if va else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("main")
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--rows", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    base = load(args.main)
    if args.rows:
        for r, frames, onset, path in sorted(base, key=lambda x: x[0]["speaker_silent_ms"] or 9999):
            if later12(r):
                d0 = frames[int(onset / 0.02)]
                print(r["speaker_silent_ms"], paused_by(frames, pause_frame(r, onset)),
                      "trusted" if d0.get("T") else "untrusted", d0.get("age"), r["self_pauses_s"], path)
        return 0
    out = {spec: compare(base, load(spec)) for spec in args.variants}
    for spec, c in out.items():
        print(spec, "faster", c["faster"], "slower", c["slower"], "self-pause runs changed",
              len(c["self_pause_changes"]), "p95", c["later_12db_p95"], "mean", c["later_12db_mean"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

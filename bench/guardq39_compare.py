"""Replay guard traces with the importable ``kiosk`` and compare with a cached replay of another
code (``bench/guardq39_scan.py``'s output; stop 39 helper guardq39; a tuning tool, exact up to
the first pause): per run the barge-in time, self-pauses and echo frames counted loud, and the
pooled -12 dB p95/p50.

    python bench/guardq39_compare.py CACHE_DIR [--set NAME=VALUE ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pulse_guard_replay as pgr  # noqa: E402


def pct(v: list[float], q: float) -> float:
    v = sorted(v)
    k = (len(v) - 1) * q
    f, c = math.floor(k), math.ceil(k)
    return v[f] if f == c else v[f] + (v[c] - v[f]) * (k - f)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cache", type=Path)
    p.add_argument("--set", action="append", default=[], help="module.CONST=value to patch (kiosk.core.echo_guard.X=5)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    import importlib

    for item in args.set:
        name, value = item.split("=")
        mod, const = name.rsplit(".", 1)
        setattr(importlib.import_module(mod), const, float(value) if "." in value else int(value))
    rows = []
    for path in sorted(glob.glob(str(args.cache / "*.pkl"))):
        with open(path, "rb") as f:
            cached = pickle.load(f)
        with open(cached["trace"], "rb") as f:
            trace = pickle.load(f)
        new = pgr.replay(trace)
        old = cached["result"]
        rows.append({"trace": cached["trace"], "mix": new["mix"], "kind": cached["row"]["kind"], "echo_db": new["echo_db"],
                     "old_ms": old["barge_ms"], "new_ms": new["barge_ms"], "old_self": old["self"], "new_self": new["self"],
                     "old_loud_echo": old["loud_echo_frames"], "new_loud_echo": new["loud_echo_frames"],
                     "recorded_ms": new["recorded"]["delay_ms"]})
    diff = [r for r in rows if (r["old_ms"], r["old_self"], r["old_loud_echo"]) != (r["new_ms"], r["new_self"], r["new_loud_echo"])]
    for r in diff:
        print(f"{Path(r['trace']).parent.name:8s} {r['mix']:28s} {r['echo_db']:6} {r['old_ms']} -> {r['new_ms']}  self {r['old_self']} -> {r['new_self']}  loud echo {r['old_loud_echo']} -> {r['new_loud_echo']}")
    summary = {"runs": len(rows), "changed": len(diff),
               "self_old": sum(len(r["old_self"]) for r in rows), "self_new": sum(len(r["new_self"]) for r in rows),
               "loud_echo_old": sum(r["old_loud_echo"] for r in rows), "loud_echo_new": sum(r["new_loud_echo"] for r in rows)}
    for db in (-20.0, -12.0, -6.0):
        b = [r for r in rows if r["kind"] == "bargein" and r["echo_db"] == db]
        if b:
            o = [r["old_ms"] if r["old_ms"] is not None else 9999 for r in b]
            n = [r["new_ms"] if r["new_ms"] is not None else 9999 for r in b]
            summary[f"bargein{int(db)}"] = {"n": len(b), "p95_old": round(pct(o, .95)), "p95_new": round(pct(n, .95)),
                                            "p50_old": round(pct(o, .5)), "p50_new": round(pct(n, .5)),
                                            "mean_old": round(sum(o) / len(o), 1), "mean_new": round(sum(n) / len(n), 1),
                                            "faster": sum(x < y for x, y in zip(n, o)), "slower": sum(x > y for x, y in zip(n, o))}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"sets": args.set, "summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

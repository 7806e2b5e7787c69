"""pipe46: room pipes side by side against a base pipe (pacat 80), from ``pulse_aec``/``pulse_trace``
results of holds run with ``--room-pacat-ms=abs20,80`` (a bench look at the rig, not a kiosk figure).

    python bench/pipe46_sum.py [--base 80] [--traces DIR...] RESULTS.json...

First rig45_sum's and (with ``--traces``) rig45_lag's tables with the base pipe in place of main's 20
(paired shifts = pipe minus base on the same mix). Then per pipe the glitches and what they cost:
each underrun/gap with its room time, lost ms (abs: blocks already behind the sink when written) and
the row's steal; the pipe's latency at the onset (abs: written -> heard + half a block, as pacat's status
line averages); and per row (abs pipes) the rebase. With traces: whether the echo path moved in a row
(the SpeexDSP aligner's settled lag over the measured answer: its spread, and before/after a gap).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rig45_lag  # noqa: E402
import rig45_sum  # noqa: E402
from rule_rows import glitched  # noqa: E402

START_ROOM_S = 0.5  # pipe46_writer.REBASE_AT blocks: the stream's start, before the rebase (no speech plays)


def split_start(rows: list[dict[str, Any]]) -> int:
    """Rows written before 8566062's successor counted an abs gap in the stream's first 0.5 s (block 0
    behind the sink at the first write: the start-up, long before any answer) as a pacat underrun; move
    those to ``abs_start_gaps`` as the writer now does. Returns how many rows changed."""
    changed = 0
    for r in rows:
        room = r.get("room") or {}
        if "abs_gaps" not in room:
            continue
        start = [u for u in room.get("pacat_underruns") or [] if u[1] < START_ROOM_S]
        if start:
            changed += 1
            room["pacat_underruns"] = [u for u in room["pacat_underruns"] if u[1] >= START_ROOM_S]
            room.setdefault("abs_start_gaps", [g for g in room["abs_gaps"] if g[1] < START_ROOM_S])
            room["abs_gaps"] = [g for g in room["abs_gaps"] if g[1] >= START_ROOM_S]
    return changed


def glitch_table(rows: list[dict[str, Any]]) -> None:
    for pipe in dict.fromkeys(r.get("room_pipe") for r in rows):
        mine = [r for r in rows if r.get("room_pipe") == pipe]
        print(f"\n== pipe {pipe}: per-row glitches (room s), steal cores, latency at onset ms")
        steals = [r.get("steal_cores") or 0 for r in mine]
        print(f"   steal cores over rows: median {statistics.median(steals):.3f} max {max(steals):.3f}; "
              f"rows with steal > 0.05: {sum(s > 0.05 for s in steals)}")
        lost = []
        for r in mine:
            room = r["room"]
            under = room.get("pacat_underruns") or []
            gaps = room.get("abs_gaps") or []
            lost += [g[2] for g in gaps]
            if under or gaps or r.get("loaded") or r["self"] or r.get("warm_self"):
                print(f"   {r['mix']} {r['echo_db']:g}: underruns at {[u[1] for u in under]} gaps {[(g[1], g[2]) for g in gaps]} "
                      f"underflows {[u[1] for u in room.get('abs_underflows') or []]} steal {r.get('steal_cores')} "
                      f"loaded {r.get('loaded')} onset {room.get('onset_s')} delay {r.get('delay_s')} self {r['self']} "
                      f"warm {r.get('warm_self')} {'GLITCH' if glitched(r) else 'clean'}")
        lat = [r["room"].get("pacat_latency_at_onset_ms") for r in mine]
        lat = sorted(x for x in lat if x is not None)
        reb = [r["room"].get("abs_rebased_ms") for r in mine if r["room"].get("abs_rebased_ms") is not None]
        print(f"   gaps {len(lost)}, lost ms {sorted(lost)}; latency at onset ms {lat[0] if lat else None}.."
              f"{lat[-1] if lat else None} median {statistics.median(lat) if lat else None}"
              + (f"; rebase ms median {statistics.median(reb)} range {min(reb)}..{max(reb)}" if reb else ""))


def echo_path(dirs: list[str]) -> None:
    """Per trace: the aligner's settled lag over the measured answer (ms): median, p10..p90 spread, and
    for a row with a gap/underrun the medians before and after the first one."""
    print("\n== echo path per trace (SpeexDSP aligner settled lag over the measured answer, ms)")
    by_pipe: dict[str, list[float]] = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.pkl")):
            t = pickle.load(open(path, "rb"))
            row = t["row"]
            room = row.get("room", {})
            t0, answer = room.get("started_mono") or 0.0, room.get("answer_message_s")
            if answer is None:
                continue
            lags = [(a["mono"] - t0, a["settled_ms"]) for a in t.get("aec", ())
                    if a.get("settled_ms") is not None and a["mono"] - t0 >= answer]
            if not lags:
                continue
            xs = sorted(x for _, x in lags)
            spread = xs[int(0.9 * (len(xs) - 1))] - xs[int(0.1 * (len(xs) - 1))]
            pipe = row.get("room_pipe")
            by_pipe.setdefault(pipe, []).append(spread)
            under = [u[1] for u in room.get("pacat_underruns") or [] if u[1] >= answer]
            extra = ""
            if under:
                before = [x for s, x in lags if s < under[0]]
                after = [x for s, x in lags if s >= under[0] + 0.5]
                extra = (f" first glitch at {under[0]} s: before {statistics.median(before) if before else None} "
                         f"after {statistics.median(after) if after else None}")
            print(f"   {row['mix']} {row['echo_db']:g} pipe {pipe}: median {statistics.median(xs)} spread p10-p90 "
                  f"{spread}{extra}")
    for pipe, s in by_pipe.items():
        print(f"   pipe {pipe}: per-trace lag spread median {statistics.median(s)} max {max(s)} (n={len(s)})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="80")
    p.add_argument("--traces", nargs="*", default=[])
    p.add_argument("results", nargs="+")
    args = p.parse_args(argv)
    rig45_sum.DEFAULT = rig45_lag.DEFAULT = args.base  # pair against the base pipe, not main's 20
    print("== as recorded")
    rig45_sum.main(args.results)
    rows = [r for path in args.results for r in json.load(open(path))["rows"]]
    changed = split_start(rows)
    if changed:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rows.json"
            path.write_text(json.dumps({"rows": rows}))
            print(f"\n== start-up gaps (room s < {START_ROOM_S}) not counted: {changed} rows changed")
            rig45_sum.main([str(path)])
    glitch_table(rows)
    if args.traces:
        print("\n== rig45_lag (paired against the base pipe)")
        rig45_lag.main(args.traces)
        echo_path(args.traces)


if __name__ == "__main__":
    main()

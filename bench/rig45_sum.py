"""rig45: room-pipe settings side by side from ``pulse_aec`` results files run with ``--room-pacat-ms``
(each mix on each pipe in the same hold). A bench look at the rig, not a kiosk figure.

    python bench/rig45_sum.py RESULTS.json...

Per pipe: rows, rows with a pacat underrun / parec overrun / ``loaded`` (GLITCH = any), underruns per row,
steal (stolen cores) over glitched and clean rows, self-pauses (later; warm-up), -12 dB barge-in p50 / p95
(nearest rank) over all rows and over clean rows, pacat's latency at the visitor's onset (median over rows).
Then per non-default pipe the paired shift on the same mix: delay(pipe) - delay(main's pipe), its median
beside the median shift of pacat's latency at the onset (the extra pipe delay E), and the rows that moved
more than 20 ms beyond E.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lobby_scoring import pct  # noqa: E402
from rule_rows import glitched  # noqa: E402

DEFAULT = "20"


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}"


def main(paths: list[str]) -> None:
    rows = [r for p in paths for r in json.load(open(p))["rows"]]
    pipes = list(dict.fromkeys(r.get("room_pipe", DEFAULT) for r in rows))
    by: dict[tuple[str, str, float], dict[str, Any]] = {}
    for pipe in pipes:
        mine = [r for r in rows if r.get("room_pipe", DEFAULT) == pipe]
        clean = [r for r in mine if not glitched(r)]
        under = [len(r["room"].get("pacat_underruns") or []) for r in mine]
        over = sum(len(r["room"].get("parec_overruns") or []) for r in mine)
        steal_g = [r.get("steal_cores") or 0 for r in mine if glitched(r)]
        steal_c = [r.get("steal_cores") or 0 for r in clean]
        barge = [r for r in mine if r["kind"] == "bargein" and r["echo_db"] == -12 and "error" not in r]
        d_all = [r["delay_s"] if r["delay_s"] is not None else float("inf") for r in barge]
        d_clean = [r["delay_s"] if r["delay_s"] is not None else float("inf") for r in barge if not glitched(r)]
        lat = [r["room"].get("pacat_latency_at_onset_ms") for r in mine]
        lat = [x for x in lat if x is not None]
        print(f"pipe {pipe}: rows {len(mine)}, glitched {len(mine) - len(clean)} "
              f"(underrun rows {sum(u > 0 for u in under)}, underruns {sum(under)} {sorted(u for u in under if u)}, "
              f"overruns {over}, loaded {sum(bool(r.get('loaded')) for r in mine)}); "
              f"steal glitched {statistics.mean(steal_g) if steal_g else 0:.3f} clean "
              f"{statistics.mean(steal_c) if steal_c else 0:.3f}")
        print(f"   self later {sum(len(r['self']) for r in mine)} (on clean rows {sum(len(r['self']) for r in clean)}), "
              f"warm-up {sum(r.get('warm_self') or 0 for r in mine)} (clean {sum(r.get('warm_self') or 0 for r in clean)}); "
              f"missed {sum(bool(r.get('missed')) for r in barge)}")
        print(f"   -12 dB barge-ins all n={len(d_all)} p50/p95 {ms(pct(d_all, 50) if d_all else None)}/"
              f"{ms(pct(d_all, 95) if d_all else None)}; clean n={len(d_clean)} p50/p95 "
              f"{ms(pct(d_clean, 50) if d_clean else None)}/{ms(pct(d_clean, 95) if d_clean else None)}; "
              f"pacat latency at onset median {statistics.median(lat) if lat else None} ms "
              f"(range {min(lat) if lat else None}-{max(lat) if lat else None})")
        for r in mine:
            by[(pipe, r["mix"], r["echo_db"])] = r
        for r in mine:
            if r["self"] or r.get("warm_self"):
                print(f"     {r['mix']} {r['echo_db']:g} self {r['self']} warm {r.get('warm_self')} underruns "
                      f"{len(r['room'].get('pacat_underruns') or [])} steal {r.get('steal_cores')} "
                      f"{'GLITCH' if glitched(r) else 'clean'}")
    for pipe in pipes:
        if pipe == DEFAULT:
            continue
        shifts, lat_shifts, odd = [], [], []
        for (p, mix, db), r in by.items():
            base = by.get((DEFAULT, mix, db))
            if p != pipe or base is None or r["kind"] != "bargein":
                continue
            a, b = r.get("delay_s"), base.get("delay_s")
            la, lb = r["room"].get("pacat_latency_at_onset_ms"), base["room"].get("pacat_latency_at_onset_ms")
            if la is not None and lb is not None:
                lat_shifts.append(la - lb)
            if a is not None and b is not None:
                shifts.append(((a - b) * 1000, mix, glitched(r) or glitched(base)))
        if not shifts:
            continue
        e = statistics.median(lat_shifts) if lat_shifts else None
        clean_shifts = [s for s, _, g in shifts if not g]
        print(f"pipe {pipe} - {DEFAULT}: paired barge-in delay shift median {statistics.median(s for s, _, _ in shifts):.0f} ms "
              f"(both clean: {statistics.median(clean_shifts) if clean_shifts else float('nan'):.0f} ms, n={len(clean_shifts)}), "
              f"pacat latency-at-onset shift median {e} ms; shifts {sorted(round(s) for s, _, _ in shifts)}")
        if e is not None:
            odd = [(round(s), m[-12:], 'G' if g else 'c') for s, m, g in shifts if abs(s - e) > 20]
            print(f"   rows moved > 20 ms beyond E: {odd}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""relearn38's rule on ``bench/pulse_aec.py`` results, mine vs main in the same hold
(bench/results/relearn38-rule-2026-12-06.md; stop 38 helper relearn38).

    python bench/relearn38_eval.py OUT.json MAIN_MARK FILE.json...

Each results file's ``kiosk_code`` tells its code: "main" when it contains MAIN_MARK, else "mine".
Figures per code: self-interruptions (``self`` events of every row: later answer; ``warm_self``: the
earlier answer), the -12 dB barge-in p95 / p50 (``lobby_scoring.pct``, nearest rank; a missed row is infinite), missed,
and the early barge-ins (her onset less than ``EARLY_S`` after the later answer became audible,
``room.onset_s - room.audible_s``: the earcon, the near silence after it and the answer's first words;
the rows the change is for): their mean and max delay. Each with and without rig glitches
(``glitches``): both are reported.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from typing import Any

from lobby_scoring import pct  # the bench's nearest-rank percentile

EARLY_S = 1.0  # onset_s - audible_s (fast37: the relearn took 38-49 frames from the stretch's start)
GLITCH_BEFORE_S = 3.0


def glitch_times(row: dict[str, Any]) -> list[float]:
    room = row["room"]
    under = [u[1] if isinstance(u, list) else u for u in room.get("pacat_underruns", [])]
    over = [o[1] if isinstance(o, list) else o for o in room.get("parec_overruns", [])]
    return under + over


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in rows if "error" not in r]
    out: dict[str, Any] = {"rows": len(rows)}
    for tag, exclude in (("raw", False), ("x", True)):
        later = warm = 0
        events = []
        delays, early, missed, dropped = [], [], 0, []
        for r in rows:
            late = r["room"].get("late_blocks", 0) > 0
            gl = glitch_times(r)
            for e in r["self"]:
                m = re.search(r"at ([\d.]+)\s*s", e)
                t = float(m.group(1)) if m else math.nan
                g = late or any(t - GLITCH_BEFORE_S <= x <= t for x in gl)
                if not (exclude and g):
                    later += 1
                    events.append(f"{r['mix']} {r['echo_db']:g} dB: {e}" + (" (glitch)" if g else ""))
            w = r.get("warm_self", 0) or 0
            if w and not (exclude and late):
                warm += w
                events.append(f"{r['mix']} {r['echo_db']:g} dB: warm_self {w}")
            if r["kind"] != "bargein" or r["echo_db"] != -12.0:
                continue
            d = r["delay_s"] if r["delay_s"] is not None else math.inf
            on = r["room"].get("onset_s")
            end = on + r["kiosk_stop_s"] if r.get("kiosk_stop_s") is not None else math.inf
            g = late or any(on - GLITCH_BEFORE_S <= x <= end for x in gl)
            if exclude and g:
                dropped.append(r["mix"])
                continue
            delays.append(d)
            missed += bool(r.get("missed"))
            lead = on - r["room"]["audible_s"]
            if lead < EARLY_S:
                early.append((r["mix"], round(lead, 2), d))
        ms = lambda s: None if s is None else (math.inf if s == math.inf else round(s * 1000))  # noqa: E731
        finite = [d for _, _, d in early if d != math.inf]
        out[tag] = {
            "self_later": later, "self_warm": warm, "self_events": events,
            "bargein_n": len(delays), "p95_ms": ms(pct(delays, 95)), "p50_ms": ms(pct(delays, 50)),
            "missed": missed, "dropped_for_glitch": dropped,
            "early_n": len(early), "early_mean_ms": round(1000 * statistics.mean(finite), 1) if finite else None,
            "early_max_ms": ms(max((d for _, _, d in early), default=None)),
            "early_rows": [(m, lead, ms(d)) for m, lead, d in sorted(early)],
            "delays_ms": sorted(ms(d) for d in delays),
        }  # fmt: skip
    return out


def rule(mine: dict[str, Any], main: dict[str, Any]) -> dict[str, Any]:
    got = {
        "later_self_ok": mine["self_later"] <= main["self_later"],
        "all_self_ok": mine["self_later"] + mine["self_warm"] <= main["self_later"] + main["self_warm"] + 1,
        "p95_ok": mine["p95_ms"] <= main["p95_ms"] + 10,
        "missed_ok": mine["missed"] <= main["missed"],
        "early_not_worse": (mine["early_mean_ms"] or 0) <= (main["early_mean_ms"] or 0),
    }
    got["met"] = all(got.values())
    return got


def main(argv: list[str]) -> int:
    out_path, mark, files = argv[0], argv[1], argv[2:]
    rows: dict[str, list[dict[str, Any]]] = {"mine": [], "main": []}
    runs = []
    for f in files:
        d = json.load(open(f))
        code = "main" if mark in d["kiosk_code"] else "mine"
        runs.append({"file": f, "code": code, "kiosk_code": d["kiosk_code"], "commit": d.get("commit"),
                     "started": d.get("started"), "finished": d.get("finished"), "load_start": d.get("load_start")})  # fmt: skip
        rows[code] += d["rows"]
    res = {code: figures(rs) for code, rs in rows.items()}
    result = {
        "runs": runs, "results": res,
        "rule_glitch_excluded": rule(res["mine"]["x"], res["main"]["x"]),
        "rule_raw": rule(res["mine"]["raw"], res["main"]["raw"]),
    }  # fmt: skip
    json.dump(result, open(out_path, "w"), indent=1, default=str)
    for code in ("mine", "main"):
        for tag in ("raw", "x"):
            r = res[code][tag]
            print(code, tag, "self later/warm", r["self_later"], r["self_warm"], "p95/p50", r["p95_ms"], r["p50_ms"],
                  "n", r["bargein_n"], "missed", r["missed"], "early n/mean/max", r["early_n"], r["early_mean_ms"],
                  r["early_max_ms"], "dropped", r["dropped_for_glitch"])  # fmt: skip
            for e in r["self_events"]:
                print("    ", e)
        print("  delays", res[code]["raw"]["delays_ms"])
        print("  early", res[code]["raw"]["early_rows"])
    print("rule (glitch-excluded)", result["rule_glitch_excluded"])
    print("rule (raw)", result["rule_raw"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Rule A of bench/results/lead47-plan-2026-12-07.md (written 13:19 UTC before any run) on rig47's
held-out 2481-2511 (stop 47 helper rig47): main's code (85d1cd3's kiosk/) on two room pipes, abs20
(bench/pipe46_writer.py) and pacat 80, in one hold. A bench look at the rig; the 80 rows are also main's
fresh figures on the trusted pipe.

    python bench/rig47_rule.py --out OUT.json --rows ROWS.txt [--steal STEAL.log] [--replay REPLAY.json] RIG.json...

RIG files: pulse_trace.py JSONs named ``...-s<seed>-<pipe>-...`` (a row's pipe is its ``room_pipe``).
A row is glitched as ``rule_rows.glitched`` reads it (abs rows: any gap after the first 0.5 s, i.e. the
writer's ``pacat_underruns``, a parec overrun, or ``loaded``; start-up gaps ``abs_start_gaps`` are not).
 A1. abs20: <= 2 of 32 rows glitched, and >= 20 of its 24 -12 dB barge-in rows clean.
 A2. paired delay shift abs20 - 80 on -12 dB barge-in mixes clean on both pipes: median within
     [-45, -15] ms; and no barge-in missed on abs20 that 80 caught (every paired mix).
 A3. self-pause entries (later + warm-up) on clean rows: abs20 <= 80 + 1.
Beside the rule: per pipe -12 dB barge-in p50/p95 and self-pauses over clean and all rows
(``speex45_rule._figures``), latency at onset, gaps (start-up and mid-row: room s, ms, and whether a
mid-row gap fell inside the measured answer or the visitor's onset window), the latency's drift over a
row, steal; with ``--replay`` (bench/warm41_why.py replay with main's code over every trace) whether
each rig self-pause reproduces in replay (a replay pause within ``MATCH_S`` of the rig's, same part).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rule_rows import glitched  # noqa: E402
from speex45_rule import _figures  # noqa: E402
from steal_vs_glitch import TICKS_PER_S, read_samples  # noqa: E402
from warm41_rule import print_verdict  # noqa: E402
from warm41_why import WARM_S  # noqa: E402

ABS, BASE = "abs20", "80"
MATCH_S = 0.5  # a replay pause this near (rig room s) a rig pause is the same pause
ONSET_BEFORE_S, ONSET_AFTER_S = 0.2, 0.5  # the visitor's onset window (room s) a gap could hide a barge-in in


def load(paths: list[str]) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        m = re.search(r"-s(\d+)-", Path(p).name)
        for r in json.loads(Path(p).read_text())["rows"]:
            r["seed"] = int(m.group(1)) if m else None
            r["file"] = Path(p).name
            rows.append(r)
    return rows


def rig_pauses(r: dict[str, Any]) -> list[tuple[str, float | None]]:
    """The row's self-pauses as (part, rig room s): later ones from ``self`` ('pause at 12.60s'),
    warm-up ones (``warm_self`` of them) from the first pausing ``holds`` before WARM_S."""
    out: list[tuple[str, float | None]] = []
    for s in r.get("self") or []:
        m = re.search(r"([\d.]+)s", s)
        out.append(("later", float(m.group(1)) if m else None))
    warm_holds = [t for t, on in r.get("holds") or [] if on and t < WARM_S]
    for i in range(r.get("warm_self") or 0):
        out.append(("warm-up", warm_holds[i] if i < len(warm_holds) else None))
    return out


def gap_info(r: dict[str, Any]) -> dict[str, Any]:
    room = r.get("room") or {}
    answer, onset = room.get("answer_message_s"), room.get("onset_s")
    end = room.get("last_loud_s") or room.get("room_s")
    mid = []
    for _mono, s, ms in room.get("abs_gaps") or []:
        mid.append({"room_s": s, "ms": ms,
                    "in_answer": answer is not None and end is not None and answer <= s <= end,
                    "in_onset_window": onset is not None and onset - ONSET_BEFORE_S <= s <= onset + ONSET_AFTER_S})  # fmt: skip
    lone = [u[1] for u in room.get("pacat_underruns") or [] if all(abs(u[1] - g["room_s"]) > 0.2 for g in mid)]
    per_s = room.get("pacat_latency_ms_per_s") or []
    drift = None
    if len(per_s) >= 3:  # from the first whole second after the rebase to the row's last whole second
        drift = round(per_s[-2][1] - per_s[1][1], 1)
    return {"start": [(s, ms) for _m, s, ms in room.get("abs_start_gaps") or []], "mid": mid,
            "lone_underflows_s": lone, "underruns": len(room.get("pacat_underruns") or []),
            "overruns": len(room.get("parec_overruns") or []), "drift_ms": drift,
            "latency_at_onset_ms": room.get("pacat_latency_at_onset_ms"), "rebased_ms": room.get("abs_rebased_ms")}  # fmt: skip


def steal_minutes(path: str | None) -> dict[str, Any] | None:
    """The steal log's (bench/steal_vs_glitch.py log) largest steal over any 60 s (cores)."""
    if not path or not Path(path).exists():
        return None
    s = read_samples(path)
    best, j = 0.0, 0
    if len(s) > 1 and s[-1][0] - s[0][0] < 60:  # a log shorter than a minute: its whole span
        best = (s[-1][1] - s[0][1]) / TICKS_PER_S / (s[-1][0] - s[0][0])
    for i in range(len(s)):
        while j < len(s) and s[j][0] - s[i][0] < 60:
            j += 1
        if j < len(s):
            best = max(best, (s[j][1] - s[i][1]) / TICKS_PER_S / (s[j][0] - s[i][0]))
    total = (s[-1][1] - s[0][1]) / TICKS_PER_S / (s[-1][0] - s[0][0]) if len(s) > 1 else None
    return {"samples": len(s), "max_60s_cores": round(best, 3), "mean_cores": None if total is None else round(total, 3)}


def replay_check(rows: list[dict[str, Any]], replay: dict[str, Any]) -> list[dict[str, Any]]:
    """Per rig self-pause: does main's code's replay of the row's trace pause there too."""
    by = {}
    for rec in replay["rows"]:
        m = re.search(r"/(abs\d+|\d+)/s(\d+)-", rec["trace"])
        if m:
            by[(m.group(1), int(m.group(2)), rec["mix"], rec["echo_db"])] = rec
    out = []
    for r in rows:
        rec = by.get((r["room_pipe"], r["seed"], r["mix"], r["echo_db"]))
        for part, t in rig_pauses(r):
            rep = [] if rec is None else rec["replay_self"]
            same = [p for p in rep if p["part"] == part and t is not None and p["rig_s"] is not None
                    and abs(p["rig_s"] - t) <= MATCH_S]  # fmt: skip
            out.append({"pipe": r["room_pipe"], "seed": r["seed"], "mix": r["mix"], "echo_db": r["echo_db"],
                        "part": part, "rig_s": t, "clean": not glitched(r), "traced": rec is not None,
                        "replay_pauses": [(p["part"], p["rig_s"]) for p in rep], "reproduced": bool(same)})  # fmt: skip
    return out


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["pipe  seed mix                  dB  delay  later-self(s)        warm start-gaps(s,ms)   mid-gaps(s,ms,A/O) "
             "und steal  lat@onset drift row"]
    for r in sorted(rows, key=lambda r: (r["room_pipe"] != ABS, r["seed"], r["kind"], r["mix"], r["echo_db"])):
        g = gap_info(r)
        if r["kind"] == "bargein":
            delay = "MISSED" if r.get("missed") or r.get("delay_s") is None else f"{r['delay_s'] * 1000:.0f}"
        else:
            delay = "-"
        mid = [(x["room_s"], x["ms"], ("A" if x["in_answer"] else "") + ("O" if x["in_onset_window"] else ""))
               for x in g["mid"]]  # fmt: skip
        lat = g["latency_at_onset_ms"]
        lines.append(
            f"{r['room_pipe']:5s} {r['seed']} {r['mix']:20s} {r['echo_db']:3.0f} {delay:>6s}  {str(r.get('self') or []):20s} "
            f"{r.get('warm_self') or 0:4d} {str(g['start']):22s} {str(mid):18s} {g['underruns']:3d} "
            f"{(r.get('steal_cores') or 0):.3f} {'-' if lat is None else f'{lat:.1f}':>9s} "
            f"{'-' if g['drift_ms'] is None else g['drift_ms']:>5} {'GLITCHED' if glitched(r) else 'CLEAN'}")  # fmt: skip
    return lines


def paired(rows: list[dict[str, Any]]) -> dict[str, Any]:
    key = {(r["room_pipe"], r["seed"], r["mix"]): r for r in rows if r["kind"] == "bargein" and r["echo_db"] == -12.0}
    shifts, lat_shifts, missed_abs_only, pairs = [], [], [], 0
    for (pipe, seed, mix), a in sorted(key.items()):
        b = key.get((BASE, seed, mix))
        if pipe != ABS or b is None:
            continue
        pairs += 1
        miss_a = bool(a.get("missed") or a.get("delay_s") is None)
        miss_b = bool(b.get("missed") or b.get("delay_s") is None)
        if miss_a and not miss_b:
            missed_abs_only.append(f"s{seed} {mix}")
        if glitched(a) or glitched(b) or miss_a or miss_b:
            continue
        shifts.append(round((a["delay_s"] - b["delay_s"]) * 1000, 1))
        la, lb = a["room"].get("pacat_latency_at_onset_ms"), b["room"].get("pacat_latency_at_onset_ms")
        if la is not None and lb is not None:
            lat_shifts.append(round(la - lb, 1))
    qs = statistics.quantiles(shifts, n=4) if len(shifts) >= 2 else None
    return {"pairs": pairs, "n_clean_both": len(shifts), "median_ms": statistics.median(shifts) if shifts else None,
            "quartiles_ms": qs, "shifts_ms": sorted(shifts),
            "latency_at_onset_shift_median_ms": statistics.median(lat_shifts) if lat_shifts else None,
            "missed_on_abs_caught_on_80": missed_abs_only}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rows", type=Path, required=True)
    ap.add_argument("--steal")
    ap.add_argument("--replay", type=Path)
    ap.add_argument("rig", nargs="+")
    a = ap.parse_args(argv)
    rows = load(a.rig)
    pipes = list(dict.fromkeys(r["room_pipe"] for r in rows))
    per: dict[str, Any] = {}
    for pipe in pipes:
        mine = [r for r in rows if r["room_pipe"] == pipe]
        clean = [r for r in mine if not glitched(r)]
        gi = [gap_info(r) for r in mine]
        lat = [g["latency_at_onset_ms"] for g in gi if g["latency_at_onset_ms"] is not None]
        drift = [g["drift_ms"] for g in gi if g["drift_ms"] is not None]
        steal = [r.get("steal_cores") or 0 for r in mine]
        per[pipe] = {
            "rows": len(mine), "glitched": len(mine) - len(clean),
            "bargein_m12_rows": sum(r["kind"] == "bargein" and r["echo_db"] == -12.0 for r in mine),
            "bargein_m12_clean": sum(r["kind"] == "bargein" and r["echo_db"] == -12.0 for r in clean),
            "clean": _figures(clean), "all": _figures(mine),
            "start_gaps": sum(len(g["start"]) for g in gi), "start_gap_rows": sum(bool(g["start"]) for g in gi),
            "mid_gaps": [dict(x, row=f"s{r['seed']} {r['mix']} {r['echo_db']:g}") for r, g in zip(mine, gi) for x in g["mid"]],
            "lone_underflows": sum(len(g["lone_underflows_s"]) for g in gi),
            "overruns": sum(g["overruns"] for g in gi), "loaded": sum(bool(r.get("loaded")) for r in mine),
            "latency_at_onset_ms": {"median": statistics.median(lat) if lat else None,
                                    "range": [min(lat), max(lat)] if lat else None},
            "latency_drift_ms": {"median": statistics.median(drift) if drift else None,
                                 "range": [min(drift), max(drift)] if drift else None},
            "steal_cores": {"median": round(statistics.median(steal), 3), "max": round(max(steal), 3),
                            "rows_over_0.1": sum(s > 0.1 for s in steal)},
        }  # fmt: skip
    pa = paired(rows)
    ab, ba = per.get(ABS), per.get(BASE)
    verdict: dict[str, dict[str, Any]] = {}
    if ab and ba:
        a1 = ab["glitched"] <= 2 and ab["bargein_m12_clean"] >= 20
        a2 = pa["median_ms"] is not None and -45 <= pa["median_ms"] <= -15 and not pa["missed_on_abs_caught_on_80"]
        a3 = ab["clean"]["self"] <= ba["clean"]["self"] + 1
        verdict = {
            "A1": {"met": a1, "abs20_glitched_of_rows": [ab["glitched"], ab["rows"]],
                   "abs20_m12_bargein_clean_of_rows": [ab["bargein_m12_clean"], ab["bargein_m12_rows"]]},
            "A2": {"met": a2, "median_shift_ms": pa["median_ms"], "n_clean_both": pa["n_clean_both"],
                   "quartiles_ms": pa["quartiles_ms"], "missed_on_abs20_caught_on_80": pa["missed_on_abs_caught_on_80"]},
            "A3": {"met": a3, "clean_self_abs20_80": [ab["clean"]["self"], ba["clean"]["self"]],
                   "abs20_later_warm": [ab["clean"]["later_self"], ab["clean"]["warm_self"]],
                   "80_later_warm": [ba["clean"]["later_self"], ba["clean"]["warm_self"]]},
        }  # fmt: skip
    reps = replay_check(rows, json.loads(a.replay.read_text())) if a.replay and a.replay.exists() else None
    got = {"rule": "lead47-plan-2026-12-07.md rule A", "per_pipe": per, "paired": pa, "rule_A": verdict,
           "met": bool(verdict) and all(v["met"] for v in verdict.values()), "steal_log": steal_minutes(a.steal),
           "replay_of_rig_self_pauses": reps}  # fmt: skip
    a.out.write_text(json.dumps(got, indent=1))
    lines = table(rows)
    lines.append("")
    lines.append("A/O after a mid-row gap: inside the measured answer / the visitor's onset window "
                 f"[onset - {ONSET_BEFORE_S}, onset + {ONSET_AFTER_S}] s; drift = latency (ms) last whole second - second 1")
    for pipe in pipes:
        p = per[pipe]
        for what in ("clean", "all"):
            f = p[what]
            lines.append(f"{pipe} {what.upper()}: rows {f['rows']}, -12 dB barge-ins n={f['n_m12']} p95 {f['p95_ms']} "
                         f"p50 {f['p50_ms']} ms, missed {f['missed']}, self-pauses later {f['later_self']} + warm-up {f['warm_self']}")  # fmt: skip
        lines.append(f"{pipe}: glitched {p['glitched']}/{p['rows']}, start-up gaps {p['start_gaps']} in {p['start_gap_rows']} rows, "
                     f"mid-row gaps {len(p['mid_gaps'])}, latency at onset {p['latency_at_onset_ms']}, drift {p['latency_drift_ms']}, "
                     f"steal {p['steal_cores']}")  # fmt: skip
    lines.append(f"paired abs20 - 80 (-12 dB barge-ins clean on both): {json.dumps(pa)}")
    if reps is not None:
        lines.append("rig self-pauses vs main's code's replay of the same trace:")
        lines += [f"  {x['pipe']} s{x['seed']} {x['mix']} {x['echo_db']:g} {x['part']} at {x['rig_s']} "
                  f"{'clean' if x['clean'] else 'GLITCHED'}: replay {x['replay_pauses']} -> "
                  f"{'REPRODUCED' if x['reproduced'] else 'not reproduced'}" for x in reps]  # fmt: skip
    lines.append(f"steal log: {got['steal_log']}")
    a.rows.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-(len(pipes) * 3 + 3 + (len(reps) + 1 if reps is not None else 0)):]))
    if verdict:
        print_verdict(verdict, "A")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

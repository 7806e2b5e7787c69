"""ug38 held-out per its rule (bench/results/ug38-rule-2026-12-06.md): later-answer self-pauses, warm-up
pauses beside them, -12 dB p95 (+10 ms) and missed, raw and glitch-excluded.

    python bench/ug38_heldout.py OUT.json [H-*.json...]   (default: /tmp/ug38/ho/H-*.json)
"""
import glob
import json
import math
import re
import sys

from lobby_scoring import pct  # the bench's nearest-rank percentile

rows = {"mine": [], "main": []}
meta = []
for f in (sys.argv[2:] or sorted(glob.glob("/tmp/ug38/ho/H-*.json"))):
    d = json.load(open(f)); code = "main" if "peerH" in d["kiosk_code"] else "mine"
    assert code in f.split("/")[-1]
    meta.append(dict(file=f.split("/")[-1], kiosk_code=d["kiosk_code"], commit=d["commit"], started=d["started"], finished=d["finished"], load_start=d["load_start"][0]))
    rows[code] += d["rows"]
def glitch_times(r):
    room = r["room"]
    return [u[1] for u in room.get("pacat_underruns", [])] + [o[1] if isinstance(o, list) else o for o in room.get("parec_overruns", [])]
res = {}
for code, rs in rows.items():
    out = dict(rows=len(rs), errors=[r["mix"] for r in rs if "error" in r])
    rs = [r for r in rs if "error" not in r]
    later, warm, later_x, warm_x, ev = 0, 0, 0, 0, []
    d_raw, d_x, missed_raw, missed_x, dropped = [], [], 0, 0, []
    for r in rs:
        late = r["room"].get("late_blocks", 0) > 0
        gl = glitch_times(r)
        for e in r["self"]:
            t = float(re.search(r"at ([\d.]+)s", e).group(1))
            g = late or any(t - 3.0 <= x <= t for x in gl)
            later += 1; later_x += not g
            ev.append(dict(mix=r["mix"], echo_db=r["echo_db"], event=e, glitch=g, glitches=gl, late_blocks=r["room"].get("late_blocks", 0)))
        w = r.get("warm_self", 0) or 0
        warm += w
        if w:
            ev.append(dict(mix=r["mix"], echo_db=r["echo_db"], event=f"warm_self {w}", glitch=late, glitches=gl, late_blocks=r["room"].get("late_blocks", 0)))
            warm_x += 0 if late else w  # (warm pauses carry no time in the row: only late blocks drop them)
        if r["kind"] == "bargein" and r["echo_db"] == -12.0:
            dl = r["delay_s"] if r["delay_s"] is not None else math.inf
            on = r["room"].get("onset_s")
            end = on + r["kiosk_stop_s"] if r.get("kiosk_stop_s") is not None else math.inf
            g = late or any(on - 3.0 <= x <= end for x in gl)
            d_raw.append(dl); missed_raw += bool(r.get("missed"))
            if g: dropped.append(dict(mix=r["mix"], delay_ms=None if dl == math.inf else round(dl * 1000), glitches=gl, late_blocks=r["room"].get("late_blocks", 0), onset_s=on))
            else: d_x.append(dl); missed_x += bool(r.get("missed"))
    ms = lambda s: None if s is None else (math.inf if s == math.inf else round(s * 1000))
    out.update(self_raw=dict(later=later, warm=warm, total=later + warm), self_x=dict(later=later_x, warm=warm_x, total=later_x + warm_x), self_events=ev,
               bargein_n_raw=len(d_raw), p95_raw_ms=ms(pct(d_raw, 95)), p50_raw_ms=ms(pct(d_raw, 50)), missed_raw=missed_raw,
               bargein_n_x=len(d_x), p95_x_ms=ms(pct(d_x, 95)), p50_x_ms=ms(pct(d_x, 50)), missed_x=missed_x, bargein_dropped_for_glitch=dropped,
               delays_ms=sorted([ms(x) for x in d_raw]))
    res[code] = out
m, p = res["mine"], res["main"]
rule = dict(self_ok=m["self_x"]["later"] <= p["self_x"]["later"], p95_ok=m["p95_x_ms"] <= p["p95_x_ms"] + 10, missed_ok=m["missed_x"] <= p["missed_x"])
rule["met"] = all(rule.values())
rule_raw = dict(self_ok=m["self_raw"]["later"] <= p["self_raw"]["later"], p95_ok=m["p95_raw_ms"] <= p["p95_raw_ms"] + 10, missed_ok=m["missed_raw"] <= p["missed_raw"])
rule_raw["met"] = all(rule_raw.values())
out = dict(runs=meta, results=res, rule_glitch_excluded=rule, rule_raw=rule_raw)
json.dump(out, open(sys.argv[1], "w"), indent=1, default=str)
for c in ("mine", "main"):
    r = res[c]
    print(c, "rows", r["rows"], "errors", r["errors"], "self raw", r["self_raw"], "self x", r["self_x"], "p95 raw/x", r["p95_raw_ms"], r["p95_x_ms"], "p50", r["p50_raw_ms"], "n", r["bargein_n_raw"], r["bargein_n_x"], "missed", r["missed_raw"], r["missed_x"])
    for e in r["self_events"]: print("   ", e)
    for e in r["bargein_dropped_for_glitch"]: print("    dropped", e)
    print("   delays", r["delays_ms"])
print("rule (glitch-excluded)", rule); print("rule raw", rule_raw)

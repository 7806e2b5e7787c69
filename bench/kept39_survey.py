"""kept39: the later answer's re-trust on a kept SpeexDSP filter, read from pulse_trace traces (tuning tool).

Per trace (``bench/pulse_trace.py`` pkl with ``aec`` rows), the later answer (the room's ``audible_s``):
the lag its re-measure settled on (ms; ``echo_delay.TARGET_MS`` = 3.0 is "unchanged", 1 sample = 0.0625 ms),
relines / filter restarts over it, when the main endpointer trusted the canceller again, the linear filter's
cancellation (microphone - linear output, dB) over the trusted frames, and the self-pauses before her onset.

    python bench/kept39_survey.py --out F.json /tmp/x/*.pkl
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.core.echo_double_talk import filter_gain  # noqa: E402

LOUD_MIC_DBFS = -50.0  # frames whose cancellation is read (the microphone at least this loud)


def later_answer(path: str) -> dict | None:
    t = pickle.load(open(path, "rb"))
    row, aec = t["row"], t.get("aec") or []
    room = row.get("room") or {}
    if not aec or "linear" not in aec[0] or "settled_ms" not in aec[0] or room.get("audible_s") is None:
        return None
    t0, aud = room["started_mono"], room["audible_s"]
    onset = room.get("onset_s")
    end_rel = (onset - aud) if onset is not None else 6.0
    frames = [(a["mono"] - t0 - aud, a) for a in aec]
    before = [a for tt, a in frames if tt < 0]
    if not before:
        return None
    b = before[-1]
    out: dict = {"trace": path, "mix": row.get("mix"), "echo_db": row.get("echo_db"), "kind": row.get("kind")}
    settle = relines = resets = trust = None
    re0, rl0 = b["realign"], b["relines"]
    trusted_rows, pre_rows = [], []
    first_settle = None
    for tt, a in frames:
        if tt < 0 or tt > end_rel:
            continue
        if first_settle is None and a["settled_ms"] is not None and a["realign"] > re0 - 0:
            first_settle = (round(tt, 3), a["settled_ms"])
        if trust is None and a["trusted"]:
            trust = round(tt, 3)
            relines = a["relines"] - rl0
            resets = a["realign"] - re0 - relines - 1
            settle = a["settled_ms"]
        lin = a["linear"]
        if lin and len(lin) >= 3 and math.isfinite(lin[2]) and lin[2] >= LOUD_MIC_DBFS and math.isfinite(lin[0]):
            (trusted_rows if a["trusted"] else pre_rows).append((tt, lin[2] - lin[0], lin[0] - lin[1], filter_gain(*lin[:3])))
    out.update(trust_s=trust, settled_ms=settle, first_settle=first_settle, relines=relines, resets=resets)

    def summ(rows: list, lo: float, hi: float) -> dict | None:
        sel = [r for r in rows if lo <= r[0] < hi]
        if not sel:
            return None
        return {
            "n": len(sel),
            "erle_med": round(statistics.median(r[1] for r in sel), 1),
            "erle_p10": round(sorted(r[1] for r in sel)[len(sel) // 10], 1),
            "lin_over_est_max": round(max(r[2] for r in sel), 1),
        }

    out["pre_trust"] = summ(pre_rows, 0.0, 9.9)
    if trust is not None:
        out["trusted_first_0.3s"] = summ(trusted_rows, trust, trust + 0.3)
        out["trusted_first_1s"] = summ(trusted_rows, trust, trust + 1.0)
    pauses = []
    for s in row.get("self") or []:
        m = re.search(r"([\d.]+)s", s)
        if m:
            pauses.append(round(float(m.group(1)) - aud, 2))
    out["self_rel_s"] = pauses
    out["warm_self"] = row.get("warm_self")
    out["delay_s"] = row.get("delay_s")
    out["onset_rel_s"] = None if onset is None else round(onset - aud, 3)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path)
    p.add_argument("traces", nargs="+")
    a = p.parse_args()
    rows = []
    for path in a.traces:
        try:
            r = later_answer(path)
        except Exception as e:  # (old traces of other formats)
            print(path, "skipped:", type(e).__name__, e, file=sys.stderr)
            continue
        if r is None:
            continue
        rows.append(r)
        f1 = r.get("trusted_first_0.3s") or {}
        pre = r.get("pre_trust") or {}
        print(f"{r['mix'][:30]:30} {r['echo_db']:>5} set={r['settled_ms']} rl={r['relines']} rs={r['resets']} "
              f"trust={r['trust_s']} pre={pre.get('erle_med')} tr0.3={f1.get('erle_med')}/{f1.get('lin_over_est_max')} "
              f"self={r['self_rel_s']} onset={r['onset_rel_s']}  {Path(r['trace']).parent.name}")
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

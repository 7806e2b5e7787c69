"""The two thin margins stop 44 named, read from ``bench/speex45_screen.py``'s cue log (TUNING TOOL,
stop 45 helper speex45), split into stop 41-43's traces and stop 44's (paths under /tmp/quiet44 or
/tmp/echo44):

- quiet44's pair floor (DOUBLE_TALK_HIGH_MIN_DB 10, SUM 27): over the echo alone (before the
  visitor's onset; every frame of an echo mix), pairs of consecutive logged frames: the highest
  floor at which a pair would fire (the smaller excess of its two frames, both frames' sums >= SUM)
  and the highest pair sum with both excesses >= MIN;
- echo44's band bound (ESTIMATE_APART_HIGH_OVER_DB 11 at corr <= -0.5): the frames the cue was asked
  about after a visitor's onset with corr <= -0.4 (lowest band over the estimate: a visitor's), and
  before it with corr <= -0.5 (the answer's own: how many over 11 dB, the highest under it).

Only frames up to the replay's first self-pause (a replay is exact up to it), and a visitor's up to
the speaker's silence (her pause). CUES and REPLAY from the same pass (the same code).

    python bench/speex45_margins.py CUES.json REPLAY.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MIN_DB, SUM_DB, CORR, BAND = 10.0, 27.0, -0.5, 11.0


def main() -> int:
    cues = json.loads(Path(sys.argv[1]).read_text())["traces"]
    rows = json.loads(Path(sys.argv[2]).read_text())["rows"]
    onset = {r["trace"]: (r["onset_s"] if r["kind"] == "bargein" else None) for r in rows}
    # (a replay is exact up to its first pause: frames after it are left out; and a visitor's
    # frames count up to the replay's silence of the speaker, when her pause came)
    first = {r["trace"]: (r["replay_self"][0]["replay_s"] if r["replay_self"] else 1e9) for r in rows}
    silent = {r["trace"]: (r["replay_silent_ms"] or 1e9) / 1000 for r in rows}
    out: dict[str, dict[str, Any]] = {}
    for trace, c in cues.items():
        part = "stop44" if trace.startswith(("/tmp/quiet44", "/tmp/echo44")) else "stop41-43"
        o = out.setdefault(part, {"traces": 0, "echo_pair_floor": [], "echo_pair_sum": [], "visitor_apart": [],
                                  "answer_apart_over_band": [], "answer_apart_under_band": [], "visitor_cleared": []})  # fmt: skip
        o["traces"] += 1
        on, end = onset.get(trace), first.get(trace, 1e9)
        name = "/".join(trace.split("/")[-3:])
        pair = c["pair"]
        for f0, f1 in zip(pair, pair[1:], strict=False):
            if round(f1[0] - f0[0], 2) != 0.02 or (on is not None and f1[0] >= on) or f1[0] > end:
                continue
            sums = [f[1] + f[2] for f in (f0, f1)]
            mins = [min(f[1], f[2]) for f in (f0, f1)]
            if min(sums) >= SUM_DB:
                o["echo_pair_floor"].append([min(mins), name, f1[0], f0[1:4], f1[1:4]])
            if min(mins) >= MIN_DB:
                o["echo_pair_sum"].append([min(sums), name, f1[0], f0[1:4], f1[1:4]])
        for t, corr, band, got in c["apart"]:
            if t > end:
                continue
            if on is not None and t >= on:
                if t - on > silent.get(trace, 1e9):
                    continue  # (after her pause)
                if corr <= -0.4 and band is not None:
                    o["visitor_apart"].append([band, corr, name, t, round(t - on, 2)])
                if got:
                    o["visitor_cleared"].append([band, corr, name, t, round(t - on, 2)])
            elif corr <= CORR and band is not None:
                o["answer_apart_over_band" if band > BAND else "answer_apart_under_band"].append([band, corr, name, t])
    for part, o in out.items():
        print(f"== {part}: {o['traces']} traces")
        fl = sorted(o["echo_pair_floor"], reverse=True)[:5]
        print(f"  echo-alone pairs, both sums >= {SUM_DB}: highest floor that fires (smaller excess): {fl}")
        sm = sorted(o["echo_pair_sum"], reverse=True)[:5]
        print(f"  echo-alone pairs, both excesses >= {MIN_DB}: highest sums: {sm}")
        va = sorted(o["visitor_apart"])[:6]
        print(f"  visitor frames asked, corr <= -0.4 (lowest band over estimate): {len(o['visitor_apart'])}: {va}")
        print(f"  visitor frames CLEARED by the cue: {len(o['visitor_cleared'])}: {sorted(o['visitor_cleared'])[:6]}")
        ab = sorted(o["answer_apart_over_band"])[:6]
        print(f"  answer frames asked, corr <= {CORR}, band > {BAND}: {len(o['answer_apart_over_band'])}: {ab}")
        au = sorted(o["answer_apart_under_band"], reverse=True)[:4]
        print(f"  answer frames asked, corr <= {CORR}, band <= {BAND}: {len(o['answer_apart_under_band'])} (highest {au})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

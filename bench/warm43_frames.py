"""The frames that paused the answer in ``bench/warm42_why.py`` logs, with the reference fit of
each and of the frames before it (TUNING TOOL, stop 43 helper warm43).

    python bench/warm43_frames.py WHY.pkl...

Per replayed self-pause before the labelled onset (the answer's own echo) and per barge-in's first
pause at or after it (the visitor): the pausing frame k and k-3..k+2 with the double-talk path,
linear - estimate (dB), ex_ref (the fraction of the linear output a least-squares FIR on the
filter's reference explains: kiosk.audio.echo_cancel's fit) and whether each frame was loud / first
opinion. A replay is exact up to its first pause: tuning only.
"""

from __future__ import annotations

import math
import pickle
import sys


def row(d: dict, k: int) -> str:
    lin = d.get("lin") or [math.nan, math.nan]
    over = lin[0] - lin[1] if len(lin) > 1 and lin[0] is not None and lin[1] is not None else math.nan
    return (f"k{k} T={int(bool(d.get('T')))} ts={d.get('tsince')} dt={int(bool(d.get('dt')))} path={d.get('path')} "
            f"over={over:+.1f} lin={lin} ex={d.get('ex_ref')} loud={int(bool(d.get('loud')))} "
            f"first={int(bool(d.get('first')))} sus={d.get('sus')} lvl={d.get('lvl')} bar={d.get('bar')} rret={d.get('rret')} usual={d.get('usual')}")  # fmt: skip


def pause_frame(log: list, start: int) -> int | None:
    for k in range(start, len(log)):
        if (log[k].get("sus") or 0) >= 40:
            return k
    return None


def main() -> int:
    for p in sys.argv[1:]:
        for got, log, _t0, path in pickle.load(open(p, "rb")):
            name = "/".join(path.split("/")[-3:])
            onset = got.get("onset", math.inf)
            items = [("SELF", s) for s in got["self_pauses_s"][:1] if s < onset]
            if math.isfinite(onset):
                k0 = pause_frame(log, int(onset / 0.02))
                if k0 is not None:
                    items.append(("VISITOR", (k0 + 1) * 0.02))
            for what, s in items:
                k = round(s / 0.02) - 1
                print(f"== {what} {name} at {s:.2f} silent {got.get('speaker_silent_ms')}")
                for j in range(max(0, k - 3), min(len(log), k + 3)):
                    print("   ", ">" if j == k else " ", row(log[j], j))
    return 0


if __name__ == "__main__" and sys.argv[1:2] != ["margin"]:
    sys.exit(main())


def margin(paths: list[str]) -> int:
    """Per barge-in (main's code), over the frames from 0.1 s before the labelled onset to her
    first pause: the highest min(ex_ref of the frame before, of the frame) among trusted frames
    whose linear output is at least its estimate; the top 15 visitors."""
    got_rows = []
    for p in paths:
        for got, log, _t0, path in pickle.load(open(p, "rb")):
            onset = got.get("onset", math.inf)
            if not math.isfinite(onset):
                continue
            k1 = pause_frame(log, int(onset / 0.02))
            if k1 is None:
                continue
            best = (-1.0, None)
            for k in range(max(1, int(onset / 0.02) - 5), k1 + 1):
                d, b = log[k], log[k - 1]
                lin = d.get("lin")
                if not (d.get("T") and b.get("T") and lin and len(lin) > 1) or lin[0] - lin[1] < 0:
                    continue
                if d.get("ex_ref") is None or b.get("ex_ref") is None:
                    continue
                m = min(d["ex_ref"], b["ex_ref"])
                if m > best[0]:
                    best = (m, f"k{k} ({b['ex_ref']}, {d['ex_ref']}) over {lin[0] - lin[1]:+.1f} pause k{k1}")
            got_rows.append((best[0], "/".join(path.split("/")[-3:]), best[1]))
    got_rows.sort(reverse=True)
    print(len(got_rows), "barge-ins")
    for r in got_rows[:15]:
        print(r)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["margin"]:
    sys.exit(margin(sys.argv[2:]))

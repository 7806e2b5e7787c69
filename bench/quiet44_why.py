"""Where a SpeexDSP barge-in's time goes, frame by frame from the visitor's true onset (TUNING TOOL,
stop 44 helper quiet44).

    python bench/quiet44_why.py LOG.pkl [NAME_SUBSTRING...]

Reads a ``bench/warm41_why.py why`` log (per main-endpointer frame: levels, bar, webrtcvad's
verdicts, double talk's path; run with the code to look at on PYTHONPATH) and prints, per trace, the
frames from one before the labelled onset to the first frame the answer is paused on (the guard's
suspicion): t after the onset (frame end, ms), the cleaned frame's level, the bar, webrtcvad's
provisional / confirmed voice, linear output / echo estimate / raw microphone (dBFS), linear - bar,
linear - estimate, raw - speaker - the echo's usual return, the band over 3 kHz over its estimate
and over its recent median, and what fired (``dt``: double talk and its path; ``loud``). A replay
is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import math
import pickle
import sys
from typing import Any


def f(x: Any, w: int = 6) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-".rjust(w)
    return f"{x:{w}.1f}"


def rows(got: dict[str, Any], log: list[dict[str, Any]], before: int = 1, after: int = 0) -> list[str]:
    onset = got["onset"]
    k0 = max(0, int(onset / 0.02) - before)
    out = ["  t_ms   lvl   bar v/1  lin    est    raw   l-bar  l-est  r-ret  hi-e  hi-m  fired"]
    stop = None
    for k in range(k0, len(log)):
        d = log[k]
        lin = d.get("lin") or [None, None, None]
        lin = list(lin) + [None] * (3 - len(lin))
        t = ((k + 1) * 0.02 - onset) * 1000
        lb = None if lin[0] is None else lin[0] - d.get("bar", math.nan)
        le = None if lin[0] is None or lin[1] is None else lin[0] - lin[1]
        rr = None if d.get("rret") is None or d.get("usual") is None else d["rret"] - d["usual"]
        he = None if d.get("hi") is None or d.get("hi_est") is None else d["hi"] - d["hi_est"]
        hm = None if d.get("hi") is None or d.get("hi_med") is None else d["hi"] - d["hi_med"]
        fired = []
        if d.get("dt"):
            fired.append(f"DT:{d.get('path')}")
        if d.get("loud"):
            fired.append("loud")
        if d.get("aov"):
            fired.append("own")
        if d.get("sus"):
            fired.append(f"sus{d['sus']}")
        v = ("V" if d.get("voiced") else ".") + ("1" if d.get("first") else ".")
        out.append(
            f"{t:6.0f} {f(d.get('lvl'))}{f(d.get('bar'))} {v} {f(lin[0])} {f(lin[1])} {f(lin[2])}"
            f" {f(lb)} {f(le)} {f(rr)} {f(he)} {f(hm)}  {' '.join(fired)}"
        )
        if not d.get("T"):
            fired.append("untrusted")
        if d.get("rsus"):
            fired.append(f"raw{d['rsus']}")
        if d.get("sus") and stop is None:
            stop = k
        if stop is not None and k >= stop + after:
            break
        if t > 600:
            break
    return out


def main() -> int:
    res = pickle.load(open(sys.argv[1], "rb"))
    names = sys.argv[2:]
    for got, log, _t0, path in res:
        if names and not any(n in path for n in names):
            continue
        print(f"== {path}  rig kiosk_stop {got.get('rig_delay')} s  replay silent {got['speaker_silent_ms']} ms"
              f"  replay self {got['self_pauses_s']}")  # fmt: skip
        for line in rows(got, log):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

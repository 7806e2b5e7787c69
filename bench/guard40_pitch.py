"""The guard's pitch cue (kiosk.audio.echo_pitch.PitchCue, the tap's: raw microphone against the
lined-up reference) frame by frame from a ``bench/pulse_trace.py`` trace (helper guard40, stop 40):
per microphone frame from ``--start`` to ``--end`` (s on the row's clock), the microphone's best
period and periodicity, and per reference window of the cue's history its best period and
periodicity, and its periodicity at the microphone's period (+-1 sample at 8 kHz, and the two
subharmonics): why a frame of the answer's echo had "a pitch the answer lacks". A tuning tool.

    python bench/guard40_pitch.py TRACE.pkl --start 5.2 --end 5.4
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.audio import echo_pitch as ep
from kiosk.core.levels import frame_dbfs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trace", type=Path)
    p.add_argument("--start", type=float, required=True)
    p.add_argument("--end", type=float, required=True)
    args = p.parse_args(argv)
    with open(args.trace, "rb") as f:
        trace: dict[str, Any] = pickle.load(f)
    rel = trace["row"]["room"]["started_mono"]
    frames = [f for f in trace["frames"] if f.get("pcm") is not None and f.get("ref") is not None]
    cue = ep.PitchCue(len(frames[0]["pcm"]) // 2, -30.0, ep.SUBHARMONICS)
    seen: dict[int, Any] = {}
    orig = cue._measure

    def measure(before: Any, mic: bytes, refs: Any, tol: int, harmonics: bool = False) -> Any:
        got = orig(before, mic, refs, tol, harmonics)
        m = ep._decimated(before + mic) if before is not None else ep._decimated(bytes(len(mic)) + mic)
        ac = ep._normalized_autocorrelation(np.stack([m]), cue._fft)[0]
        k = int(np.argmax(ac))
        wins = []
        for w in refs:
            if w.periodicity is None:
                wins.append(None)
                continue
            r = int(np.argmax(w.periodicity))
            at = {f"x{t}": round(float(np.max(w.periodicity[max(0, t * (k + ep.LAG_MIN) - ep.LAG_MIN - t):
                                                       t * (k + ep.LAG_MIN) - ep.LAG_MIN + t + 1])), 2)
                  for t in (1, 2, 3) if t * (k + ep.LAG_MIN) - ep.LAG_MIN < len(w.periodicity)}
            wins.append({"r": r + ep.LAG_MIN, "best": round(float(w.periodicity[r]), 2), **at})
        seen["last"] = {"k": k + ep.LAG_MIN, "mic": round(float(ac[k]), 2), "got": [round(x, 2) for x in got],
                        "windows": wins}
        return got

    cue._measure = measure  # type: ignore[method-assign]
    for f in frames:
        t = f["mono"] - rel
        seen.pop("last", None)
        level = frame_dbfs(f["pcm"])
        out = cue.pair(f["pcm"], f["ref"], level)
        if args.start <= t <= args.end:
            print(f"{t:.3f} mic {level:.1f} dBFS ref {frame_dbfs(f['ref']):.1f} pair {out and [round(x, 2) for x in out]}")
            if "last" in seen:
                d = seen["last"]
                print(f"    mic period {d['k']} (8 kHz samples, {8000 / d['k']:.0f} Hz) periodicity {d['mic']}")
                for w in d["windows"]:
                    print("     ref window", w)
    return 0


if __name__ == "__main__":
    sys.exit(main())

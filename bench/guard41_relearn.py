"""What the default guard's bands learned when the echo's lag was lined up (helper guard41,
stop 41): replays ``bench/pulse_trace.py`` traces with ``bench/pulse_guard_replay.py`` and prints,
per relearn, each frame of the relined history the bands learned from (``EchoBands.learn``):
per band the microphone, the speaker's envelope, microphone minus envelope and whether the band
learned from it (the envelope ``BAND_LEARN_ABOVE_ROOM_DB`` over the room), then the returns and
frame counts the period ended with. A tuning tool (replay, not a user figure).

    python bench/guard41_relearn.py [--bands 0,5] TRACE.pkl...
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pulse_guard_replay  # noqa: E402

from kiosk.core import echo_bands as eb  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402


def _f(x: float | None) -> str:
    return "  -  " if x is None or not math.isfinite(x) else f"{x:6.1f}"


def explain(trace: dict[str, Any], bands: list[int]) -> list[str]:
    out: list[str] = []
    state = {"in_relearn": False, "k": 0}
    learn, relearn = eb.EchoBands.learn, ep.Endpointer.relearn_echo

    def traced_learn(self: Any, mic: Any, room: Any) -> None:
        before = list(self._samples) if len(self._samples) == len(mic) else [0] * len(mic)
        learn(self, mic, room)
        if state["in_relearn"]:
            state["k"] += 1
            cells = []
            for b in bands:
                m, e = mic[b], self._env[b] if b < len(self._env) else math.nan
                took = self._samples[b] > before[b]
                cells.append(
                    f"b{b} mic {_f(m)} env {_f(e)} m-e {_f(m - e)} {'LEARN' if took else '     '}"
                )
            out.append(f"    learn {state['k']:2d} room {_f(room)} | " + " | ".join(cells))

    def traced_relearn(self: Any, heard: Any, band_levels: Any = None) -> None:
        state["in_relearn"], state["k"] = True, 0
        out.append(
            f"  relearn: {len(heard)} frames heard, {sum(b is not None for b in band_levels or [])} "
            f"with bands (None at {[k for k, b in enumerate(band_levels or []) if b is None]})"
        )
        try:
            relearn(self, heard, band_levels)
        finally:
            state["in_relearn"] = False
        out.append(
            f"  -> frame return {_f(self.echo_return_db)}; band returns "
            f"{[None if r is None else round(r, 1) for r in self.bands.returns]}; "
            f"samples {self.bands._samples}; sparse {self.bands.sparse}"
        )

    eb.EchoBands.learn = traced_learn  # type: ignore[method-assign]
    ep.Endpointer.relearn_echo = traced_relearn  # type: ignore[method-assign]
    try:
        got = pulse_guard_replay.replay(trace)
    finally:
        eb.EchoBands.learn, ep.Endpointer.relearn_echo = learn, relearn
    out.insert(
        0,
        f"replay: self {got['self']} barge {got['barge_ms']} loud echo frames {got['loud_echo_frames']}",
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--bands", default="0,5", help="bands shown per frame (0 = 100-300 Hz)")
    args = p.parse_args(argv)
    bands = [int(b) for b in args.bands.split(",")]
    for path in args.traces:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        print(path, flush=True)
        for line in explain(trace, bands):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Why the default guard (no canceller) paused its own answer (helper guard40, stop 40): replays
``bench/pulse_trace.py`` traces with ``bench/pulse_guard_replay.py`` and prints, per trace, the
lag's relearn (when, how many frames, the bands' learned returns) and the frames from it on
(``--after`` frames) and every guarded frame before her onset that counted as loud voice: the
whole-frame bar, and per band the microphone, the echo's envelope, the speaker now, the return
used, the bar and whether the band was over it. A tuning tool (replay, not a user figure).

    python bench/guard40_why.py /tmp/guard40/tr1/*.pkl [--after 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
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


def _r(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 1) if math.isfinite(x) else str(x)
    if isinstance(x, (list, tuple)):
        return [_r(v) for v in x]
    return x


def explain(trace: dict[str, Any], after: int) -> dict[str, Any]:
    """Replay one trace; the relearns and the loud guarded frames before her onset, per band."""
    state: dict[str, Any] = {"frame": 0, "relearns": [], "frames": [], "since_relearn": None}
    row = trace["row"]
    rel = row["room"]["started_mono"]
    onset = row["room"].get("onset_mono")
    judge, relearn, process = eb.EchoBands._judge, ep.Endpointer.relearn_echo, ep.Endpointer.process

    def traced_judge(self: Any, mic: Any, margin: float, room: Any, learning: bool, frame_ret: Any) -> Any:
        got = judge(self, mic, margin, room, learning, frame_ret)
        per = []
        for b in range(len(mic)):
            ret = self._return_now(b, learning) if self.returns else self._period_now(b)
            per.append({"b": b, "mic": _r(mic[b]), "env": _r(self._env[b] if b < len(self._env) else None),
                        "spk": _r(self._speaker[b] if b < len(self._speaker) else None), "ret": _r(ret),
                        "sparse": ret is not None and self._sparse_now(b, learning),
                        "n": self._samples[b] if b < len(self._samples) else None})
        state["judged"] = {"over": got[0], "most_db": _r(got[1]), "learning": learning, "bands": per}
        return got

    def traced_relearn(self: Any, heard: Any, bands: Any = None) -> None:
        relearn(self, heard, bands)
        state["relearns"].append({
            "frame": state["frame"], "heard": len(heard), "with_bands": sum(b is not None for b in bands or []),
            "echo_return": _r(self.echo_return_db), "guard_frames": self._guard_frames,
            "band_returns": _r(self.bands.returns), "sparse": self.bands.sparse,
            "env_after": _r(self.bands._env),
        })
        state["since_relearn"] = 0

    def traced_process(self: Any, frame: bytes, far: Any = None, level: Any = None, bands: Any = None,
                       *rest: Any, **kw: Any) -> Any:
        state["judged"] = None
        mono = state["mono"]
        events = process(self, frame, far, level, bands, *rest, **kw)
        state["frame"] += 1
        n = state["since_relearn"]
        before_onset = onset is None or mono < onset
        loud = bool(self._suspect_frames) and self.echo_guarded and before_onset
        if loud or (n is not None and n <= after):
            state["frames"].append({
                "t": round(mono - rel, 3), "since_relearn": n, "loud_voice": loud, "level": _r(ep.frame_dbfs(frame)),
                "far": _r(far), "echo_ref": _r(self._echo_ref_dbfs), "return_now": _r(self._echo_return_now()),
                "has_bands": bands is not None, "suspect_ms": self.suspected_speech_ms,
                "onset_loud": self._onset_loud, "since_loud": self._since_loud, "judged": state["judged"],
            })
        if n is not None:
            state["since_relearn"] = n + 1
        return events

    out = pulse_guard_replay.replay_patched(trace, {
        (eb.EchoBands, "_judge"): traced_judge, (ep.Endpointer, "relearn_echo"): traced_relearn,
        (ep.Endpointer, "process"): traced_process}, state)  # fmt: skip
    return {"replay": out, "relearns": state["relearns"], "frames": state["frames"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--after", type=int, default=4, help="frames shown after each relearn")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    all_out = {}
    for path in args.traces:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        got = explain(trace, args.after)
        all_out[path.name] = got
        print(path.name, got["replay"]["self"], "barge", got["replay"]["barge_ms"],
              "loud echo frames", got["replay"]["loud_echo_frames"])
        for r in got["relearns"]:
            print("  relearn at frame", r["frame"], {k: v for k, v in r.items() if k != "frame"})
        for fr in got["frames"]:
            j = fr.pop("judged")
            print("   ", fr)
            if j:
                print("      bands over", j["over"], "most", j["most_db"], "learning", j["learning"])
                for b in j["bands"]:
                    print("       ", b)
    if args.json:
        args.json.write_text(json.dumps(all_out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

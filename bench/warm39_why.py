"""Which cue pauses the SpeexDSP warm-up answer (TUNING TOOL, stop 39 helper warm39).

Replays pulse traces (``bench/pulse_trace.py``, ``--modes speex-later``) with the instrumented
replay of ``bench/fast37_why.py`` / ``bench/own36_why.py`` (per main-endpointer frame: trust,
trusted frames since start-up, the canceller's linear levels, double talk's path, the raw guard's
suspicion), with the earcons marked (``lobby_aec_replay.earcon_spans``: the canceller's reference,
as every pulse-trace replay since stop 39; here also the raw guard's tap), plus per frame the cleaned
frame's level, the bar, webrtcvad's verdicts and g = <mic, estimate> / |estimate|^2.

    python bench/warm39_why.py OUT.pkl TRACE.pkl...

Prints, per trace, the rig's pauses (s after the room started, from the trace's row) and the
replay's, and for each replayed pause before the labelled onset the frames that led to it. A
replay is exact up to its first pause (the recorded speaker goes on): a tuning tool, never a
user figure. Variants (replay only) via ``WARM39_RULE`` (see ``_variant``).
"""

from __future__ import annotations

import math
import os
import pickle
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ARGS = sys.argv[1:]
sys.argv = [sys.argv[0], "-", "main"]  # (own36_why reads its cue from argv on import)

import bench_lobby as bl  # noqa: E402
import fast37_why as f37  # noqa: E402,F401  (patches the canceller and the endpointer)
import lobby_aec_replay as lr  # noqa: E402
import own36_why as ow  # noqa: E402

from kiosk.core import echo_double_talk as edt  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402

_wait0 = ep.Endpointer._wait_for_onset


def _wait(self: Any, frame: bytes, voiced: bool, loud: bool, floor: float, guard: bool) -> Any:
    if self.echo_relearn:
        ow.CUR.update(voiced=voiced, loud=loud, bar=round(floor, 1), lvl=round(ep.frame_dbfs(frame), 1),
                      first=bool(getattr(self._is_speech, "provisional", voiced)), dtn=self._double_talk_now)  # fmt: skip
    return _wait0(self, frame, voiced, loud, floor, guard)


ep.Endpointer._wait_for_onset = _wait  # type: ignore[method-assign]

_inputs0 = lr.pulse_inputs


def _inputs(trace: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The trace's inputs with each played block inside an earcon marked (the raw guard's tap)."""
    return lr.mark_earcon_plays(_inputs0(trace, name))


lr.pulse_inputs = _inputs


def _variant() -> None:
    """Candidate rules, patched into the replayed kiosk code only (WARM39_RULE)."""
    rule = os.environ.get("WARM39_RULE", "")
    if not rule:
        return
    raise SystemExit(f"unknown WARM39_RULE {rule}")


def gain(lin3: Any) -> float | None:
    if not lin3 or len(lin3) < 3:
        return None
    return edt.filter_gain(*lin3[:3])


def show(d: dict[str, Any], k: int, t0: float | None) -> str:
    lin = d.get("lin")
    g = gain(lin)
    rig = None if t0 is None or d.get("tmono") is None else d["tmono"] - t0
    keys = ("T", "tsince", "lvl", "bar", "voiced", "first", "loud", "dt", "path", "aov", "sus", "rsus", "usual", "rret", "far", "eref")
    parts = [f"k{k} t{(k + 1) * 0.02:.2f}" + ("" if rig is None else f" rig{rig:.3f}"), f"lin{lin}",
             "g=" + ("-" if g is None else f"{g:.2f}")]  # fmt: skip
    parts += [f"{key}={d.get(key)}" for key in keys if key in d]
    return " ".join(parts)


def main() -> int:
    _variant()
    out, paths = Path(ARGS[0]), [Path(p) for p in ARGS[1:]]
    cfg = bl.load_bench_config()
    res = []
    for path in paths:
        try:
            trace = pickle.loads(path.read_bytes())
            if trace["row"]["mode"] not in ("speex", "speex-later"):
                continue
            run = lr.pulse_inputs(trace, "/" + path.stem)
            ow.LOG.clear()
            ow.RAW.clear()
            ow.CAN.update(refs=ow.deque(maxlen=50), lag=None, lags=[], self=None, n=-1)
            got = lr.replay(run, cfg)
        except Exception as exc:  # noqa: BLE001 - an odd (older) trace is reported, not fatal
            print(f"!! {path}: {type(exc).__name__}: {exc}", flush=True)
            continue
        tf = run.get("traced_frames") or []
        for k, d in enumerate(ow.LOG):
            if k < len(ow.RAW):
                d["rsus"] = ow.RAW[k]
            if k < len(tf):
                d["tmono"] = tf[k]["mono"]
        row = trace["row"]
        t0 = row["room"].get("started_mono")
        print(f"== {path.parent.name}/{path.stem} {row['echo_db']} rig holds {row.get('holds')} warm {row.get('warm_self')}"
              f" self {row.get('self')} delay {row.get('delay_s')} | replay self {got['self_pauses_s']}"
              f" silent {got['speaker_silent_ms']} warm_suspect {got.get('warm_suspect')}", flush=True)  # fmt: skip
        onset = run["onset_s"] if run["onset_s"] is not None else math.inf
        for s in got["self_pauses_s"][:3] if os.environ.get("WARM39_SHOW") else ():
            k = round(s / 0.02) - 1
            for j in range(max(0, k - 5), min(len(ow.LOG), k + 2)):
                print("   ", show(ow.LOG[j], j, t0))
            print()
        got.update(path=str(path), onset=onset, mode=row["mode"], rig_holds=row.get("holds"),
                   rig_warm=row.get("warm_self"), rig_delay=row.get("delay_s"))
        res.append((got, list(ow.LOG), t0, str(path)))
        pickle.dump(res, out.open("wb"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Per-frame features of SpeexDSP self-pauses and of the visitors' first frames over stored pulse
traces (TUNING TOOL, stop 46 helper warm46).

    python bench/warm46_frames.py OUT.json TRACE.pkl...

Replays each trace with ``bench/warm39_why.py``'s instrumented replay (the raw guard handed the
canceller's levels, as ``bench/warm41_why.py why``), with whichever ``kiosk`` is importable, and
keeps per trace, compactly:

- ``pauses``: the frame that paused the answer (suspicion reached 40 ms) for each replayed
  self-pause before the labelled onset (the first 3), with the 3 frames before it;
- ``visitor``: every frame from 0.1 s before the labelled onset to the visitor's first pause;
- ``warm``: every trusted frame before the onset in the warm-up window (trusted frames since
  start-up x 20 ms < ``WARM_UP_TRUSTED_MS``) whose linear output is >= 6 dB over the bar.

Features: trusted frames since start-up, levels (linear output, estimate, mic), over the estimate,
g = <mic, estimate> / |estimate|^2, the raw return over its usual (dB), the high band over its
estimate, double talk / its path / the own-voice veto. A replay is exact up to its first pause:
a tuning tool, never a user figure.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import warm41_why  # noqa: E402

HANDED = warm41_why.install_levels()
_ARGS = sys.argv[1:]
sys.argv = [sys.argv[0], "-"]
import warm39_why as w39  # noqa: E402  (patches the canceller and the endpointer on import)

sys.argv = [sys.argv[0], *_ARGS]

from kiosk.core import echo_double_talk as edt  # noqa: E402


def features(d: dict[str, Any], k: int) -> dict[str, Any]:
    lin = d.get("lin") or []
    out: dict[str, Any] = {"k": k, "t": round((k + 1) * 0.02, 2), "T": bool(d.get("T")), "tsince": d.get("tsince"),
                           "lin": lin, "dt": bool(d.get("dt")), "path": d.get("path"), "aov": d.get("aov"),
                           "sus": d.get("sus"), "loud": bool(d.get("loud")), "first": bool(d.get("first")),
                           "lvl": d.get("lvl"), "bar": d.get("bar", d.get("floor")), "rret": d.get("rret"),
                           "usual": d.get("usual"), "hi": d.get("hi"), "hi_est": d.get("hi_est"),
                           "settled": d.get("settled"), "lead": d.get("lead"), "pitch": d.get("pitch"),
                           "refnow": d.get("refnow")}  # fmt: skip
    if len(lin) >= 2 and lin[0] is not None and lin[1] is not None:
        out["over"] = round(lin[0] - lin[1], 1)
    if len(lin) >= 3:
        g = edt.filter_gain(*lin[:3])
        out["g"] = None if g is None else round(g, 3)
    if d.get("rret") is not None and d.get("usual") is not None:
        out["rover"] = round(d["rret"] - d["usual"], 1)
    if d.get("hi") is not None and d.get("hi_est") is not None:
        out["hover"] = round(d["hi"] - d["hi_est"], 1)
    return out


def pause_frame(log: list[dict[str, Any]], s: float) -> int:
    """The frame at which suspicion reached 40 ms at or before replay time ``s``."""
    k = min(len(log) - 1, round(s / 0.02) - 1)
    while k > 0 and (log[k - 1].get("sus") or 0) >= 40:
        k -= 1
    return k


def one(path: Path, cfg: Any) -> dict[str, Any] | None:
    trace = pickle.loads(path.read_bytes())
    row = trace["row"]
    if row["mode"] not in ("speex", "speex-later"):
        return None
    run = w39.lr.pulse_inputs(trace, "/" + path.stem)
    w39.ow.LOG.clear()
    w39.ow.RAW.clear()
    w39.ow.CAN.update(refs=w39.ow.deque(maxlen=50), lag=None, lags=[], self=None, n=-1)
    got = w39.lr.replay(run, cfg)
    log = list(w39.ow.LOG)
    onset = run["onset_s"] if run["onset_s"] is not None else math.inf
    k_on = int(onset / 0.02) if math.isfinite(onset) else len(log)
    pauses = []
    for s in [s for s in got["self_pauses_s"] if s < onset][:3]:
        k = pause_frame(log, s)
        pauses.append({"s": s, "frames": [features(log[j], j) for j in range(max(0, k - 3), k + 1)]})
    visitor = []
    if math.isfinite(onset):
        k1 = next((k for k in range(k_on, len(log)) if (log[k].get("sus") or 0) >= 40), None)
        if k1 is not None:
            k1 = pause_frame(log, (k1 + 1) * 0.02)
            visitor = [features(log[j], j) for j in range(max(0, k_on - 5), k1 + 1)]
    warm_ms = edt.WARM_UP_TRUSTED_MS
    warm = []
    for k in range(min(k_on, len(log))):
        d = log[k]
        lin, bar = d.get("lin") or [], d.get("bar", d.get("floor"))
        if not d.get("T") or (d.get("tsince") or 0) * 20 >= warm_ms or len(lin) < 2 or bar is None:
            continue
        if lin[0] >= bar + edt.DOUBLE_TALK_OVER_BAR_DB:
            warm.append(features(d, k))
    return {"trace": str(path), "mode": row["mode"], "kind": row.get("kind"), "echo_db": row.get("echo_db"),
            "onset_s": None if not math.isfinite(onset) else onset, "self_pauses_s": got["self_pauses_s"],
            "silent_ms": got["speaker_silent_ms"], "rig_self": row.get("self"), "rig_warm": row.get("warm_self"),
            "pauses": pauses, "visitor": visitor, "warm": warm}  # fmt: skip


def collect(paths: list[Path], one_trace: Any, extra: Any = None) -> list[dict[str, Any]]:
    """``one_trace(path, cfg)`` over ``paths``: the rows it returned (an odd trace is reported, not
    fatal), each printed with its self-pauses (and ``extra(row)``, if given)."""
    cfg = w39.bl.load_bench_config()
    rows = []
    for path in paths:
        try:
            got = one_trace(path, cfg)
        except Exception as exc:  # noqa: BLE001 - an odd trace is reported, not fatal
            print(f"!! {path}: {type(exc).__name__}: {exc}", flush=True)
            continue
        if got is not None:
            rows.append(got)
            more = f" {extra(got)}" if extra else ""
            print(f"{path.parent.name}/{path.stem} self {got['self_pauses_s']} silent {got['silent_ms']}{more}", flush=True)  # fmt: skip
    return rows


def main() -> int:
    out, paths = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    rows = collect(paths, one)
    import kiosk

    out.write_text(json.dumps({"kiosk_code": str(Path(kiosk.__file__).parent), "levels_handed": HANDED,
                               "rows": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Why the raw guard pauses the SpeexDSP warm-up answer (TUNING TOOL, stop 40 helper warm40).

Replays pulse traces (``bench/pulse_trace.py``, ``--modes speex-later``) as
``bench/lobby_aec_replay.py`` does (earcons marked on the canceller's reference and, as
``bench/warm39_why.py`` does, on the raw guard's tap), and logs per frame the raw guard's state
(kiosk/audio/raw_guard.py): whether it listens, a fresh start, its learning period, learned and
period echo return, the reference it judges by, the raw level, its bar, each loud cue (level,
bands, pitch), webrtcvad's verdict, its suspicion; with the main endpointer's trust, trusted
frames since start-up and suspicion.

    python bench/warm40_raw.py OUT.pkl TRACE.pkl...

Prints per trace the rig's pauses and the replay's; with ``WARM40_SHOW=1`` the frames leading
to each replayed pause before the onset. ``WARM40_RULE`` patches a candidate rule into the
replayed kiosk code only (see ``_variant``). A replay is exact up to its first pause: a tuning
tool, never a user figure.
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

import bench_lobby as bl  # noqa: E402
import lobby_aec_replay as lr  # noqa: E402

from kiosk.audio import raw_guard as rg  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402

LOG: list[dict[str, Any]] = []  # one per raw-guard frame
CUR: dict[str, Any] = {}
MAIN: dict[str, Any] = {}

_inputs0 = lr.pulse_inputs


def _inputs(trace: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The trace's inputs with each played block inside an earcon marked (the raw guard's tap)."""
    return lr.mark_earcon_plays(_inputs0(trace, name))


lr.pulse_inputs = _inputs
_wait0 = ep.Endpointer._wait_for_onset
_bands0 = ep.Endpointer._loud_in_bands
_pitch0 = ep.Endpointer._loud_in_pitch


def _raw(self: Any) -> bool:
    return self.guard_min_level_dbfs is not None


def _wait(self: Any, frame: bytes, voiced: bool, loud: bool, floor: float, guard: bool) -> Any:
    if _raw(self):
        CUR.update(voiced=voiced, loud=loud, bar=round(floor, 1), first=bool(getattr(self._is_speech, "provisional", voiced)))
    elif self.echo_relearn:
        MAIN.update(loud=loud, bar=round(floor, 1))
    return _wait0(self, frame, voiced, loud, floor, guard)


def _bands(self: Any, level: float, onset_level: float) -> bool:
    got = _bands0(self, level, onset_level)
    if _raw(self):
        CUR["lband"] = got
    return got


def _pitch(self: Any, level: float, onset_level: float) -> bool:
    got = _pitch0(self, level, onset_level)
    if _raw(self):
        CUR["lpitch"] = got
        fp = self._frame_pitch
        if fp is not None and not callable(fp):
            CUR["pitch"] = tuple(round(x, 2) for x in fp)
    return got


ep.Endpointer._wait_for_onset = _wait  # type: ignore[method-assign]
ep.Endpointer._loud_in_bands = _bands  # type: ignore[method-assign]
ep.Endpointer._loud_in_pitch = _pitch  # type: ignore[method-assign]
_hear0 = rg.RawMicGuard.hear
_mproc0 = ep.Endpointer.process


def _mproc(self: Any, frame: bytes, far: Any = None, *a: Any, **kw: Any) -> Any:
    ev = _mproc0(self, frame, far, *a, **kw)
    if self.echo_relearn and LOG:
        d = LOG[-1]
        lin = kw.get("linear")
        d["lin"] = None if lin is None else tuple(round(x, 1) for x in lin[:3])
        d.update(T=self.echo_cancelled_well, tsince=self._trusted_frames_since_start, msus=self.suspected_speech_ms,
                 mloud=MAIN.get("loud"), mbar=MAIN.get("bar"), mlvl=round(ep.frame_dbfs(frame), 1))  # fmt: skip
    MAIN.clear()
    return ev


ep.Endpointer.process = _mproc  # type: ignore[method-assign]


def _hear(self: Any, raw: bytes, captured_at_s: float, guarded: bool, main: Any) -> Any:
    CUR.clear()
    CUR["_raw"] = raw
    before = self.endpointer
    got = _hear0(self, raw, captured_at_s, guarded, main)
    g = self.endpointer
    tap = self.tap
    d: dict[str, Any] = {k: v for k, v in CUR.items() if k != "_raw"}
    d.update(listens=g is not None, new=g is not None and g is not before, guarded=guarded,
             lvl=round(ep.frame_dbfs(raw), 1), settled=tap.lag_settled, realign=tap.realignments,
             ref=round(tap.frame_reference_dbfs, 1) if math.isfinite(tap.frame_reference_dbfs) else None,
             refspan=round(tap.reference_dbfs, 1) if math.isfinite(tap.reference_dbfs) else None,
             earcon=getattr(tap, "earcon_audible", None))  # fmt: skip
    if g is not None:
        d.update(gf=g._guard_frames, ret=None if g.echo_return_db is None else round(g.echo_return_db, 1),
                 per=None if g._period_echo_db is None else round(g._period_echo_db, 1),
                 eref=round(g._echo_ref_dbfs, 1) if math.isfinite(g._echo_ref_dbfs) else None,
                 rsus=g.suspected_speech_ms, sf=g._suspect_frames)  # fmt: skip
    LOG.append(d)
    return got


rg.RawMicGuard.hear = _hear  # type: ignore[method-assign]


CAN: dict[str, Any] = {}


def _variant() -> None:
    """Candidate rules, patched into the replayed kiosk code only (WARM40_RULE):

    * ``red:X``: a raw-guard frame whose canceller's linear output is X dB or more under the raw
      microphone (the filter predicts most of the frame: the echo) is not loud.
    """
    rule = os.environ.get("WARM40_RULE", "")
    if not rule:
        return
    name, _, arg = rule.partition(":")
    if name != "red":
        raise SystemExit(f"unknown WARM40_RULE {rule}")
    x = float(arg)
    from kiosk.audio import echo_cancel as ec
    from kiosk.audio.echo_level import EchoLevelTap

    proc0 = ec.EchoCanceller.process

    def proc(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        out = proc0(self, frame, captured_at_s)
        if not isinstance(self, EchoLevelTap):
            CAN.update(frame=frame, levels=self.linear_levels)
        return out

    ec.EchoCanceller.process = proc  # type: ignore[method-assign]
    leaked0 = ep.Endpointer._leaked_echo

    def leaked(self: Any) -> bool:
        if _raw(self):
            lv = CAN.get("levels") if CAN.get("frame") is CUR.get("_raw") else None
            if lv is not None and len(lv) >= 3 and lv[2] - lv[0] >= x:
                CUR["veto"] = True
                return True
            return False
        return leaked0(self)

    ep.Endpointer._leaked_echo = leaked  # type: ignore[method-assign]


def show(d: dict[str, Any], k: int, t0: float | None, tf: list[dict[str, Any]]) -> str:
    rig = None if t0 is None or k >= len(tf) else tf[k]["mono"] - t0
    keys = ("listens", "new", "gf", "ret", "per", "ref", "refspan", "eref", "settled", "realign", "earcon", "lvl",
            "bar", "voiced", "first", "loud", "lband", "lpitch", "pitch", "sf", "rsus", "T", "tsince", "msus", "mlvl", "mbar", "mloud", "lin", "veto")  # fmt: skip
    head = f"k{k} t{(k + 1) * 0.02:.2f}" + ("" if rig is None else f" rig{rig:.3f}")
    return head + " " + " ".join(f"{key}={d.get(key)}" for key in keys if key in d)


def main() -> int:
    _variant()
    out, paths = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    cfg = bl.load_bench_config()
    res = []

    def clear() -> None:
        LOG.clear()

    for one in paths:
        try:
            path, trace, run, got = next(lr.replay_traces([one], cfg, clear))
        except Exception as exc:  # noqa: BLE001 - an odd (older, cut short) trace is reported, not fatal
            print(f"!! {one}: {type(exc).__name__}: {exc}", flush=True)
            continue
        row = trace["row"]
        tf = run.get("traced_frames") or []
        t0 = row["room"].get("started_mono")
        print(f"== {path.parent.name}/{path.stem} {row['echo_db']} rig holds {row.get('holds')} warm {row.get('warm_self')}"
              f" | replay self {got['self_pauses_s']} silent {got['speaker_silent_ms']}", flush=True)  # fmt: skip
        if os.environ.get("WARM40_SHOW"):
            back = int(os.environ.get("WARM40_BACK", "8"))
            for s in got["self_pauses_s"][:2]:
                k = round(s / 0.02) - 1
                for j in range(max(0, k - back), min(len(LOG), k + 2)):
                    print("   ", show(LOG[j], j, t0, tf))
                print()
        res.append((dict(got, path=str(path), onset=run["onset_s"], mode=row["mode"], rig_holds=row.get("holds"), rig_warm=row.get("warm_self")), list(LOG), t0,
                    [f["mono"] for f in tf]))  # fmt: skip
        pickle.dump(res, out.open("wb"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

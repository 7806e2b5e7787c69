"""Instrumented SpeexDSP replay (TUNING TOOL, stop 36 helper own36): per main-endpointer frame,
the trusted double-talk inputs, the canceller's reference history and lag, and (optionally) a
candidate cue that vetoes the double-talk frame (the linear output's "second voice") as echo.

    python bench/own36_why.py OUT.pkl CUE TRACE.pkl...      (CUE: main | see CUES)

Replays each pulse trace (bench/pulse_trace.py) as bench/lobby_aec_replay.py's ``replay`` does,
with whichever ``kiosk`` is importable. Writes [(summary, frames, onset_s, path)] to OUT.pkl and
one line per trace to stdout. A replay is exact up to its first pause (then the recorded speaker
goes on): a tuning tool, never a user figure.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_lobby as bl  # noqa: E402
import lobby_aec_replay as lr  # noqa: E402

from kiosk.audio import echo_cancel as ec  # noqa: E402
from kiosk.audio import echo_delay as ed  # noqa: E402
from kiosk.core import echo_double_talk as edt  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402

LOG: list[dict] = []
CUR: dict = {}
CAN: dict = {"refs": deque(maxlen=50), "lag": None, "lags": []}


LEAD_AT = [float(x) for x in os.environ.get("LEAD_AT", "").split(":") if x]  # frame:ms (experiment)


def _process(self, frame, captured_at_s, _real=ec.EchoCanceller.process):
    if type(self) is ec.EchoCanceller:
        CAN["n"] = CAN.get("n", -1) + 1
        if LEAD_AT and CAN["n"] == int(LEAD_AT[0]):
            self._lead_s = LEAD_AT[1] / 1000  # (the experiment: the stretch's lag known at once)
    out = _real(self, frame, captured_at_s)
    if type(self) is ec.EchoCanceller:  # (not the raw guard's tap)
        CAN["self"] = self
        levels = self._ref_levels
        CAN["refnow"] = levels[-1] if levels else -math.inf
        CAN["refs"].append(CAN["refnow"])
    return out


def _observe(self, mic, ref, _real=ed.EchoDelayEstimator.observe):
    got = _real(self, mic, ref)
    if got is not None:
        CAN["lag"] = round(got, 2)
        CAN["lags"].append((len(LOG), round(got, 2)))
    return got


ec.EchoCanceller.process = _process
ed.EchoDelayEstimator.observe = _observe
AGREE_OF = int(os.environ.get("AGREE_OF", "0"))  # (variant: AGREE readings of the last AGREE_OF agree)
if AGREE_OF:

    def _observe_of(self, mic, ref):
        if self.settled:
            return None
        if self._recent.maxlen != AGREE_OF:
            self._recent = deque(self._recent, maxlen=AGREE_OF)
        self._mic.append(ed.np.frombuffer(mic, dtype="<i2"))
        self._ref.append(ed.np.frombuffer(ref, dtype="<i2"))
        self._since += 1
        if len(self._mic) < (self._mic.maxlen or 0) or self._since < ed.EVERY_FRAMES:
            return None
        self._since = 0
        lag = self.estimate(ed.np.concatenate(self._mic), ed.np.concatenate(self._ref))
        if lag is None:
            self._recent.clear()
            return None
        self._recent.append(lag)
        for pivot in self._recent:
            near = [x for x in self._recent if abs(x - pivot) <= ed.TOLERANCE_MS / 2]
            if len(near) >= ed.AGREE and max(near) - min(near) <= ed.TOLERANCE_MS:
                self.settled_ms = ed._median(ed.np.array(near, dtype=ed.np.float64))
                CAN["lags"].append((len(LOG), round(self.settled_ms, 2)))
                return self.settled_ms
        return None

    ed.EchoDelayEstimator.observe = _observe_of


def _usual(self):
    return self._usual_raw_return()


def _ref_max(frames: int) -> float:
    refs = list(CAN["refs"])[-frames:]
    return max(refs, default=-math.inf)


# Candidate cues: True = "this double-talk frame is the echo alone" (vetoed). d: the frame's record
# so far. Parameters from the environment (CUE_X).
X = float(os.environ.get("CUE_X", "2.0"))
N = int(os.environ.get("CUE_N", "15"))


def cue_tail(self, d):
    """The raw mic no louder over the reference's max over the last N frames (the echo's tail)
    than the usual return + X (only when the linear output is over the estimate + 1 dB)."""
    raw, usual = d.get("raw"), d.get("usual")
    if raw is None or usual is None:
        return False
    top = _ref_max(N)
    return math.isfinite(top) and raw - top <= usual + X


def cue_drop(self, d):
    """The reference fell: this frame's reference level N frames' max - X dB or less, and the raw
    mic no louder over that max than the usual return + 2 dB."""
    raw, usual = d.get("raw"), d.get("usual")
    if raw is None or usual is None:
        return False
    top = _ref_max(N)
    return math.isfinite(top) and d["refnow"] <= top - X and raw - top <= usual + 2.0


def _gain(d):
    """How much of the filter's echo estimate is in the microphone: <mic, estimate> / |estimate|^2
    from the three levels (linear output = mic - estimate). ~1 when the estimate is the echo
    (with or without a second voice added), far under 1 when the filter is wrong."""
    lin, est, raw = d["lin3"]
    p = [10 ** (x / 10) if math.isfinite(x) else 0.0 for x in (lin, est, raw)]
    return (p[2] + p[1] - p[0]) / (2 * p[1]) if p[1] > 0 else math.nan


def _corr(d):
    """The linear output's correlation with the estimate: (gain - 1) * |estimate| / |linear|."""
    lin, est, _ = d["lin3"]
    return (_gain(d) - 1) * 10 ** ((est - lin) / 20)


def cue_gain(self, d):
    return d["lin3"] is not None and _gain(d) < X


def cue_corr(self, d):
    return d["lin3"] is not None and _corr(d) < -X


def cue_unsettled(self, d):
    return d["settled"] is False


def cue_ug(self, d):
    return d["settled"] is False and cue_gain(self, d)


def cue_uc(self, d):
    return d["settled"] is False and cue_corr(self, d)


def cue_rmax(self, d):
    """The raw mic no louder over the reference than the loudest of the echo's last raw returns."""
    raw, returns = d.get("raw"), self._raw_returns
    if raw is None or len(returns) < edt.RAW_RETURN_MIN_FRAMES or not math.isfinite(self._echo_ref_dbfs):
        return False
    return raw - self._echo_ref_dbfs <= max(list(returns)[:-1]) + X  # (this frame's is the last)


def cue_young(self, d):
    return d["age"] < N and cue_gain(self, d)


CUES = {"main": None, "tail": cue_tail, "drop": cue_drop, "gain": cue_gain, "corr": cue_corr,
        "unsettled": cue_unsettled, "ug": cue_ug, "young": cue_young, "uc": cue_uc, "rmax": cue_rmax}
CUE = CUES[sys.argv[2]]

_dt0 = ep.Endpointer._double_talk
_aov0 = ep.Endpointer._answers_own_voice


def _dt(self, floor, loud_voice=False):
    got = _dt0(self, floor, loud_voice)
    if not self.echo_relearn:
        return got
    hb = self.high_band
    CUR.update(dt=got, heard=bool(hb.heard), floor=round(floor, 1), lv=bool(loud_voice), tbf=self._trusted_before_frame)
    if hb.frame is not None and got:
        CUR["hb"] = [round(x, 1) for x in (hb.frame[0], hb.frame[1])]
    if got and self._frame_linear is not None:
        lin, est = self._frame_linear[:2]
        CUR["path"] = "cons" if hb.heard else ("est" if lin - est >= edt.DOUBLE_TALK_OVER_ESTIMATE_DB else "loud")
        if self._frame_linear_pitch is not None:
            CUR["pitch"] = tuple(round(x, 2) for x in self._frame_linear_pitch())
        if CUE is not None and CUR["path"] != "cons":
            d = dict(CUR, raw=None, usual=_usual(self), refnow=CAN.get("refnow", -math.inf), lin3=None)
            if len(self._frame_linear) > 2:
                d["raw"] = self._frame_linear[2]
                d["lin3"] = tuple(self._frame_linear[:3])
            can = CAN.get("self")
            d["settled"] = None if can is None or can._delay is None else can._delay.settled
            d["age"] = getattr(self, "_own36_age", 0)
            if CUE(self, d):
                CUR["veto"] = True
                return False
    return got


def _aov(self):
    got = _aov0(self)
    if self.echo_relearn:
        CUR["aov"] = got
    return got


ep.Endpointer._double_talk, ep.Endpointer._answers_own_voice = _dt, _aov
_proc = ep.Endpointer.process


def _p(self, frame, far=None, *a, **kw):
    if not self.echo_relearn:
        return _proc(self, frame, far, *a, **kw)
    CUR.clear()
    self._own36_age = getattr(self, "_own36_age", 0) + 1 if self.echo_cancelled_well else 0
    ev = _proc(self, frame, far, *a, **kw)
    lin = kw.get("linear")
    can = CAN.get("self")
    usual = _usual(self)
    d = dict(CUR)
    d.update(
        far=None if far is None else round(far, 1), refnow=round(CAN.get("refnow", -math.inf), 1),
        eref=round(self._echo_ref_dbfs, 1) if math.isfinite(self._echo_ref_dbfs) else None,
        lin=lin and [round(x, 1) for x in lin], T=self.echo_cancelled_well,
        usual=None if usual is None else round(usual, 1), sus=self.suspected_speech_ms,
        ev=[type(e).__name__ for e in ev],
        lead=None if can is None else round(can._lead_s * 1000, 2),
        realign=None if can is None else can.realignments, relines=None if can is None else can.relines,
        lag=CAN["lag"],
        settled=None if can is None or can._delay is None else can._delay.settled,
        played=None if can is None else can._played_frames, age=self._own36_age,
        rret=None if not (lin and len(lin) > 2 and math.isfinite(self._echo_ref_dbfs)) else round(lin[2] - self._echo_ref_dbfs, 1),
        rmax=round(max(list(self._raw_returns)[:-1]), 1) if len(self._raw_returns) > 1 else None,
        refmax15=round(_ref_max(15), 1),
    )
    LOG.append(d)
    return ev


ep.Endpointer.process = _p
if os.environ.get("WAITLAG"):  # (variant: no trust while the stretch's lag is re-measured)
    _well = ep.Endpointer.echo_cancelled_well

    def _waitlag(self):
        can = CAN.get("self")
        if self.echo_relearn and can is not None and can._delay is not None and can._lined_up and not can._delay.settled:
            return False
        return _well.fget(self)

    ep.Endpointer.echo_cancelled_well = property(_waitlag)
_rh = None
try:
    from kiosk.audio import raw_guard as rg

    _rh = rg.RawMicGuard.hear
    RAW: list = []

    def _h(self, *a, **kw):
        got = _rh(self, *a, **kw)
        RAW.append(self.suspected_speech_ms)
        return got

    rg.RawMicGuard.hear = _h
except ImportError:
    RAW = []


def main() -> None:
    cfg = bl.load_bench_config()
    res = []
    for path in sys.argv[3:]:
        for run in lr._runs(Path(path)):
            LOG.clear()
            RAW.clear()
            CAN.update(refs=deque(maxlen=50), lag=None, lags=[], self=None, n=-1)
            r = lr.replay(run, cfg)
            tf = run.get("traced_frames") or []
            for k, d in enumerate(LOG):
                if k < len(RAW):
                    d["rsus"] = RAW[k]
                if k < len(tf):
                    d["tmono"] = tf[k]["mono"]
            r["path"] = path
            r["lags"] = list(CAN["lags"])
            r["vetoes"] = [k for k, d in enumerate(LOG) if d.get("veto")]
            res.append((r, list(LOG), run["onset_s"], path))
            tag = "/".join(path.split("/")[-2:])
            print(tag, r["echo_db"], "silent", r["speaker_silent_ms"], "self", r["self_pauses_s"],
                  "vetoes", [round((k + 1) * 0.02, 2) for k in r["vetoes"]], flush=True)
            pickle.dump(res, open(sys.argv[1], "wb"))  # (after each: a hold may end first)


if __name__ == "__main__":
    main()

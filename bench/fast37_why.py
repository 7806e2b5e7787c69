"""Why a SpeexDSP later-answer barge-in is slow (TUNING TOOL, stop 37 helper fast37): the
instrumented replay of bench/own36_why.py (per main-endpointer frame: double talk's inputs and
path, trust, the lag, the raw guard's suspicion), plus per frame the consonant cue's inputs (the
linear output and the echo estimate over 3 kHz: ``hi``, ``hi_est``; the median of the band's
recent levels before the frame: ``hi_med``), the voiced run's loud frames and the trusted frames
since start-up (the warm-up).

    python bench/fast37_why.py OUT.pkl main TRACE.pkl...

Writes [(summary, frames, onset_s, path)] to OUT.pkl as own36_why does (compare two passes with
bench/fast37_compare.py). Variants, patched into the replay only (never a kiosk change):

* ``FAST37_RULE=bar FAST37_X=x``: double talk's linear output x dB over the bar (main: 6).
* ``FAST37_RULE=barpitch FAST37_X=x FAST37_Y=y``: also a frame x..6 dB over the bar and y dB over
  the estimate whose linear output has a pitch the answer lacks.
* ``FAST37_RULE=cons FAST37_CONS=A:B,...``: the consonant cue also A dB over the band's recent
  median and B dB over the estimate there (main: 16:15 or 6:20).
* ``FAST37_RELINE_AT=frame:ms`` (experiment): the canceller relines by ms at that frame.
* ``FAST37_NORELINE_NEAR=n`` (oracle): a lag settled from n frames before the labelled onset on
  reads as the learned lag (no reline or realign there).

A replay is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import own36_why as ow  # noqa: E402  (patches the canceller and the endpointer on import)

from kiosk.core import echo_consonant as eco  # noqa: E402
from kiosk.core import echo_double_talk as edt  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402

_p36 = ep.Endpointer.process  # (own36's logging wrapper)


def _p(self, frame, far=None, *a, **kw):
    if not self.echo_relearn:
        return _p36(self, frame, far, *a, **kw)
    recent = list(self.high_band._recent)
    ev = _p36(self, frame, far, *a, **kw)
    d = ow.LOG[-1]
    hb = self.high_band.frame
    if hb is not None:
        lin_hi = hb[0]
        d["hi"] = round(lin_hi, 1) if math.isfinite(lin_hi) else None
        d["hi_est"] = round(hb[1], 1) if math.isfinite(hb[1]) else None
        d["hi_med"] = round(statistics.median(recent), 1) if len(recent) >= eco.CONSONANT_MIN_FRAMES else None
    d["onset_loud"] = self._onset_loud
    d["sf"] = self._suspect_frames
    d["tsince"] = self._trusted_frames_since_start
    d["nlearn"] = len(self._recent_echo_db)  # (the echo return's steps learned since the last change)
    d["emax"] = round(self._echo_max_db, 1) if math.isfinite(self._echo_max_db) else None
    return ev


ep.Endpointer.process = _p

# Experiment (not a rule): FAST37_RELINE_AT="frame:ms": the canceller relines by ms at that
# canceller frame (as a lag settled there off by ms would): the guard relearns (echo_path_changed).
RELINE_AT = [float(x) for x in os.environ.get("FAST37_RELINE_AT", "").split(":") if x]
if RELINE_AT:
    from kiosk.audio import echo_cancel as ec

    _proc36 = ec.EchoCanceller.process

    def _reline_at(self, frame, captured_at_s):
        out = _proc36(self, frame, captured_at_s)
        if type(self) is ec.EchoCanceller and ow.CAN.get("n") == int(RELINE_AT[0]):
            self._lead_s -= RELINE_AT[1] / 1000
            self.relines += 1
            self.realignments += 1
        return out

    ec.EchoCanceller.process = _reline_at

# Oracle (not a rule; replay only): FAST37_NORELINE_NEAR=N: a lag the canceller settles on within
# N frames before the labelled onset or after it reads as the lag it learned (no reline, no
# realign): what the relines a visitor's own voice brings about cost her barge-in.
NEAR = int(os.environ.get("FAST37_NORELINE_NEAR", "0"))
if NEAR:
    from kiosk.audio import echo_delay as ed

    _obs = ed.EchoDelayEstimator.observe  # (own36's logging wrapper)
    _replay0 = ow.lr.replay
    ONSET: dict = {}

    def _replay(run, cfg):
        ONSET["k"] = None if run.get("onset_s") is None else int(run["onset_s"] / 0.02)
        return _replay0(run, cfg)

    def _obs_near(self, mic, ref):
        got = _obs(self, mic, ref)
        k0 = ONSET.get("k")
        if got is not None and k0 is not None and len(ow.LOG) >= k0 - NEAR:
            ow.CAN.setdefault("oracle", []).append((len(ow.LOG), got))
            self.settled_ms = ed.TARGET_MS
            return ed.TARGET_MS
        return got

    ed.EchoDelayEstimator.observe = _obs_near
    ow.lr.replay = _replay

# Candidate rules (replay only): each patches a constant or a cue of the replayed kiosk code.
RULE = os.environ.get("FAST37_RULE", "")
X = float(os.environ.get("FAST37_X", "0"))
Y = float(os.environ.get("FAST37_Y", "0"))
if RULE == "bar":  # double talk's linear output over the bar by FAST37_X dB (main: 6)
    edt.DOUBLE_TALK_OVER_BAR_DB = X
if RULE == "cons":  # the consonant cue also at FAST37_CONS="A:B,...": A dB over the band's
    # recent median and B dB over the estimate there (main: 16:15 or 6:20)
    CLAUSES = [tuple(float(v) for v in c.split(":")) for c in os.environ["FAST37_CONS"].split(",")]
    _hear0 = eco.HighBandCue._hear

    def _hear(self):
        if self.frame is not None and not self._kept:
            recent = list(self._recent)
            linear = self.frame[0]
            if len(recent) >= eco.CONSONANT_MIN_FRAMES and math.isfinite(linear):
                over = linear - statistics.median(recent)
                if any(over >= a and linear - self.frame[1] >= b for a, b in CLAUSES):
                    self._recent.append(linear)
                    return True
        return _hear0(self)

    eco.HighBandCue._hear = _hear
if RULE == "barpitch":  # ...or X dB over it, Y dB over the estimate, at a pitch the answer lacks
    _main_dt = ow._dt0

    def _barpitch(self, floor, loud_voice=False):
        if _main_dt(self, floor, loud_voice):
            return True
        if self._frame_linear is None or self.earcon_echo or not self.echo_cancelled_well:
            return False
        if not self._trusted_before_frame or self.high_band.heard:
            return False
        linear, estimate = self._frame_linear[:2]
        if not (floor + X <= linear < floor + edt.DOUBLE_TALK_OVER_BAR_DB and linear - estimate >= Y):
            return False
        if self._in_warm_up() and self._warm_up_leak():
            return False
        if self._frame_linear_pitch is None:
            return False
        got = edt.pitch_the_answer_lacks(*self._frame_linear_pitch())
        ow.CUR["bp"] = got
        return got

    ow._dt0 = _barpitch


def main() -> None:
    ow.main()


if __name__ == "__main__":
    main()

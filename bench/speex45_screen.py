"""The plan's screen for speex45 (TUNING TOOL, stop 45): stop 44's soft consonant pair (quiet44) and
estimate-apart cue (echo44) together. Replays stored SpeexDSP pulse traces with the importable
kiosk (``bench/warm41_why.py replay``: the raw guard handed the canceller's levels) and, for a
kiosk that has the two cues, logs per trace every frame where either could act:

- pair: each trusted frame whose band over 3 kHz is >= ``LOG_DB`` over both its recent median and
  the estimate there (replay s, over median, over estimate, whether the pair fired);
- apart: each frame the estimate-apart cue was asked about with corr <= ``LOG_CORR`` (replay s,
  corr, band over estimate, cleared).

``SPEEX45_PAIR=min:sum`` / ``SPEEX45_APART=corr:high_db`` set the bounds (replay only).

    python bench/speex45_screen.py OUT.json CUES.json TRACE.pkl...

then ``bench/warm41_why.py compare MAIN.json OUT.json CMP.json``. A replay is exact up to its first
pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lobby_aec_replay as lr  # noqa: E402
import warm41_why  # noqa: E402

LOG_DB = 6.0
LOG_CORR = -0.3
_FRAME = [0]
_CUES: dict[str, dict[str, list[Any]]] = {}
_NOW: dict[str, Any] = {}


def _instrument() -> bool:
    from kiosk.audio import echo_cancel as ec
    from kiosk.core import echo_double_talk as edt

    cues = edt.TrustedCancellerCues
    if not hasattr(cues, "_high_band_pair") or not hasattr(cues, "_estimate_apart"):
        return False
    warm41_why.set_constants("SPEEX45_PAIR", (("DOUBLE_TALK_HIGH_MIN_DB", float), ("DOUBLE_TALK_HIGH_SUM_DB", float)))
    warm41_why.set_constants("SPEEX45_APART", (("ESTIMATE_APART_CORR", float), ("ESTIMATE_APART_HIGH_OVER_DB", float)))
    process0, pair0, apart0 = ec.EchoCanceller.process, cues._high_band_pair, cues._estimate_apart

    def process(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        if type(self) is ec.EchoCanceller:
            _FRAME[0] += 1
        return process0(self, frame, captured_at_s)

    def pair(self: Any, recent: list[float]) -> bool:
        got = pair0(self, recent)
        high = self.high_band.frame
        if high is not None and len(recent) >= 3 and math.isfinite(high[0]):
            over_m, over_e = high[0] - statistics.median(recent), high[0] - high[1]
            if over_m >= LOG_DB and over_e >= LOG_DB:
                _NOW["pair"].append([round(_FRAME[0] * 0.02, 2), round(over_m, 1), round(over_e, 1), bool(got)])
        return got

    def apart(self: Any) -> bool:
        got = apart0(self)
        frame = self._frame_linear
        if frame is not None and len(frame) >= 3 and math.isfinite(frame[0]):
            g = edt.filter_gain(*frame[:3])
            if g is not None:
                corr = (g - 1.0) * 10 ** ((frame[1] - frame[0]) / 20)
                high = self.high_band.frame
                band = None if high is None else round(high[0] - high[1], 1)
                if corr <= LOG_CORR:
                    _NOW["apart"].append([round(_FRAME[0] * 0.02, 2), round(corr, 3), band, bool(got)])
        return got

    ec.EchoCanceller.process = process  # type: ignore[method-assign]
    cues._high_band_pair, cues._estimate_apart = pair, apart  # type: ignore[method-assign]
    return True


def main() -> int:
    out, cues_out, paths = Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
    on = _instrument()
    replay0 = lr.replay_traces

    def replay_traces(ps: list[Path], cfg: Any, before_replay: Any = None) -> Any:
        for p in ps:
            _FRAME[0] = 0
            _NOW.clear()
            _NOW.update(pair=[], apart=[])
            got = next(replay0([p], cfg, before_replay))
            _CUES[str(p)] = {"pair": list(_NOW["pair"]), "apart": list(_NOW["apart"])}
            yield got

    lr.replay_traces = replay_traces  # type: ignore[assignment]
    got = warm41_why.replay_main(out, paths)
    cues_out.write_text(json.dumps({"instrumented": on, "pair_v": os.environ.get("SPEEX45_PAIR"),
                                    "apart_v": os.environ.get("SPEEX45_APART"), "traces": _CUES}))  # fmt: skip
    print("instrumented", on, flush=True)
    return got


if __name__ == "__main__":
    sys.exit(main())

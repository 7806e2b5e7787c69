"""Per band, why each guarded frame counted loud (helper guard42, stop 42): replays
``bench/pulse_trace.py`` traces with ``bench/pulse_guard_replay.py`` and prints every guarded frame
from the lag's relearn on where a band is over its bar or the frame counted loud (before her onset:
the echo alone; after it: the visitor, up to the pause): the rule that made it loud (level, bands,
pitch), and per band over its bar: how far (dB), the return used, how many frames it was learned
from and whether sparse. A tuning tool (replay, not a user figure).

    python bench/guard42_bands.py TRACE.pkl... [--all]
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


def explain(trace: dict[str, Any], show_all: bool) -> list[str]:
    out: list[str] = []
    st: dict[str, Any] = {"mono": math.nan, "bands": None, "why": []}
    row = trace["row"]
    rel, onset = row["room"]["started_mono"], row["room"].get("onset_mono")
    judge, process = eb.EchoBands._judge, ep.Endpointer.process
    in_bands, in_pitch = ep.Endpointer._loud_in_bands, ep.Endpointer._loud_in_pitch
    relearn = ep.Endpointer.relearn_echo

    def t_judge(self: Any, mic: Any, margin: float, room: Any, learning: bool, frame_ret: Any) -> Any:
        got = judge(self, mic, margin, room, learning, frame_ret)
        per = []
        rm = room if room is not None else -math.inf
        for b, (m, e, played) in enumerate(zip(mic, self._env, self._speaker, strict=False)):
            ret = self._return_now(b, learning) if self.returns else self._period_now(b)
            sparse = ret is not None and self._sparse_now(b, learning)
            if ret is None:
                if e >= rm + eb.BAND_LEARN_ABOVE_ROOM_DB:
                    continue
                r = eb.BAND_UNLEARNED_RETURN_DB
            else:
                r = max(ret, frame_ret + eb.BAND_SPARSE_UNDER_FRAME_DB) if sparse and frame_ret is not None else ret
            tail = e > played + eb.BAND_TAIL_FALL_DB
            bar = max(e + r + (eb.BAND_TAIL_EXTRA_DB if tail else 0) + margin + eb.BAND_EXTRA_MARGIN_DB,
                      rm + eb.BAND_OVER_ROOM_DB)
            if m >= bar - 1.0:
                n = self._samples[b] if b < len(self._samples) else None
                per.append(f"b{b}{'+' if m >= bar else '~'}{m - bar:+.1f}(m-e {m - e:+.1f} ret {r:+.1f} n{n}"
                           f"{' S' if sparse else ''}{' T' if tail else ''})")
        st["bands"] = f"over {got[0]} most {got[1]:+.1f} " + " ".join(per)
        return got

    def t_in_bands(self: Any, level: float, onset_level: float) -> bool:
        got = in_bands(self, level, onset_level)
        if got:
            st["why"].append("bands")
        return got

    def t_in_pitch(self: Any, level: float, onset_level: float) -> bool:
        got = in_pitch(self, level, onset_level)
        if got:
            st["why"].append("pitch")
        return got

    def t_relearn(self: Any, heard: Any, bands: Any = None) -> None:
        relearn(self, heard, bands)
        rets = [None if r is None else round(r, 1) for r in self.bands.returns]
        out.append(f"  {st['mono'] - rel:6.3f} relearn: ret {self.echo_return_db} bands {rets} "
                   f"n {self.bands._samples} sparse {''.join('S' if s else '.' for s in self.bands.sparse)}")

    def t_process(self: Any, frame: bytes, far: Any = None, level: Any = None, bands: Any = None,
                  *rest: Any, **kw: Any) -> Any:
        st["bands"], st["why"] = None, []
        floor_before = None
        events = process(self, frame, far, level, bands, *rest, **kw)
        mono = st["mono"]
        lvl = ep.frame_dbfs(frame)
        loud = bool(self._suspect_frames) and self.echo_guarded
        after = onset is not None and mono >= onset
        if (st["bands"] and ("+" in st["bands"] or show_all)) or loud:
            if not after or self.suspected_speech_ms or loud:
                tag = "VIS" if after else "echo"
                why = ",".join(st["why"]) or ("level" if loud else "-")
                out.append(f"  {mono - rel:6.3f} {tag:4s} {'LOUD' if loud else '    '} {why:11s} lvl {lvl:6.1f} "
                           f"far {far if far is None else round(far, 1)} ret {self._echo_return_now():+.1f} "
                           f"sus {self.suspected_speech_ms:3d} ol {self._onset_loud} | {st['bands']}")
        del floor_before
        return events

    got = pulse_guard_replay.replay_patched(trace, {
        (eb.EchoBands, "_judge"): t_judge, (ep.Endpointer, "process"): t_process,
        (ep.Endpointer, "_loud_in_bands"): t_in_bands, (ep.Endpointer, "_loud_in_pitch"): t_in_pitch,
        (ep.Endpointer, "relearn_echo"): t_relearn}, st)  # fmt: skip
    onset_s = None if onset is None else round(onset - rel, 3)
    out.insert(0, f"replay: self {got['self']} barge {got['barge_ms']} loud echo {got['loud_echo_frames']} "
                  f"onset {onset_s}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--all", action="store_true", help="also frames with a band within 1 dB of its bar")
    args = p.parse_args(argv)
    for path in args.traces:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        print(path, flush=True)
        for line in explain(trace, args.all):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Frame by frame, what holds the default guard's pause back on a traced barge-in (stop 39 helper
guardq39, issue 10 item (c)). A tuning tool: it replays ``bench/pulse_trace.py``'s traces the
way ``bench/pulse_guard_replay.py`` does (exact up to the first pause) with whichever ``kiosk``
is importable, and prints, per microphone frame from ``--before`` ms ahead of the visitor's
labelled onset to the pause, every cue of the guard against its bar:

* ``lvl`` the frame's level (dBFS); ``bar`` the whole-frame bar (``_guard_floor_dbfs``: the
  lined-up echo + return + margin, and the absolute minimum, relaxed where the echo is far under
  it); ``d`` = lvl - bar (the frame counts whole at d >= 0);
* ``gate`` lvl against the bands' level gate (-30 - 2 dBFS; -30 - 6 right after a loud frame);
* ``bands`` per band (100-300, 300-600, 600-1k, 1-1.5k, 1.5-2.2k, 2.2-3.2k, 3.2-4.5k, 4.5-8k Hz)
  microphone - its bar in dB (``s`` a sparse band, ``u`` unlearned and skipped); ``n`` bands over;
* ``pitch`` (microphone, reference) periodicity (None under the pitch cue's level minimum);
* ``v`` webrtcvad's first opinion, ``L`` loud (``W`` whole, ``B`` bands, ``P`` pitch),
  ``cl`` the close-loud run, ``sus`` the suspicion (ms; the pause at vad.barge_in_pause_ms).

    python bench/guardq39_frames.py TRACE.pkl [--before 100] [--after 600]
    python bench/guardq39_frames.py --summary TRACE.pkl...   # per run: where each cue first clears
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

import pulse_guard_replay as pgr  # noqa: E402


def band_margins(e: Any, mic: list[float], raw: list[Any] | None = None) -> list[tuple[float, str]]:
    """Per band: microphone - its bar (dB) and a flag (``s`` sparse, ``u`` unlearned, skipped,
    ``n`` never sounded while learning: judged with 0 dB), the same bars as
    :meth:`kiosk.core.echo_bands.EchoBands._judge`; ``raw`` gets (mic, envelope, return used,
    room) per band."""
    from kiosk.core import echo_bands as eb

    b = e.bands
    learning = e._guard_learning
    room = e._band_room_dbfs
    frame_ret = e._echo_return_now()
    margin = e.settings.barge_in_margin_db
    early = not b.returns and learning and b._period_frames >= eb.BAND_LEARN_FRAMES
    if not (b.returns or early) or len(b._env) != len(mic):
        return []
    out = []
    for k, (m, env, played) in enumerate(zip(mic, b._env, b._speaker, strict=True)):
        ret = b._return_now(k, learning) if b.returns else b._period_now(k)
        sparse = ret is not None and b._sparse_now(k, learning)
        flag = "s" if sparse else ""
        if ret is None:
            if env >= room + eb.BAND_LEARN_ABOVE_ROOM_DB:
                out.append((math.nan, "u"))
                continue
            ret = eb.BAND_UNLEARNED_RETURN_DB
            flag = "n"
        elif sparse and frame_ret is not None:
            ret = max(ret, frame_ret + eb.BAND_SPARSE_UNDER_FRAME_DB)
        if env > played + eb.BAND_TAIL_FALL_DB:
            ret += eb.BAND_TAIL_EXTRA_DB
        bar = max(env + ret + margin + eb.BAND_EXTRA_MARGIN_DB, room + eb.BAND_OVER_ROOM_DB)
        out.append((m - bar, flag))
        if raw is not None:
            raw.append((m, env, ret, room))
    return out


def replay_frames(trace: dict[str, Any], before_s: float = 0.1, after_s: float = 0.6,
                  patch: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """pulse_guard_replay.replay, recording each frame's cues near the onset (or, with no onset,
    every guarded frame)."""
    from kiosk.core import endpointing as ep

    rows: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}
    orig_wait, orig_bands, orig_pitch = (ep.Endpointer._wait_for_onset, ep.Endpointer._loud_in_bands,
                                         ep.Endpointer._loud_in_pitch)
    orig_floor = ep.Endpointer._guard_floor_dbfs

    def wait(self: Any, frame: bytes, voiced: bool, loud: bool, floor: float, guard: bool) -> Any:
        cur.update(voiced=voiced, loud=loud, floor=floor, guard=guard)
        return orig_wait(self, frame, voiced, loud, floor, guard)

    def bands(self: Any, level: float, onset_level: float) -> bool:
        got = orig_bands(self, level, onset_level)
        cur["B"] = got
        if self._frame_bands is not None:
            raw: list[Any] = []
            cur["bands"] = band_margins(self, list(self._frame_bands[0]), raw)
            cur["band_raw"] = raw
        cur["after_loud"] = self._onset_loud > 0 and self._since_loud == 0
        return got

    def pitch(self: Any, level: float, onset_level: float) -> bool:
        got = orig_pitch(self, level, onset_level)
        cur["P"] = got
        return got

    def floor(self: Any, far: Any) -> float:
        got = orig_floor(self, far)
        cur["whole_bar"] = got
        cur["ret"] = self._echo_return_now()
        cur["echo"] = far
        cur["learning"] = self._guard_learning
        return got

    orig_process = ep.Endpointer.process

    def process(self: Any, frame: bytes, far: Any = None, level: Any = None, *a: Any, **kw: Any) -> Any:
        cur.clear()
        out = orig_process(self, frame, far, level, *a, **kw)
        cur.update(sus=self.suspected_speech_ms, cl=self._close_loud, ol=self._onset_loud,
                   pitch=a[1] if len(a) > 1 else None, ret_learned=self.echo_return_db,
                   aligned=self.reference_aligned)
        rows.append(dict(cur))
        return out

    ep.Endpointer._wait_for_onset, ep.Endpointer._loud_in_bands = wait, bands  # type: ignore[method-assign]
    ep.Endpointer._loud_in_pitch, ep.Endpointer._guard_floor_dbfs = pitch, floor  # type: ignore[method-assign]
    ep.Endpointer.process = process  # type: ignore[method-assign]
    undo = patch() if patch else None
    try:
        # Frame rows line up with the replay's processed frames (one process() per frame).
        ats: list[tuple[float, float, bool]] = []
        orig_tap = None
        from kiosk.audio.echo_level import EchoLevelTap

        orig_tap = EchoLevelTap.process

        def tap_process(self: Any, pcm: bytes, captured: float) -> bytes:
            out = orig_tap(self, pcm, captured)
            ats.append((captured, self.frame_reference_dbfs, self.lag_settled))
            return out

        EchoLevelTap.process = tap_process  # type: ignore[method-assign]
        result = pgr.replay(trace)
    finally:
        ep.Endpointer._wait_for_onset, ep.Endpointer._loud_in_bands = orig_wait, orig_bands  # type: ignore[method-assign]
        ep.Endpointer._loud_in_pitch, ep.Endpointer._guard_floor_dbfs = orig_pitch, orig_floor  # type: ignore[method-assign]
        ep.Endpointer.process = orig_process  # type: ignore[method-assign]
        if orig_tap is not None:
            EchoLevelTap.process = orig_tap  # type: ignore[method-assign]
        if undo:
            undo()
    frames = [f for f in trace["frames"] if "captured" in f and "guarded" in f]
    row = trace["row"]
    rel = row["room"]["started_mono"]
    onset = row["room"].get("onset_mono")
    out = []
    for f, r in zip(frames, rows, strict=False):
        r["at"] = f["at"]
        r["t_ms"] = None if onset is None else round((f["at"] - onset) * 1000)
        r["t_s"] = f["at"] - rel
        r["lvl"] = f["mic_dbfs"]
        r["guarded"] = f["guarded"]
        out.append(r)
    if onset is not None:
        out = [r for r in out if -before_s * 1000 <= r["t_ms"] <= after_s * 1000]
    return result, out


def fmt(r: dict[str, Any]) -> str:
    lvl, bar = r["lvl"], r.get("whole_bar")
    d = "" if bar is None else f"{lvl - bar:+6.1f}"
    gate = lvl - (-30 - (6 if r.get("after_loud") else 2))
    bands = " ".join("   .  " if math.isnan(m) else f"{m:+5.1f}{fl or ' '}" for m, fl in r.get("bands", []))
    n = sum(1 for m, _ in r.get("bands", []) if not math.isnan(m) and m >= 0)
    p = r.get("pitch")
    ps = "" if p is None else f"{p[0]:.2f}/{p[1]:.2f}"
    cues = ("W" if bar is not None and lvl >= bar else "") + ("B" if r.get("B") else "") + ("P" if r.get("P") else "")
    t = r["t_ms"] if r["t_ms"] is not None else round(r["t_s"] * 1000)
    echo = r.get("echo")
    es = "  -inf" if echo is None else f"{echo:6.1f}"
    return (f"{t:6d} lvl {lvl:6.1f} echo {es} ret {r.get('ret', math.nan):5.1f} bar {bar if bar is None else round(bar, 1)!s:6} d {d:6} "
            f"gate {gate:+5.1f} v {int(bool(r.get('voiced')))} L {cues:3} cl {r['cl']} sus {r['sus']:3d} "
            f"n {n} [{bands}] p {ps}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--before", type=float, default=100.0)
    p.add_argument("--after", type=float, default=600.0)
    args = p.parse_args(argv)
    for path in args.traces:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        result, rows = replay_frames(trace, args.before / 1000, args.after / 1000)
        print(path, {k: result[k] for k in ("mix", "echo_db", "barge_ms", "self", "loud_echo_frames")},
              "recorded", result["recorded"]["delay_ms"])
        for r in rows:
            print("  ", fmt(r))
            if r["sus"] >= 40 and r["t_ms"] is not None and r["t_ms"] >= 0:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())

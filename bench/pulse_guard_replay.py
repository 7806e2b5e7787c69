"""Replays the default guard's decisions (no canceller) on ``bench/pulse_trace.py``'s per-frame
traces of the daemon through real PulseAudio (issue 10 item 4, helper guardpa29). A tuning
tool: the figures are ``pulse_aec.py``'s own.

    python bench/pulse_guard_replay.py /tmp/tr/*.pkl            # one line per run
    python bench/pulse_guard_replay.py --frames /tmp/tr/x.pkl    # every loud guarded frame
    python bench/pulse_guard_replay.py --why 4 /tmp/tr/x.pkl     # and why, 4 frames before each

Per traced run, a fresh :class:`kiosk.audio.echo_level.EchoLevelTap`, voice detector and
:class:`kiosk.core.endpointing.Endpointer` of whichever ``kiosk`` is importable
(``PYTHONPATH=<an archive of another commit>`` to compare) hear what the daemon's did: every
block the speaker took (its place on the reference's timeline, as traced) and every microphone
frame with its capture stamp, in the order they came; the guard is up where it was. A pause is
counted where the pipeline pauses (the guard up and ``suspected_speech_ms >=
vad.barge_in_pause_ms``): before the visitor's labelled onset a self-pause (in the earlier
answer of a ``*-later`` run: a warm-up one), after it the barge-in (its time: from the onset to
the end of the frame that paused, on the daemon's clock; the recorded run adds the speaker's
own stop). Exact up to the first pause: after it the recorded speaker is the traced run's.
``loud_echo_frames``: guarded frames before the visitor's onset (all of an echo mix) that counted
as loud voice, the guard's margin against the echo alone (one is not a pause: it takes
``vad.barge_in_pause_ms``). ``--why N``: each printed frame also says which rule counted it (the
level rule: ``level >= bar``; the band rule; the pitch cue), the bar, the lined-up reference the
bar is built on (``echo_ref``, the speaker's decaying envelope), the echo return, the room; and the
N guarded frames before it are printed too (helper lvl50: the level rule at a word end).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any


class _Playback:
    """What EchoLevelTap asks of a playback buffer (the blocks are fed by hand)."""

    rate_hz = 24000
    earcon_in_last_read = False

    def add_read_listener(self, fn: Any) -> None:
        pass

    def remove_read_listener(self, fn: Any) -> None:
        pass


def _explain(endpointer: Any) -> None:
    """Records on ``endpointer._traced`` why each frame counted (``--why``): its bar and cues."""
    wait, in_bands = endpointer._wait_for_onset, endpointer._loud_in_bands
    in_pitch = endpointer._loud_in_pitch

    def traced_wait(frame: bytes, voiced: bool, loud: bool, floor: float, guard: bool) -> Any:
        t = endpointer
        t._traced.update(voiced=voiced, loud=loud, bar=floor, room=t._room_dbfs,
                         echo_ref=t._echo_ref_dbfs, ret=t._echo_return_now())
        return wait(frame, voiced, loud, floor, guard)

    def traced_bands(level: float, onset_level: float) -> bool:
        endpointer._traced["by_bands"] = got = in_bands(level, onset_level)
        return got

    def traced_pitch(level: float, onset_level: float) -> bool:
        endpointer._traced["by_pitch"] = got = in_pitch(level, onset_level)
        return got

    endpointer._wait_for_onset, endpointer._loud_in_bands = traced_wait, traced_bands
    endpointer._loud_in_pitch = traced_pitch


def replay(trace: dict[str, Any], frames_out: list[dict[str, Any]] | None = None,
           why: int | None = None) -> dict[str, Any]:
    from kiosk.audio.echo_level import EchoLevelTap
    from kiosk.audio.vad import voice_detector
    from kiosk.config import Config
    from kiosk.core.endpointing import Endpointer

    cfg = Config()
    frame_ms = cfg.audio.frame_ms
    now = [0.0]
    latency = [0.0]
    tap = EchoLevelTap(_Playback(), lambda: now[0], lambda: latency[0], frame_ms,
                       pitch_min_dbfs=cfg.vad.barge_in_min_level_dbfs)
    endpointer = Endpointer(voice_detector(cfg.vad, 16000, frame_ms), cfg.vad, frame_ms)
    endpointer.reference_aligned = True
    if why is not None:
        _explain(endpointer)
    before: list[dict[str, Any]] = []  # (--why: the guarded frames not printed yet, last few)
    seen = 0
    row = trace["row"]
    rel = row["room"]["started_mono"]
    onset = row["room"].get("onset_mono")
    turns = row.get("turns") or []
    later = row["mode"].endswith("-later")
    measured_from = rel + turns[1]["start"] if later and len(turns) > 1 else -math.inf
    events = [(p["mono"], 0, p) for p in trace["played"]] + [(f["mono"], 1, f) for f in trace["frames"]]
    events.sort(key=lambda e: (e[0], e[1]))
    pauses: list[tuple[float, str]] = []
    held = False
    loud_echo = 0  # guarded frames before the onset that counted as loud voice (the echo alone)
    for _, kind, ev in events:
        if kind == 0:
            latency[0] = ev["latency_s"] or 0.0
            now[0] = ev["start"] - latency[0]
            tap.reference.played(ev["pcm"])
            continue
        if "captured" not in ev or "guarded" not in ev:
            continue
        tap.process(ev["pcm"], ev["captured"])
        if tap.realignments != seen:
            seen = tap.realignments
            endpointer.relearn_echo(tap.relined, tap.relined_bands)
        endpointer.guarded = ev["guarded"]
        far = tap.frame_reference_dbfs if tap.lag_settled else tap.reference_dbfs
        endpointer._traced = {}  # (bench/pulse_trace.py's recorders, if patched in)
        endpointer.process(ev["pcm"], far, None, tap.frame_bands, tap.frame_pitch)
        suspect = endpointer.suspected_speech_ms
        if why is not None and "bar" in endpointer._traced:
            t = endpointer._traced
            t["by_level"] = ev["mic_dbfs"] >= t["bar"]
        if ev["guarded"] and endpointer._suspect_frames and (onset is None or ev["at"] < onset):
            loud_echo += 1
        pause = ev["guarded"] and suspect >= cfg.vad.barge_in_pause_ms
        end_s = ev["at"] + frame_ms / 1000
        if frames_out is not None:  # (the frame's record only where it may be printed)
            frame = {"at": ev["at"] - rel, "mic": ev["mic_dbfs"], "far": far, "suspect": suspect,
                     "pitch": None, "pause": pause, **getattr(endpointer, "_traced", {})}
            if pause or suspect:
                frames_out.extend(before)
                before.clear()
                # (tap.frame_pitch read again only here, as before --why: each read may differ)
                frames_out.append({**frame, "pitch": tap.frame_pitch})
            elif why and ev["guarded"]:
                before.append({**frame, "context": True})
                del before[:-why]
        if pause and not held:
            what = ("barge" if onset is not None and end_s >= onset else
                    "warm" if ev["mono"] < measured_from else "self")
            pauses.append((end_s - (onset if what == "barge" else rel), what))
        held = pause
    barge = [t for t, w in pauses if w == "barge"]
    return {
        "mix": row["mix"], "mode": row["mode"], "echo_db": row["echo_db"],
        "self": [round(t, 2) for t, w in pauses if w == "self"],
        "warm": [round(t, 2) for t, w in pauses if w == "warm"],
        "barge_ms": round(barge[0] * 1000) if barge else None,
        "loud_echo_frames": loud_echo,
        "recorded": {"self": row.get("self"), "warm": row.get("warm_self"),
                     "delay_ms": None if row.get("delay_s") is None else round(row["delay_s"] * 1000),
                     "stop_ms": None if row.get("kiosk_stop_s") is None else round(row["kiosk_stop_s"] * 1000)},
    }


def replay_patched(trace: dict[str, Any], patches: dict[tuple[Any, str], Any], state: dict[str, Any]) -> dict[str, Any]:
    """:func:`replay` with methods swapped for this replay only (``patches``: (class, name) ->
    replacement; ``Endpointer.process`` among them or not), and ``state["mono"]`` set to each
    frame's capture time before the endpointer hears it (for the bench's per-frame "why" tools)."""
    from kiosk.core.endpointing import Endpointer

    mono_of = {id(f["pcm"]): f["mono"] for f in trace["frames"] if "pcm" in f}
    inner = patches.get((Endpointer, "process"), Endpointer.process)

    def process(self: Any, frame: bytes, *a: Any, **kw: Any) -> Any:
        state["mono"] = mono_of.get(id(frame), math.nan)
        return inner(self, frame, *a, **kw)

    patches = {**patches, (Endpointer, "process"): process}
    saved = {key: getattr(*key) for key in patches}
    for (owner, name), fn in patches.items():
        setattr(owner, name, fn)
    try:
        return replay(trace)
    finally:
        for (owner, name), fn in saved.items():
            setattr(owner, name, fn)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--frames", action="store_true", help="print each suspect guarded frame")
    p.add_argument("--why", type=int, metavar="N", help="--frames, why each counted, N before")
    p.add_argument("--json", type=Path, help="also write each run's line (and frames), by path")
    args = p.parse_args(argv)
    runs: dict[str, Any] = {}
    for path in args.traces:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        frames: list[dict[str, Any]] | None = [] if args.frames or args.why is not None else None
        out = replay(trace, frames, args.why)
        print(path.name, out, flush=True)
        if args.json:
            runs[str(path)] = {**out, "frames": frames} if frames is not None else out
        for fr in frames or []:
            print("   ", {k: (round(v, 2) if isinstance(v, float) else v) for k, v in fr.items()})
    if args.json:
        args.json.write_text(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

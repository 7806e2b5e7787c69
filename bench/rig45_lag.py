"""rig45: what a room pipe adds, from ``pulse_trace`` traces of the same mixes on several pipes (a bench
look at the rig, not a kiosk figure).

    python bench/rig45_lag.py TRACE_DIR...

Per trace: the pipe, the barge-in delay and the kiosk's own stop time (from the moment the room wrote the
onset), pacat's latency at the onset, and the echo lag the kiosk's SpeexDSP aligner settled on (median of
``settled_ms``, and its reference lead ``lead_s`` over the measured answer's frames: the echo's whole path, speaker sink -> room -> pacat ->
mic, so its shift between pipes on the same mix is the pipe's extra latency on the echo path, and the
visitor's voice takes the same pacat buffer). Then per non-default pipe the paired shifts on the same mix.
"""

from __future__ import annotations

import pickle
import statistics
import sys
from pathlib import Path
from typing import Any

DEFAULT = "20"


def one(path: Path) -> dict[str, Any]:
    d = pickle.load(open(path, "rb"))
    row = d["row"]
    room = row.get("room", {})
    t0 = room.get("started_mono") or 0.0
    answer = room.get("answer_message_s")
    lags = [a["settled_ms"] for a in d.get("aec", ())
            if a.get("settled_ms") is not None and answer is not None and a["mono"] - t0 >= answer]
    leads = [a["lead_s"] * 1000 for a in d.get("aec", ())
             if a.get("lead_s") is not None and answer is not None and a["mono"] - t0 >= answer]
    ms = lambda x: None if x is None else round(x * 1000)  # noqa: E731
    return {"mix": row["mix"], "db": row["echo_db"], "pipe": row.get("room_pipe", DEFAULT),
            "delay": ms(row.get("delay_s")), "stop": ms(row.get("kiosk_stop_s")),
            "pacat_onset": room.get("pacat_latency_at_onset_ms"),
            "lag": statistics.median(lags) if lags else None,
            "lead": statistics.median(leads) if leads else None,
            "under": len(room.get("pacat_underruns") or []), "loaded": bool(row.get("loaded"))}


def main(dirs: list[str]) -> None:
    got = [one(p) for d in dirs for p in sorted(Path(d).glob("*.pkl"))]
    by = {(g["mix"], g["db"], g["pipe"]): g for g in got}
    for g in got:
        print(g)
    for pipe in dict.fromkeys(g["pipe"] for g in got):
        if pipe == DEFAULT:
            continue
        pairs = [(by[(g["mix"], g["db"], DEFAULT)], g) for g in got
                 if g["pipe"] == pipe and (g["mix"], g["db"], DEFAULT) in by]
        for label, keep in (("all", lambda a, b: True),
                            ("both clean", lambda a, b: not (a["under"] or b["under"] or a["loaded"] or b["loaded"]))):
            sel = [(a, b) for a, b in pairs if keep(a, b)]

            def shift(key: str) -> tuple[Any, list[Any]]:
                xs = [b[key] - a[key] for a, b in sel if a[key] is not None and b[key] is not None]
                return (round(statistics.median(xs), 1) if xs else None), sorted(round(x) for x in xs)

            print(f"pipe {pipe} - {DEFAULT} ({label}, n={len(sel)}): echo lag shift {shift('lag')}")
            print(f"    canceller lead shift {shift('lead')}")
            print(f"    pacat-at-onset shift {shift('pacat_onset')}")
            print(f"    kiosk stop shift {shift('stop')}")
            print(f"    barge-in delay shift {shift('delay')}")


if __name__ == "__main__":
    main(sys.argv[1:])

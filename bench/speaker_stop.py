"""How long the speaker keeps sounding after the pipeline pauses the answer (issue 10, helper
dev11), code trees side by side on a real PulseAudio stream. Needs a PulseAudio server
(``bash .ci/pulseaudio.sh``).

    python bench/speaker_stop.py --peer main=/tmp/main-tree --out bench/results/X.json

The speaker is opened as the daemon opens it (``PyAudioSink`` through libpulse, its default
20 ms blocks) on a private null sink that cannot rewind (``norewinds=1``, as the benches'
sinks: what the sink rendered ahead is played out, as on a device that cannot take audio
back), and plays a 1 kHz tone at -20 dBFS. Every ~1 s the probe pauses it the way a
suspected barge-in does (``PlaybackBuffer.hold(True)``; the sink then drops what the server
holds, ``pa_stream_flush``) and resumes 0.4 s later. Per pause:

render_stop   the pause call -> the tone's last sample reaching a reference client that polls
              the sink's monitor every 1 ms (the monitor gets audio as the sink renders it)
sink_ahead    what the sink had rendered ahead of its clock just before the pause
              (``pa_timing_info.sink_usec``, updated then): it still plays on a sink that
              cannot rewind
silent_after  render_stop + sink_ahead: when the last sample already queued leaves the
              speaker (the model's speaker side, ``lobby_scoring``)
queued        the stream's whole latency at the pause (what the server held plus the sink):
              what a speaker that cannot drop its queue (PortAudio) still plays

Write-callback under-runs (``xruns``) over the run count against a smaller playback buffer.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROBE = """
import ctypes, json, random, sys, time
import numpy as np
import kiosk
import kiosk.audio.pulse_stream as ps
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pulse_host import open_pulse
from kiosk.audio.pyaudio_io import PyAudioSink
pauses, seconds = int(sys.argv[1]), float(sys.argv[2])
exec(sys.argv[3])  # the variant's settings

class TimingInfo(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long),
                ("synchronized_clocks", ctypes.c_int), ("sink_usec", ctypes.c_uint64),
                ("source_usec", ctypes.c_uint64), ("transport_usec", ctypes.c_uint64),
                ("playing", ctypes.c_int), ("write_index_corrupt", ctypes.c_int),
                ("write_index", ctypes.c_int64), ("read_index_corrupt", ctypes.c_int),
                ("read_index", ctypes.c_int64), ("configured_sink_usec", ctypes.c_uint64),
                ("configured_source_usec", ctypes.c_uint64), ("since_underrun", ctypes.c_int64)]

buf = PlaybackBuffer(24000)
t = np.arange(24000 * 2) / 24000
tone = (0.1 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
sink = PyAudioSink("", buf, source_rate_hz=24000, pyaudio_factory=open_pulse)
rows, rng = [], random.Random(5)
with sink:
    stream = sink._stream
    conn, lib = stream._connection, stream._connection.lib
    lib.pa_stream_update_timing_info.restype = ctypes.c_void_p
    lib.pa_stream_update_timing_info.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.pa_stream_get_timing_info.restype = ctypes.POINTER(TimingInfo)
    lib.pa_stream_get_timing_info.argtypes = [ctypes.c_void_p]
    queued = []
    drop = getattr(stream, "drop_queued", None)
    if drop is not None:
        def noted(then):
            def then2(q):
                queued.append(q)
                then(q)
            drop(then2)
        stream.drop_queued = noted
    def sink_ahead_s():
        with conn.locked():
            op = lib.pa_stream_update_timing_info(stream._stream, None, None)
        if op:
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                with conn.locked():
                    if lib.pa_operation_get_state(op) != 0:
                        lib.pa_operation_unref(op)
                        break
                time.sleep(0.0005)
        with conn.locked():
            info = lib.pa_stream_get_timing_info(stream._stream)
            if not info:
                return None, None
            return info.contents.sink_usec / 1e6, info.contents.configured_sink_usec / 1e6
    feed_until = time.monotonic() + seconds
    cpu0, t0, calls0 = time.process_time(), time.monotonic(), sink.callbacks
    while len(rows) < pauses:
        while buf.pending_ms < 1500:
            buf.write(tone, "answer")
        time.sleep(0.6 + rng.random() * 0.4)
        ahead, configured = sink_ahead_s()
        n = len(queued)
        held_s = time.monotonic()
        buf.hold(True)
        rows.append({"t_hold": held_s, "sink_ahead_s": ahead, "configured_sink_s": configured,
                     "queued_s": queued[n] if len(queued) > n else None})
        time.sleep(0.4)
        buf.hold(False)
    busy_s = time.monotonic() - t0
    print(json.dumps({"rows": rows, "xruns": sink.xruns, "seconds": busy_s,
                      "callbacks_per_s": (sink.callbacks - calls0) / busy_s,
                      "cpu_ms_per_s": (time.process_time() - cpu0) * 1000 / busy_s,
                      "playback_blocks": ps.PLAYBACK_BLOCKS, "kiosk": kiosk.__file__}))
"""


def stops_ms(ref: Any, rows: list[dict[str, Any]], quiet: int = 300) -> list[float | None]:
    """Per pause: the tone's last sample's arrival at the reference less the pause call (ms)."""
    import numpy as np

    pcm = np.abs(np.frombuffer(bytes(ref.pcm), dtype="<i2").astype(np.int32))
    loud = np.nonzero(pcm > quiet)[0]
    out: list[float | None] = []
    for row in rows:
        # Samples that reached the reference from 100 ms before the pause to 250 ms after it.
        i0 = ref.counts[max(0, bisect.bisect_left(ref.times, row["t_hold"] - 0.1) - 1)]
        j = bisect.bisect_left(ref.times, row["t_hold"] + 0.25)
        i1 = ref.counts[min(len(ref.counts) - 1, j)]
        inside = loud[(loud >= i0) & (loud < i1)]
        if inside.size == 0 or inside[-1] >= i1 - 1600:
            out.append(None)  # no silence after it within the window
            continue
        # The first silent gap of >= 50 ms after the pause: the tone's end is the sample before.
        gaps = np.nonzero(np.diff(inside) > 800)[0]
        last = int(inside[gaps[0]]) if gaps.size else int(inside[-1])
        k = bisect.bisect_left(ref.counts, last + 1)
        out.append(round((ref.times[k] - row["t_hold"]) * 1000, 2) if k < len(ref.times) else None)
    return out


def summary(values: list[float]) -> dict[str, Any]:
    import numpy as np

    v = np.array(values, dtype=float)
    if v.size == 0:
        return {"n": 0}
    return {
        "n": int(v.size),
        "mean": round(float(v.mean()), 2),
        "p50": round(float(np.percentile(v, 50)), 2),
        "p95": round(float(np.percentile(v, 95)), 2),
        "max": round(float(v.max()), 2),
    }


def run_tree(name: str, tree: Path, variant: str, sinks: Any, pauses: int) -> dict[str, Any]:
    import rig
    from capture_block import Reference

    ref = Reference(f"{sinks.speaker}.monitor")
    env = rig.kiosk_env(**sinks.env())
    env["PYTHONPATH"] = str(tree)
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(pauses), "0", variant],
            env=env,
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=pauses * 3 + 60,
        )
    finally:
        ref.close()
    if done.returncode != 0:
        return {"error": done.stderr[-600:]}
    got = json.loads(done.stdout.strip().splitlines()[-1])
    rows = got.pop("rows")
    stops = stops_ms(ref, rows)
    ahead = [r["sink_ahead_s"] * 1000 for r in rows if r["sink_ahead_s"] is not None]
    silent = [
        s + r["sink_ahead_s"] * 1000
        for s, r in zip(stops, rows, strict=True)
        if s is not None and r["sink_ahead_s"] is not None
    ]
    out = {
        **got,
        "variant": variant,
        "pauses": len(rows),
        "render_stop_ms": summary([s for s in stops if s is not None]),
        "render_stop_missing": sum(s is None for s in stops),
        "sink_ahead_ms": summary(ahead),
        "configured_sink_ms": summary([r["configured_sink_s"] * 1000 for r in rows]),
        "silent_after_ms": summary(silent),
        "queued_at_pause_ms": summary([r["queued_s"] * 1000 for r in rows if r["queued_s"]]),
        "per_pause": [
            {"render_stop_ms": s, "sink_ahead_ms": round(r["sink_ahead_s"] * 1000, 2)}
            for s, r in zip(stops, rows, strict=True)
        ],
    }
    print(f"speaker {name}: {json.dumps({k: v for k, v in out.items() if k != 'per_pause'})}",
          file=sys.stderr)  # fmt: skip
    return out


def main() -> int:
    sys.path.insert(0, str(HERE))
    import run as bench_run
    from rig_pulse import NullSinks

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peer", action="append", default=[], help="NAME=TREE (a checkout's root)")
    p.add_argument(
        "--variant", action="append", default=[], help="NAME=STATEMENT run in this tree's probe"
    )
    p.add_argument("--pauses", type=int, default=40)
    p.add_argument("--rounds", type=int, default=1, help="every tree in turn, this many times")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    runs: dict[str, tuple[Path, str]] = {
        n: (Path(t).resolve(), "pass") for n, t in (s.split("=", 1) for s in args.peer)
    }
    runs["branch"] = (ROOT, "pass")
    for spec in args.variant:
        name, stmt = spec.split("=", 1)
        runs[name] = (ROOT, stmt)
    out = args.out.resolve()
    os.chdir(tempfile.gettempdir())
    problem = NullSinks.available()
    if problem is not None:
        print(f"speaker_stop: {problem}", file=sys.stderr)
        return 1
    started = time.monotonic()
    record: dict[str, Any] = {
        **bench_run.trees_record("speaker_stop", {n: t for n, (t, _) in runs.items()}),
        "runs": {n: {"tree": str(t), "variant": v} for n, (t, v) in runs.items()},
        "sink": "private module-null-sink norewinds=1 (rig.NullSinks)",
        "tone": "1 kHz, -20 dBFS, 24 kHz mono answer audio",
    }
    sinks = NullSinks(f"spk{os.getpid()}").open()
    try:
        rounds = [
            {name: run_tree(name, tree, v, sinks, args.pauses) for name, (tree, v) in runs.items()}
            for _ in range(args.rounds)
        ]
    finally:
        sinks.close()
    record["rounds"] = rounds
    return bench_run.finish_record(record, out, started)


if __name__ == "__main__":
    sys.exit(main())

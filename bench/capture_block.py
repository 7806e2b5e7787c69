"""The microphone's device block, two code trees side by side (issue 10, helper blk10): how long a
captured frame waits for its block while a turn or its answer is in progress, and what the idle
daemon costs in a quiet room. Needs a PulseAudio server (``bash .ci/pulseaudio.sh``).

    python bench/capture_block.py --peer main=/tmp/main-tree --out bench/results/X.json

Every tree is a checkout's root (``git archive``); this tree is ``branch``. One private null
sink is the microphone, fed 16 kHz pink noise at -54 dBFS paced in real time (pacat), another
the speaker.

capture  per tree, in turn: the microphone opened as the daemon opens it (``PyAudioSource``,
         ``daemon_devices.MIC_BLOCK_MS``, libpulse) and told what to do by the daemon's own
         ``DaemonDevices._mic_follow``, with a pipeline that is busy (an answer playing) and
         then quiet (an idle room). The monitor renders in real time, so frame ``k`` ends
         ``(k + 1) * 20 ms`` after the first; a frame's hold is its arrival less that end,
         less the least any frame of the run waited (the server's own latency drops out: it is
         the same with any block). A barge-in's deciding frame is any frame: the mean is its
         expected wait for its block.
idle     the real ``kiosk run`` of every tree (default config apart from endpoint and paths:
         ``bench/rig.kiosk_config``), all at once on the same microphone, one window after a
         warm-up: CPU % of one core and wake-ups/s of each process tree (``rig.TreeMeter``),
         plus ``branch fixed 20 ms`` (this tree with ``MIC_BLOCK_MS = 20``: the alternative of
         small blocks always).
lag      the capture path in frame time for devices the resampler serves (``lobby_budget.
         capture_lag_ms``: 48 / 44.1 kHz, soxr LQ): 60 vs 20 ms blocks.
"""

from __future__ import annotations

import argparse
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
FRAME_S = 0.02

PROBE = """
import json, sys, threading, time
from types import SimpleNamespace
import kiosk
from kiosk.audio.pulse_host import open_pulse
from kiosk.audio.pyaudio_io import PyAudioSource
from kiosk import daemon_devices as dd
seconds = float(sys.argv[1])
rows, audio, lock = [], [], threading.Lock()
def got(frames):
    with lock:
        rows.append((time.monotonic(), len(frames)))
        audio.extend(frames)
def pipeline(busy):
    level = SimpleNamespace(onset_level_dbfs=-40.0)
    return SimpleNamespace(busy=busy, quiet=not busy, endpointer=level)
source = PyAudioSource("", rate_hz=16000, frame_ms=20, block_ms=dd.MIC_BLOCK_MS, on_frames=got,
                       pyaudio_factory=open_pulse)
devices = dd.DaemonDevices()
devices._source = source
marks, latency, cpu = {}, {"busy": [], "quiet": []}, {}
with source:
    time.sleep(1.5)
    for phase in ("busy", "quiet"):
        devices._mic_follow(pipeline(phase == "busy"))
        time.sleep(0.6)  # the next block and the batch under way
        with lock:
            start = len(rows)
        cpu0 = time.process_time()
        end_s = time.monotonic() + seconds
        while time.monotonic() < end_s:
            time.sleep(0.25)
            latency[phase].append(source.input_latency_ms)
        cpu[phase] = (time.process_time() - cpu0) * 1000 / seconds
        with lock:
            marks[phase] = (start, len(rows))
with open(sys.argv[2], "wb") as f:
    f.write(b"".join(audio))
print(json.dumps({"rows": rows, "marks": marks, "latency_ms": latency, "cpu": cpu,
                  "kiosk": kiosk.__file__,
                  "mic_block_ms": dd.MIC_BLOCK_MS,
                  "busy_mic_block_ms": getattr(dd, "BUSY_MIC_BLOCK_MS", None)}))
"""

# This tree with small blocks always: the alternative to switching.
FIXED_20 = (
    "import sys; import kiosk.daemon_devices as d; d.MIC_BLOCK_MS = 20; "
    "from kiosk.cli import main; sys.exit(main(sys.argv[1:]))"
)


class Reference:
    """What a client reading as soon as the server sends sees: a record stream on the same
    monitor, polled every 1 ms on its own connection (this process, its own thread), with
    each chunk's arrival time. Its audio lines the probe's frames up with it (the same
    noise), so a frame's wait is its hand-over less the moment its last sample reached a
    client: the reader's pace and the block's assembly, without the server's own latency."""

    def __init__(self, source: str) -> None:
        import ctypes
        import threading

        from kiosk.audio import libpulse as lp

        self._lp, self._ctypes = lp, ctypes
        self.conn = lp.PulseConnection(threaded=False)
        lib = self.conn.lib
        spec = lp.SampleSpec(lp.SAMPLE_S16LE, 16000, 1)
        flags = lp.STREAM_ADJUST_LATENCY | lp.STREAM_AUTO_TIMING_UPDATE
        with self.conn.locked():
            self.stream = lib.pa_stream_new(self.conn.context, b"ref", ctypes.byref(spec), None)
            attr = lp.BufferAttr(lp.NO_VALUE, lp.NO_VALUE, lp.NO_VALUE, lp.NO_VALUE, 160)
            lib.pa_stream_connect_record(self.stream, source.encode(), attr, flags)
        ready = lambda: lib.pa_stream_get_state(self.stream) != lp.STREAM_CREATING  # noqa: E731
        self.conn.wait(ready, 5.0, "the reference stream")
        self.times: list[float] = []
        self.counts: list[int] = []  # samples received up to and with that chunk
        self.pcm = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ctypes, lib = self._ctypes, self.conn.lib
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        while not self._stop.is_set():
            time.sleep(0.001)
            with self.conn.locked():
                self.conn.pump()
                got = 0
                while lib.pa_stream_peek(self.stream, ctypes.byref(data), ctypes.byref(size)) == 0:
                    if not size.value:
                        break
                    n = size.value
                    self.pcm += ctypes.string_at(data.value, n) if data.value else bytes(n)
                    got += size.value
                    lib.pa_stream_drop(self.stream)
            if got:
                self.times.append(time.monotonic())
                self.counts.append(len(self.pcm) // 2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with self.conn.locked() as lib:
            lib.pa_stream_disconnect(self.stream)
            lib.pa_stream_unref(self.stream)
        self.conn.close()


def line_up(ref_pcm: bytes, pcm: bytes, at: int = 16000, n: int = 32000) -> tuple[int, float]:
    """Sample offset d with pcm[i] ~ ref_pcm[i + d] (an excerpt of ``n`` samples from ``at``),
    and the normalised correlation there."""
    import numpy as np

    ref = np.frombuffer(ref_pcm, dtype="<i2").astype(np.float64)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)[at : at + n]
    size = 1 << int(np.ceil(np.log2(ref.size + x.size)))
    spectrum = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(x, size))
    corr = np.fft.irfft(spectrum, size)[: ref.size - x.size + 1]
    lag = int(np.argmax(corr))
    seg = ref[lag : lag + x.size]
    score = float(corr[lag] / (np.linalg.norm(seg) * np.linalg.norm(x) + 1e-9))
    return lag - at, score


def waits_ms(
    rows: list[list[float]], start: int, end: int, ref: Reference, offset: int
) -> dict[str, Any]:
    """Per frame of hand-overs ``start:end``: hand-over - when its last sample reached the
    reference client (ms)."""
    import bisect

    import numpy as np

    k = sum(int(n) for _, n in rows[:start])
    waits = []
    for arrived, n in rows[start:end]:
        for _ in range(int(n)):
            k += 1
            last = k * int(16000 * FRAME_S) + offset  # the frame's end, in reference samples
            i = bisect.bisect_left(ref.counts, last)
            if 0 < i < len(ref.times):
                waits.append((arrived - ref.times[i]) * 1000)
    w = np.array(waits)
    span_s = rows[end - 1][0] - rows[start][0]
    return {
        "frames": int(w.size),
        "wait_mean_ms": round(float(w.mean()), 1),
        "wait_p50_ms": round(float(np.percentile(w, 50)), 1),
        "wait_p95_ms": round(float(np.percentile(w, 95)), 1),
        "wait_max_ms": round(float(w.max()), 1),
        "wait_min_ms": round(float(w.min()), 1),
        "handovers_per_s": round((end - start - 1) / span_s, 1) if span_s > 0 else None,
        "frames_per_handover": sorted({int(n) for _, n in rows[start:end]}),
    }


def tree_env(tree: Path, **extra: str) -> dict[str, str]:
    import rig

    env = rig.kiosk_env(**extra)
    env["PYTHONPATH"] = str(tree)
    return env


def capture(trees: dict[str, Path], sinks: Any, seconds: float, tmp: Path) -> dict[str, Any]:
    out = {}
    for name, tree in trees.items():
        ref = Reference(sinks.env()["PULSE_SOURCE"])
        frames_file = tmp / "frames.raw"
        try:
            done = subprocess.run(
                [sys.executable, "-c", PROBE, str(seconds), str(frames_file)],
                env=tree_env(tree, **sinks.env()),
                cwd=tree,  # -c puts the working directory first on sys.path
                capture_output=True,
                text=True,
                timeout=seconds * 2 + 60,
            )
        finally:
            ref.close()
        if done.returncode != 0:
            out[name] = {"error": done.stderr[-400:]}
            continue
        got = json.loads(done.stdout.strip().splitlines()[-1])
        rows, marks = got["rows"], got["marks"]
        offset, score = line_up(bytes(ref.pcm), frames_file.read_bytes())
        out[name] = {
            "kiosk_module": got["kiosk"],
            "mic_block_ms": got["mic_block_ms"],
            "busy_mic_block_ms": got["busy_mic_block_ms"],
            "lined_up": {"offset_samples": offset, "correlation": round(score, 3)},
            **{
                phase: {
                    **waits_ms(rows, *marks[phase], ref, offset),
                    "probe_cpu_ms_per_s": round(got["cpu"][phase], 2),
                    "input_latency_ms_mean": round(
                        sum(got["latency_ms"][phase]) / max(1, len(got["latency_ms"][phase])), 1
                    ),
                }
                for phase in ("busy", "quiet")
            },
        }
        print(f"capture {name}: {json.dumps(out[name])}", file=sys.stderr)
    return out


def idle(
    trees: dict[str, Path], sinks: Any, warmup_s: float, window_s: float, fixed: bool = True,
    runs: list[tuple[str, Path, list[str], str]] | None = None,
) -> dict[str, Any]:
    """The idle ``kiosk run`` of every tree (or of ``runs``: name, tree, interpreter arguments
    before ``run`` (``[]``: ``-m kiosk.cli``), extra config TOML), all at once."""
    import bench_footprint as bf
    import rig

    subjects: list[Any] = []
    figures: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with rig.temp_dir() as tmp_name, rig.fake_server() as url:
        tmp = Path(tmp_name)
        index = rig.demo_index(tmp)
        if runs is None:
            runs = [(name, tree, [], "") for name, tree in trees.items()]
            if fixed:
                runs.append(("branch fixed 20 ms", trees["branch"], ["-c", FIXED_20], ""))
        try:
            for name, tree, head, extra in runs:
                notify = rig.NotifySocket(tmp)
                config = rig.kiosk_config(tmp, url, index, extra)
                run_args = ["run", "--config", str(config)]
                cmd = [sys.executable, *(head or ["-m", "kiosk.cli"]), *run_args]
                env = tree_env(tree, NOTIFY_SOCKET=notify.path, **sinks.env())
                subjects.append(bf.Subject(name, cmd, env, notify))
            t_start = time.monotonic()
            for s in subjects:
                got = s.notify.wait_for("READY=1", max(0.1, 60 - (time.monotonic() - t_start)))
                s.ready_s = None if got is None else got - t_start
            t0 = time.monotonic() + warmup_s
            time.sleep(warmup_s + window_s + 1.5)
            t1 = time.monotonic() - 1.0
            for s in subjects:
                try:
                    w = s.meter.window(t0, t1)
                    mm = bf.memory_map(s.proc.pid)
                    figures[s.name] = {
                        "cpu_pct": round(w["cpu_pct"], 3),
                        "wakeups_per_s": round(w["wakeups_per_s"], 1),
                        "threads": w["threads"],
                        "main_rss_mb": w["main_rss_mb"],
                        "silero_loaded": mm["silero_loaded"],
                        "ready_s": s.ready_s,
                    }
                except (RuntimeError, OSError) as exc:
                    errors[s.name] = str(exc)
        finally:
            for s in subjects:
                tail = s.close()
                if s.name in errors or s.ready_s is None:
                    errors[s.name] = f"{errors.get(s.name, 'no READY=1')}; stderr: {tail}"
    print(f"idle: {json.dumps(figures)}", file=sys.stderr)
    return {"figures": figures, "errors": errors, "warmup_s": warmup_s, "window_s": window_s}


def lag() -> dict[str, Any]:
    import lobby_budget as lb

    return {
        f"{rate}Hz_{block}ms": lb.capture_lag_ms(rate, block, quality="LQ")
        for rate in (48000, 44100)
        for block in (60, 20)
    }


def main() -> int:
    sys.path.insert(0, str(HERE))
    import rig
    import run as bench_run
    from rig_pulse import NullSinks

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peer", action="append", default=[], help="NAME=TREE (a checkout's root)")
    p.add_argument("--capture-s", type=float, default=20.0)
    p.add_argument("--capture-runs", type=int, default=1, help="capture runs, trees in turn")
    p.add_argument("--warmup-s", type=float, default=10.0)
    p.add_argument("--window-s", type=float, default=120.0)
    p.add_argument("--skip-idle", action="store_true")
    p.add_argument("--branch-first", action="store_true", help="start this tree first")
    p.add_argument("--skip-fixed", action="store_true", help="no 'branch fixed 20 ms' idle run")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    trees = {n: Path(t).resolve() for n, t in (s.split("=", 1) for s in args.peer)}
    trees["branch"] = ROOT
    if args.branch_first:  # the start order, which an idle window might favour
        trees = {"branch": ROOT, **{n: t for n, t in trees.items() if n != "branch"}}
    out = args.out.resolve()
    # `python -m` and `-c` put the working directory first on sys.path: out of every tree.
    os.chdir(tempfile.gettempdir())
    problem = NullSinks.available()
    if problem is not None:
        print(f"capture_block: {problem}", file=sys.stderr)
        return 1
    started = time.monotonic()
    record: dict[str, Any] = {
        **bench_run.trees_record("capture_block", trees),
        "trees": {n: str(t) for n, t in trees.items()},  # in start order
        "audio": "16 kHz pink noise, -54 dBFS RMS, paced 20 ms, into a private null sink",
    }
    sinks = NullSinks(f"blk{os.getpid()}").open()
    pacat = subprocess.Popen(sinks.play_command(), stdin=subprocess.PIPE)
    feeder = rig.PacedWriter(pacat.stdin, rig.pink_noise(600)).start()
    try:
        with rig.temp_dir() as tmp:
            runs = [
                capture(trees, sinks, args.capture_s, Path(tmp)) for _ in range(args.capture_runs)
            ]
        record["capture"] = runs[0]
        if len(runs) > 1:
            # The reader's phase against the frames is luck per stream: compare over runs.
            record["capture_runs"] = runs
            record["capture_summary"] = {
                name: {
                    phase: {
                        "runs": len(runs),
                        "wait_mean_ms_per_run": [r[name][phase]["wait_mean_ms"] for r in runs],
                        "wait_mean_ms": round(
                            sum(r[name][phase]["wait_mean_ms"] for r in runs) / len(runs), 1
                        ),
                        "wait_p95_ms_max": max(r[name][phase]["wait_p95_ms"] for r in runs),
                        "probe_cpu_ms_per_s_mean": round(
                            sum(r[name][phase]["probe_cpu_ms_per_s"] for r in runs) / len(runs), 2
                        ),
                    }
                    for phase in ("busy", "quiet")
                }
                for name in trees
                if all("busy" in r[name] for r in runs)
            }
        if not args.skip_idle:
            record["idle"] = idle(
                trees, sinks, args.warmup_s, args.window_s, fixed=not args.skip_fixed
            )
    finally:
        feeder.stop()
        rig.stop(pacat)
        sinks.close()
    record["lag"] = lag()
    return bench_run.finish_record(record, out, started)


if __name__ == "__main__":
    sys.exit(main())

"""What PulseAudio's echo canceller (module-echo-cancel, webrtc) adds to the capture and the
playback path, measured with clicks on a real server (helper pulse27; ``bash .ci/pulseaudio.sh``).

    python bench/pulse_aec_latency.py --out bench/results/X.json

Capture: a click is written into a private null sink "mic"; two recordings run at once, one
of "mic.monitor" (what a kiosk without the canceller records) and one of the canceller's
source (source_master = mic.monitor). Each read of each recording is stamped with
``time.monotonic``; a click's arrival is the stamp of the read that brought it less the
samples after it in that read. Added = canceller source - plain monitor, per click.

Playback: a click is written with the same client settings (``pacat``, 20 ms) either into the
null sink "speaker" itself or into the canceller's sink (sink_master = speaker); a recording of
"speaker.monitor" stamps its arrival; added = (through the canceller) - (direct), medians.
The module is loaded with install.sh's arguments and with analog_gain_control=0 (the gain
control does not move timing, only levels; both are measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pulse_modules import pactl as _pactl  # noqa: E402
from rig_pulse import NullSinks  # noqa: E402

RATE = 48000
CLICK = np.concatenate([np.full(48, 20000, "<i2"), np.zeros(RATE // 2 - 48, "<i2")])


class Recorder:
    """``parec`` of ``source`` at 48 kHz mono, each read stamped; finds clicks."""

    def __init__(self, source: str) -> None:
        self.proc = subprocess.Popen(
            ["parec", f"--device={source}", "--format=s16le", f"--rate={RATE}", "--channels=1",
             "--latency-msec=5", "--raw"], stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.chunks: list[tuple[float, bytes]] = []

    def poll(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            self.chunks.append((time.monotonic(), data))

    def arrivals(self) -> list[float]:
        """Monotonic time each click (rising edge over a quarter of the loudest) came."""
        out, last = [], -RATE
        buf = b"".join(c for _, c in self.chunks)
        x = np.abs(np.frombuffer(buf[: len(buf) // 2 * 2], "<i2").astype(np.int32))
        ends, total = [], 0
        for t, c in self.chunks:
            total += len(c) // 2
            ends.append((total, t))
        level = max(1, int(x.max()) // 4) if x.size else 1
        for k in np.nonzero(x > level)[0]:
            if k - last < RATE // 4:
                continue
            last = int(k)
            end, t = next((e, t) for e, t in ends if e > k)
            out.append(t - (end - k) / RATE)
        return out

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def _play(sink: str, clicks: int, recorders: list[Recorder]) -> None:
    p = subprocess.Popen(["pacat", "--playback", f"--device={sink}", "--format=s16le",
                          f"--rate={RATE}", "--channels=1", "--latency-msec=20", "--raw"],
                         stdin=subprocess.PIPE)
    assert p.stdin is not None
    data = np.tile(CLICK, clicks).tobytes()
    step = RATE // 100 * 2
    t0 = time.monotonic()
    for i in range(0, len(data), step):  # paced at real time, 10 ms at a time
        p.stdin.write(data[i : i + step])
        p.stdin.flush()
        while time.monotonic() < t0 + (i + step) / 2 / RATE:
            for r in recorders:
                r.poll()
            time.sleep(0.001)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        for r in recorders:
            r.poll()
        time.sleep(0.001)
    p.stdin.close()
    p.wait(timeout=5)


def measure(aec_args: str, clicks: int) -> dict[str, object]:
    tag = f"lat{os.getpid()}"
    mic, spk = f"{tag}_mic", f"{tag}_spk"
    ids = [_pactl("load-module", "module-null-sink", f"sink_name={n}", "norewinds=1", f"rate={RATE}")
           for n in (mic, spk)]
    args = ["module-echo-cancel", "aec_method=webrtc", f"source_master={mic}.monitor",
            f"sink_master={spk}", f"source_name={tag}_src", f"sink_name={tag}_sink"]
    if aec_args:
        args.append(f"aec_args={aec_args}")
    ids.append(_pactl("load-module", *args))
    try:
        raw, ec = Recorder(f"{mic}.monitor"), Recorder(f"{tag}_src")
        time.sleep(1.0)
        _play(mic, clicks, [raw, ec])
        a, b = raw.arrivals(), ec.arrivals()
        raw.close(), ec.close()
        capture = [y - x for x, y in zip(a, b)] if len(a) == len(b) else []
        playback = {}
        for name, sink in (("direct", spk), ("through_canceller", f"{tag}_sink")):
            mon = Recorder(f"{spk}.monitor")
            time.sleep(0.5)
            t_start = time.monotonic()
            _play(sink, clicks, [mon])
            arr = mon.arrivals()
            mon.close()
            playback[name] = [t - t_start - i * 0.5 for i, t in enumerate(arr)]
        return {
            "aec_args": aec_args, "clicks": clicks,
            "capture_clicks_raw_ec": [len(a), len(b)],
            "capture_added_ms": [round(1000 * d, 1) for d in capture],
            "capture_added_median_ms": round(1000 * statistics.median(capture), 1) if capture else None,
            "playback_ms": {k: [round(1000 * d, 1) for d in v] for k, v in playback.items()},
            "playback_added_median_ms": round(1000 * (statistics.median(playback["through_canceller"])
                                                      - statistics.median(playback["direct"])), 1)
            if playback["direct"] and playback["through_canceller"] else None,
        }
    finally:
        for m in reversed(ids):
            subprocess.run(["pactl", "unload-module", m], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clicks", type=int, default=20)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    why = NullSinks.available()
    if why:
        print(f"pulse_aec_latency: {why}", file=sys.stderr)
        return 2
    import fcntl

    import run as bench_run

    with open(NullSinks.LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [measure(a, args.clicks) for a in ("", "analog_gain_control=0")]
    out = {"rows": rows, "machine": bench_run.machine(), "commit": bench_run.git_commit(),
           "load": os.getloadavg(), "pulseaudio": _pactl("info").split("Server Version: ")[1].split("\n")[0]}
    print(json.dumps(rows, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

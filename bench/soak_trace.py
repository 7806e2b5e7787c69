"""Where a real-time kiosk's memory grows: ``kiosk run`` under tracemalloc, snapshots diffed.

Not a bench (no ``bench_`` prefix, no results file): the tool that found the soak's growth
(gpiozero's mock pins keeping every LED state, ``kiosk/hardware/mock_pins.py``). It runs the
same process as ``bench_soak_live`` (same config, fake server, lobby WAV; questions closer
together so turns come faster), with tracemalloc on and a thread that snapshots every
``--every`` seconds, then prints the allocation sites that grew between the snapshot after
``--settle`` seconds and the last one, with how many turns ended in between.

    cd bench && ../.venv/bin/python soak_trace.py --minutes 10 --top 15

tracemalloc itself costs RSS (it keeps every traceback it has seen), so read the traced
bytes here and the RSS slope from ``run.py soak_live``, never RSS from this run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import bench_soak_live
import rig

# Runs inside the kiosk process: snapshots on a daemon thread, then the real CLI.
_BOOT = """
import os, sys, threading, time, tracemalloc, runpy
out, every = sys.argv.pop(1), float(sys.argv.pop(1))
def snap():
    i = 0
    while True:
        time.sleep(every)
        i += 1
        tracemalloc.take_snapshot().dump(os.path.join(out, f"snap{i:03d}.pkl"))
threading.Thread(target=snap, daemon=True).start()
sys.argv[0] = "kiosk"
runpy.run_module("kiosk.cli", run_name="__main__")
"""
_SKIP = [
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=60.0, help="seconds between snapshots")
    ap.add_argument("--settle", type=float, default=180.0, help="compare from this snapshot on")
    ap.add_argument("--gap", type=float, nargs=2, default=(6.0, 40.0), help="s between questions")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()
    seconds = args.minutes * 60
    audio, _ = bench_soak_live.lobby_with_questions(seconds + 30, gaps=tuple(args.gap))
    with rig.temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        wav = rig.write_wav(tmp / "lobby.wav", audio)
        index = rig.demo_index(tmp)
        with rig.fake_server() as url:
            cfg = rig.kiosk_config(tmp, url, index)
            cmd = [sys.executable, f"-Xtracemalloc={args.frames}", "-c", _BOOT, str(tmp)]
            cmd += [str(args.every), "run", "--config", str(cfg), "--input-wav", str(wav)]
            cmd += ["--output-wav", str(tmp / "speaker.wav")]
            log = tmp / "kiosk.log"
            with log.open("wb") as f:
                proc = subprocess.Popen(cmd, env=rig.kiosk_env(), stdout=f, stderr=f)
                t0 = time.monotonic()
                try:
                    while time.monotonic() - t0 < seconds and proc.poll() is None:
                        time.sleep(1.0)
                finally:
                    rig.stop(proc)
            report(tmp, log.read_text(errors="replace"), args)


def report(tmp: Path, text: str, args: argparse.Namespace) -> None:
    snaps = sorted(tmp.glob("snap*.pkl"))
    first = int(args.settle // args.every)
    if len(snaps) < first + 2:
        raise SystemExit(f"only {len(snaps)} snapshots: run longer than --settle + 2 x --every")
    a = tracemalloc.Snapshot.load(str(snaps[first - 1])).filter_traces(_SKIP)
    b = tracemalloc.Snapshot.load(str(snaps[-1])).filter_traces(_SKIP)
    stats = b.compare_to(a, "lineno")
    ends = re.findall(r"turn \d+ \w+ \(", text)
    print(
        f"{len(ends)} turns in {len(snaps) * args.every:.0f} s; traced Python memory from "
        f"{first * args.every:.0f} s to the end: {sum(s.size_diff for s in stats):+d} bytes"
    )
    for s in stats[: args.top]:
        print(f"{s.size_diff:+9d} B {s.count_diff:+6d} blocks  {s.traceback}")


if __name__ == "__main__":
    main()

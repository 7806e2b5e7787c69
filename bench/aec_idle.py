"""What an echo canceller costs the idle daemon, A/A style: real ``kiosk run`` processes of this
tree side by side, two per ``audio.echo_cancel`` setting, all at once on the same microphone
(a private PulseAudio null sink fed 16 kHz pink noise at -54 dBFS, paced: a quiet room, nobody
speaks), one window after a warm-up: CPU % of one core, wake-ups/s, threads and RSS of each
process tree (``capture_block.idle``, ``rig.TreeMeter``). Two processes of the same code differ
by 6-16 % in CPU (capture-block-dev11's A/A): a difference between settings counts only beyond.

    python bench/aec_idle.py --cancel none --cancel webrtc --out bench/results/X.json

Needs a PulseAudio server (``bash .ci/pulseaudio.sh``). Start order alternates (A, B, A, B).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def main() -> int:
    import rig
    import run as bench_run
    from capture_block import idle
    from rig_pulse import NullSinks

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cancel", action="append", required=True, help="an audio.echo_cancel value")
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--warmup-s", type=float, default=10.0)
    p.add_argument("--window-s", type=float, default=120.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    out = args.out.resolve()
    os.chdir(tempfile.gettempdir())  # `python -m` puts the working directory first on sys.path
    problem = NullSinks.available()
    if problem is not None:
        print(f"aec_idle: {problem}", file=sys.stderr)
        return 1
    started = time.monotonic()
    runs = [
        (f"{cancel} {'AB'[copy]}", ROOT, [], f'[audio]\necho_cancel = "{cancel}"\n')
        for copy in range(args.copies)
        for cancel in args.cancel
    ]
    record: dict[str, Any] = {
        **bench_run.trees_record("aec_idle", {"branch": ROOT}),
        "runs": [name for name, *_ in runs],  # in start order
        "audio": "16 kHz pink noise, -54 dBFS RMS, paced 20 ms, into a private null sink",
        "load_avg_1m_at_start": os.getloadavg()[0],
    }
    sinks = NullSinks(f"aecidle{os.getpid()}").open()
    pacat = subprocess.Popen(sinks.play_command(), stdin=subprocess.PIPE)
    feeder = rig.PacedWriter(pacat.stdin, rig.pink_noise(600)).start()
    try:
        record["idle"] = idle({"branch": ROOT}, sinks, args.warmup_s, args.window_s, runs=runs)
    finally:
        feeder.stop()
        rig.stop(pacat)
        sinks.close()
    return bench_run.finish_record(record, out, started)


if __name__ == "__main__":
    sys.exit(main())

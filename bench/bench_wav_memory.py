"""Peak memory of reading long WAV files (issue 12, item 4).

Each figure is the peak RSS of a fresh process: the real ``kiosk simulate --fast`` with a
one-hour question (24 kHz mono, 173 MB of samples; a sparse file, so no disk is used),
a whole-file :func:`read_wav_mono` of it (its result alone is 115 MB at 16 kHz), and
streaming it frame by frame as the simulator and ``kiosk run --input-wav`` do. Before the
streaming reader (main at 1402bf0, same machine) the same simulate run peaked at 1564 MB
and the whole-file read at 1510 MB.

Run: ``python bench/run.py wav_memory`` (``--quick``: a 10-minute file).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

BEFORE_MB = {"simulate_1h": 1564, "read_whole_1h": 1510}

PEAK = textwrap.dedent(
    """
    import runpy, sys
    try:
        {body}
    finally:
        # VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec.
        hwm = open("/proc/self/status").read().split("VmHWM:")[1]
        print(f"PEAK_MB {{int(hwm.split()[0]) // 1024}}", file=sys.stderr)
    """
)


def sparse_wav(path: Path, rate_hz: int, seconds: int) -> Path:
    n = rate_hz * seconds * 2
    fmt = struct.pack("<HHIIHH", 1, 1, rate_hz, rate_hz * 2, 2, 16)
    header = b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
    header += fmt + b"data" + struct.pack("<I", n)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + n)
    return path


def peak_mb(body: str) -> int:
    code = PEAK.format(body=body)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    for line in proc.stderr.splitlines():
        if line.startswith("PEAK_MB "):
            return int(line.split()[1])
    raise RuntimeError(f"no peak reported: {proc.stderr[-500:]}")


def run(quick: bool) -> dict[str, Any]:
    seconds = 600 if quick else 3600
    label = f"{seconds // 60}min" if quick else "1h"
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-wav-") as tmp:
        wav = sparse_wav(Path(tmp) / "question.wav", 24_000, seconds)
        out = Path(tmp) / "answer.wav"
        argv = ["kiosk", "simulate", "--config", "/dev/null", "--fast", "--json",
                "--input", str(wav), "--output", str(out)]  # fmt: skip
        figures = {
            f"simulate_{label}": peak_mb(
                f"sys.argv = {argv!r}; runpy.run_module('kiosk.cli', run_name='__main__')"
            ),
            f"read_whole_{label}": peak_mb(
                f"from kiosk.audio.wav import read_wav_mono; read_wav_mono({str(wav)!r}, 16000)"
            ),
            f"stream_frames_{label}": peak_mb(
                "from kiosk.audio.wav import WavReader\n"
                f"    for _ in WavReader({str(wav)!r}).frames_of(16000, 320): pass"
            ),
        }
    goals = {"simulate": "< 200", "read_whole": "< 300", "stream_frames": "< 100"}
    rows = []
    for name, mb in figures.items():
        before = BEFORE_MB.get(name)
        rows.append(
            {
                "name": f"peak RSS MB, {name.replace('_', ' ')}",
                "value": mb,
                "goal": goals[name.rsplit("_", 1)[0]],
                "note": f"before: {before} MB" if before else "",
            }
        )
    return {"rows": rows, "details": {"peak_rss_mb": figures, "before_mb": BEFORE_MB}}

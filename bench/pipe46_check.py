"""pipe46: does PulseAudio keep a room block at its offset through a stall? A click train into a
null sink (``norewinds=1``, as the rig's mic sink), recorded from its monitor with parec.

    flock /work/wt/bench.lock python bench/pipe46_check.py [OUT.txt]

Each writer sends 10 ms blocks paced by the clock, a click (one sample, 20000) every 100 ms; with
``stall`` it sleeps an extra 50 ms before block 100 (1.0 s) and then writes the late blocks at once
(the room catching up on parec's queued blocks). For every click after the first: where it came in
the monitor, relative to the first click, minus where it was written (samples; 0 = on schedule).
Writers: ``pacat20`` (main's pipe), ``abs-nopad`` (AbsWriter as the rig's abs20 uses it: PA_SEEK_ABSOLUTE, prebuf 0, no padding:
the brief's first assumption), ``abs-pad`` (bench/pipe46_writer.AbsWriter with pad_ms=500: the same plus silence
written 500 ms ahead). ~25 s in all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipe46_writer import AbsWriter, gaps  # noqa: E402

RATE, BLOCK, CLICK_EVERY = 48000, 480, 4800
SECONDS, STALL_AT, STALL_S = 2.0, 100, 0.05
DC = 1000


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout.strip()


def blocks() -> list[bytes]:
    n = int(SECONDS * RATE)
    x = np.full((n, 2), DC, "<i2")  # a steady level: a gap in the monitor is a run of zeros
    x[7::CLICK_EVERY] = 20000
    return [x[i : i + BLOCK].tobytes() for i in range(0, n, BLOCK)]


def play(kind: str, sink: str, stall: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    if kind == "pacat20":
        p = subprocess.Popen(["pacat", "--playback", f"--device={sink}", "--format=s16le", f"--rate={RATE}",
                              "--channels=2", "--latency-msec=20", "--raw", "-v"], stdin=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        assert p.stdin is not None
        send = lambda k, b: (p.stdin.write(b), p.stdin.flush())  # noqa: E731
    else:
        w = AbsWriter(sink, RATE, 2, lead_ms=20, pad_ms=0 if kind == "abs-nopad" else 500)
        send = lambda k, b: w.write(k, b)  # noqa: E731
    time.sleep(0.2)
    t0 = time.monotonic()
    due = t0
    for i, b in enumerate(blocks()):
        if stall and i == STALL_AT:
            time.sleep(STALL_S)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(i * BLOCK, b)
        due += BLOCK / RATE
    time.sleep(0.7)
    if kind == "pacat20":
        p.stdin.close()
        p.wait(timeout=3)
        err = p.stderr.read().decode(errors="replace") if p.stderr else ""
        out["underruns"] = err.lower().count("underrun")
    else:
        out["underflows"] = len(w.underflows)
        out["underflows_after_first_write"] = sum(u > w.blocks[0][0] for u in w.underflows)
        out["gaps"] = gaps(w.blocks, RATE, w.frame)
        lat = [b[2] for b in w.blocks if b[2] >= 0 or b[3]]
        out["sink_ms_median"] = round(float(np.median(w.sink_us)) / 1000, 1) if w.sink_us else None
        out["latency_ms_median"] = round(float(np.median(lat)) / 1000, 1) if lat else None
        w.close()
    return out


def clicks(rec: np.ndarray) -> list[int]:
    idx = np.nonzero(np.abs(rec[:, 0].astype(np.int32)) > 10000)[0]
    return [int(i) for i in idx]


def run_one(kind: str, stall: bool) -> str:
    tag = f"p46chk{os.getpid()}"
    mod = pactl("load-module", "module-null-sink", f"sink_name={tag}", "norewinds=1", f"rate={RATE}")
    raw = Path(f"/tmp/pipe46/check-{kind}-{'stall' if stall else 'steady'}.raw")
    raw.parent.mkdir(parents=True, exist_ok=True)
    try:
        with raw.open("wb") as f:
            rec = subprocess.Popen(["parec", f"--device={tag}.monitor", "--format=s16le", f"--rate={RATE}",
                                    "--channels=2", "--latency-msec=10", "--raw"], stdout=f)
            time.sleep(0.3)
            info = play(kind, tag, stall)
            rec.terminate()
            rec.wait(timeout=3)
    finally:
        pactl("unload-module", mod)
    x = np.frombuffer(raw.read_bytes(), "<i2").reshape(-1, 2)
    at = clicks(x)
    if not at:
        return f"{kind:10s} {'stall' if stall else 'steady':6s}: no clicks heard {info}"
    rel = [a - at[0] for a in at]
    dev = [r - round(r / CLICK_EVERY) * CLICK_EVERY for r in rel]
    y = x[at[0] : at[-1], 0]
    quiet = np.abs(y.astype(np.int32)) < DC // 2
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    runs = [(int(a), int(b - a)) for a, b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0])]
    info["heard_gaps_ms"] = [(round((a + at[0]) / RATE, 3), round(n / RATE * 1000, 2)) for a, n in runs]
    n_exp = int(SECONDS * RATE) // CLICK_EVERY
    heard = sorted({round(r / CLICK_EVERY) for r in rel})
    missing = [i for i in range(n_exp) if i not in heard]
    return (f"{kind:10s} {'stall' if stall else 'steady':6s}: clicks heard {len(at)}/{n_exp}, missing #{missing}; "
            f"offset from schedule (samples) per click {dev}; {info}")


def main() -> None:
    lines = [f"pipe46_check {time.strftime('%H:%M:%S', time.gmtime())} UTC, rate {RATE}, block {BLOCK}, "
             f"click every {CLICK_EVERY} samples, stall {STALL_S * 1000:.0f} ms before block {STALL_AT}"]
    for kind in ("pacat20", "abs-nopad", "abs-pad"):
        for stall in (False, True):
            lines.append(run_one(kind, stall))
            print(lines[-1], flush=True)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

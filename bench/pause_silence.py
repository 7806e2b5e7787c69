"""What a visitor meets when the answer pauses (issue 10, item 4): from the pause decision
(``PlaybackBuffer.hold(True)``, what the app does at the first loud syllable) to silence at
the speaker, on the real PulseAudio path (``PyAudioSink`` on ``open_pulse``, the null sink
``vsink``; its monitor heard through ``PyAudioSource``), and how much of the answer is lost or
heard twice when it resumes. ``bench_lobby``'s "speaker silent" has no device buffer: this is
the part it leaves out.

Two ways, interleaved in one run: ``drop`` (the sink drops what the server still holds and
hands it back to the buffer, as shipped) and ``play-out`` (the halt listener removed: the
server plays its ~100 ms out, as before).

    bash .ci/pulseaudio.sh && python bench/pause_silence.py --pauses 10

Per pause: a 1 kHz tone (2 s) plays; 0.6-0.9 s in, the buffer is held for 0.4 s, then resumed.
From the monitor, per millisecond, where the tone stops: ``after_decision_ms`` is how much tone
was heard after the decision, i.e. the stop minus the tone position heard at the decision (the
wall time of the decision against the monitor frames' arrival, less the source's latency);
``tone_heard_ms`` - 2000 is what the resume repeated (+) or lost (-). ``hold_cpu_us``: process
CPU time of the ``hold(True)`` call itself (the drop runs in it, on the caller's thread).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.append(str(HERE.parent))

TONE_S = 2.0
HOLD_S = 0.4


def _loud_ms(samples: np.ndarray) -> np.ndarray:
    ms = samples[: samples.size - samples.size % 16].astype(np.float64).reshape(-1, 16)
    return np.sqrt((ms**2).mean(axis=1)) > 0.05 * 32768


def one_pause(drop: bool, pause_at_s: float) -> dict[str, Any]:
    import threading

    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.audio.pulse_host import open_pulse
    from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource

    frames: list[bytes] = []
    arrived: list[float] = []
    lock = threading.Lock()

    def on_frame(frame: bytes) -> None:
        with lock:
            frames.append(frame)
            arrived.append(time.monotonic())

    errors: list[BaseException] = []
    buffer = PlaybackBuffer(24000)
    sink = PyAudioSink("", buffer, on_error=errors.append, pyaudio_factory=open_pulse)
    if not drop:
        buffer.remove_halt_listener(sink._drop_device_queue)
    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, on_frame=on_frame, on_error=errors.append,
        pyaudio_factory=open_pulse,
    )
    t = np.arange(int(TONE_S * 24000)) / 24000
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
    with sink, source:
        while len(frames) < 10:
            time.sleep(0.01)
        start = len(frames)
        buffer.write(pcm, "tone")
        time.sleep(pause_at_s)
        in_latency_s = source.input_latency_ms / 1000
        played_ms, unplayed_ms = buffer.played_ms("tone"), sink.unplayed_ms
        cpu0 = time.process_time()
        decided = time.monotonic()
        buffer.hold(True)
        hold_cpu_us = (time.process_time() - cpu0) * 1e6
        time.sleep(HOLD_S)
        buffer.hold(False)
        while not buffer.is_idle:
            time.sleep(0.01)
        time.sleep(0.5)
    with lock:
        audio = np.frombuffer(b"".join(frames[start:]), dtype=np.int16)
        times = arrived[start:]
    loud = _loud_ms(audio)
    first = int(np.flatnonzero(loud)[0])
    stop = first + int(np.flatnonzero(~loud[first:])[0])  # ms index of the first silence
    # The monitor's ms k of frame j (20 ms each) was captured ~ arrival(j) - latency - (20 - k%20).
    capture_ms = [times[k // 20] - in_latency_s - (20 - k % 20) / 1000 for k in (first, stop)]
    heard_at_decision_ms = (decided - capture_ms[0]) * 1000
    return {
        "mode": "drop" if drop else "play-out",
        "pause_at_s": round(pause_at_s, 3),
        "played_at_decision_ms": played_ms,
        "unplayed_at_decision_ms": round(unplayed_ms, 1),
        "tone_before_silence_ms": stop - first,
        "after_decision_ms": round(stop - first - heard_at_decision_ms, 1),
        "wall_decision_to_silence_ms": round((capture_ms[1] - decided) * 1000, 1),
        "tone_heard_ms": int(loud.sum()),
        "hold_cpu_us": round(hold_cpu_us, 1),
        "errors": [str(e) for e in errors],
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for mode in ("drop", "play-out"):
        mine = [r for r in rows if r["mode"] == mode]

        def q(key: str, p: float, mine: list[dict[str, Any]] = mine) -> float:
            return round(float(np.percentile([r[key] for r in mine], p)), 1)

        out[mode] = {
            "n": len(mine),
            "after_decision_ms_p50": q("after_decision_ms", 50),
            "after_decision_ms_p95": q("after_decision_ms", 95),
            "wall_decision_to_silence_ms_p50": q("wall_decision_to_silence_ms", 50),
            "wall_decision_to_silence_ms_p95": q("wall_decision_to_silence_ms", 95),
            "tone_heard_minus_tone_ms": sorted(r["tone_heard_ms"] - int(TONE_S * 1000) for r in mine),
            "hold_cpu_us_p50": q("hold_cpu_us", 50),
            "errors": sum(len(r["errors"]) for r in mine),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pauses", type=int, default=10, help="pauses per mode")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    rng = random.Random(0)
    rows = []
    for _ in range(args.pauses):
        for drop in (True, False):
            rows.append(one_pause(drop, rng.uniform(0.6, 0.9)))
            print(rows[-1], file=sys.stderr)
    out = summary(rows)
    for mode, s in out.items():
        print(mode, s)
    import run as bench_run

    import kiosk

    bench_run.save_diagnostic(
        "pause-silence",
        {"label": args.label, "summary": out, "rows": rows, "kiosk_code": str(Path(kiosk.__file__).parent)},
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

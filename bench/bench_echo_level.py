"""CPU of the guard's lined-up echo reference (kiosk.audio.echo_level.EchoLevelTap, with its
band levels and pitch cue) against the same tap without the pitch cue, without either (the whole
frame's level only), the in-process canceller (SpeexDSP) and the bare loop, in one run, per
second of playback.

The loop is what the pipeline does per 20 ms while an answer plays: the speaker takes a
block from the playback buffer (the tap's listener stamps and resamples it) and one
microphone frame goes through the tap / the canceller. 10 s of the TTS fixture (3 s quick),
echoing back 60 ms later than the stamps say at -12 dB (and the tap again at -6 dB, where the pitch
cue looks at most frames). In-process, one thread; process CPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
FRAME = 320


def _loop(kind: str, answer: np.ndarray, mic: np.ndarray) -> float:
    from kiosk.audio.echo_cancel import echo_canceller_for
    from kiosk.audio.echo_level import EchoLevelTap
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.audio.resample import Resampler

    playback = PlaybackBuffer(24000)
    up = Resampler(RATE, 24000)
    playback.write(up.process(answer.astype("<i2").tobytes()) + up.flush(), "item")
    now = [0.0]
    tap: Any = None
    if kind in ("tap", "tap-bands", "tap-level"):
        tap = EchoLevelTap(
            playback, lambda: now[0], lambda: 0.1, 20, bands=kind != "tap-level", pitch=kind == "tap"
        )
    elif kind == "speex":
        tap = echo_canceller_for("speex", playback, lambda: now[0], lambda: 0.1, 20)
    started = time.process_time()
    for k in range(answer.size // FRAME):
        now[0] = k * 0.02
        playback.read(480)
        frame = mic[k * FRAME : (k + 1) * FRAME].tobytes()
        if tap is not None:
            tap.process(frame, now[0])
    cpu = time.process_time() - started
    if tap is not None:
        tap.close()
    return cpu


def run(quick: bool) -> dict[str, Any]:
    from kiosk.audio import speexdsp
    from kiosk.audio.wav import read_wav_mono

    seconds = 3.0 if quick else 10.0
    fixture = ROOT / "tests" / "fixtures" / "arc-easy-q237-tts.wav"
    x = read_wav_mono(fixture, RATE).astype(np.float64)
    answer = np.tile(x, int(np.ceil(seconds * RATE / x.size)))[: int(seconds * RATE)]
    lag = int(0.16 * RATE)
    noise = np.random.default_rng(1).standard_normal(answer.size) * 3  # ~ -80 dBFS
    mics = {}
    for echo_db in (-12, -6):  # at -6 dB most frames reach the guard's -30 dBFS: the cue looks
        echo = np.concatenate([np.zeros(lag), answer])[: answer.size] * 10 ** (echo_db / 20)
        mics[echo_db] = np.clip(np.rint(echo + noise), -32768, 32767).astype("<i2")
    kinds = ["bare", "tap", "tap-bands", "tap-level"] + (["speex"] if speexdsp.available() else [])
    kinds += ["tap@-6", "tap-bands@-6"]
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(1 if quick else 5):  # interleaved, best of 5: the machine is shared
        for k in kinds:
            kind, _, db = k.partition("@")
            cpu[k].append(_loop(kind, answer, mics[int(db or -12)]))
    best = {k: min(v) for k, v in cpu.items()}
    per_s = {k: round((best[k] - best["bare"]) * 1000 / seconds, 3) for k in kinds if k != "bare"}
    rows = [
        {
            "name": "guard's lined-up reference with band levels and pitch cue (EchoLevelTap), "
            "CPU ms per s of playback",
            "value": per_s["tap"],
            "note": f"over the bare loop ({best['bare'] * 1000 / seconds:.3f} ms/s); best of runs",
        },
        {
            "name": "the same tap without the pitch cue (bands only), same run, CPU ms per s",
            "value": per_s["tap-bands"],
            "note": f"the pitch cue costs {per_s['tap'] - per_s['tap-bands']:.3f} ms/s",
        },
        {
            "name": "the same tap without bands (whole-frame level only), same run, CPU ms per s",
            "value": per_s["tap-level"],
            "note": f"bands cost {per_s['tap-bands'] - per_s['tap-level']:.3f} ms/s",
        },
    ]
    rows.append(
        {
            "name": "the tap with band levels and pitch cue, echo at -6 dB, CPU ms per s of playback",
            "value": per_s["tap@-6"],
            "note": f"without the pitch cue {per_s['tap-bands@-6']:.3f} ms/s: the cue costs "
            f"{per_s['tap@-6'] - per_s['tap-bands@-6']:.3f} ms/s",
        }
    )
    if "speex" in per_s:
        rows.append(
            {
                "name": "in-process AEC (SpeexDSP), same run, CPU ms per s of playback",
                "value": per_s["speex"],
                "note": f"tap / AEC = {per_s['tap'] / max(1e-9, per_s['speex']):.2f}",
            }
        )
    return {"rows": rows, "details": {"cpu_s": cpu, "seconds": seconds}}

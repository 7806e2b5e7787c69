"""bench/lobby_aec_replay.py's replay of a "speex-later" recording: the earlier answer's frames
heard as a visitor count as ``warm_suspect`` from its first played block on (not in the lead
before it, while the room is not yet learned, as ``RunLog.warm_self`` counts them), and the
run's own frames are timed from the "start" marker."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import lobby_aec_replay as rep  # noqa: E402
from bench_lobby import load_bench_config  # noqa: E402

from kiosk.audio import speexdsp  # noqa: E402
from kiosk.audio import vad as kiosk_vad  # noqa: E402

pytestmark = pytest.mark.skipif(not speexdsp.available(), reason="libspeexdsp missing")


@pytest.mark.parametrize("warm_frames", [0, 3])
def test_the_warm_up_counts_from_its_first_played_block_and_the_run_from_start(monkeypatch, warm_frames):
    cfg = load_bench_config()
    voiced = lambda frame: np.abs(np.frombuffer(frame, dtype="<i2")).max() > 100  # noqa: E731
    monkeypatch.setattr(kiosk_vad, "voice_detector", lambda *a, **k: voiced)
    # -24 dBFS at 200 Hz, "voiced": a visitor to the endpointer (the canceller passes it: nothing
    # but silence was played)
    loud = (3000 * np.sin(2 * np.pi * 200 * np.arange(320) / 16000)).astype("<i2").tobytes()
    inputs: list[tuple] = []
    t = [0.0]

    def frames(n: int, speaking: bool = False, pcm: bytes = loud) -> None:
        for _ in range(n):
            inputs.append(("mic", pcm, t[0]))
            inputs.append(("frame", False, speaking))
            t[0] += 0.02

    inputs.append(("playing",))
    frames(4)  # the lead: nothing plays yet
    frames(2, pcm=bytes(640))  # silence ends that voiced run
    inputs.append(("play", t[0], bytes(480 * 2), False))  # the earlier answer's first block
    frames(warm_frames)  # heard as a visitor (the filter's first output is silent): 0, 20, 40 ms
    frames(2, pcm=bytes(640))
    inputs.append(("start",))
    frames(3, speaking=True)  # the run: paused in its first frames
    run = {"mix": "m/seedNone", "mode": "speex-later", "kind": "echo", "echo_db": -12.0,
           "onset_s": None, "inputs": inputs}  # fmt: skip
    out = rep.replay(run, cfg)
    # The lead's loud frames never count, the earlier answer's do (old: no markers, IndexError).
    assert (out["warm_suspect"] > 0) == (warm_frames > 0)
    assert out["self_pauses_s"] and out["self_pauses_s"][0] <= 0.06  # timed from "start"

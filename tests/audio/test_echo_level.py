"""The guard's echo reference (``audio.echo_cancel = "none"``): what the speaker played, lined
up with each microphone frame once the echo's lag is measured, the microphone left untouched,
and nothing done while nothing plays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kiosk.audio.echo_level import EchoLevelTap
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.resample import Resampler
from kiosk.audio.wav import read_wav_mono
from kiosk.core.endpointing import frame_dbfs

FIXTURES = Path(__file__).parent.parent / "fixtures"
RATE = 16000
FRAME = 320  # 20 ms
ECHO_DB = -12.0
LATENCY_S = 0.1  # what the speaker says it holds (a block taken now is heard this much later)
LAG_S = 0.06  # the echo comes this much later than the speaker's stamps say


def test_the_reference_is_lined_up_with_the_echo_and_the_frames_heard_are_relined():
    answer = read_wav_mono(FIXTURES / "arc-easy-q237-tts.wav", RATE).astype(np.float64)[: 3 * RATE]
    lag = int((LATENCY_S + LAG_S) * RATE)
    echo = np.concatenate([np.zeros(lag), answer])[: answer.size] * 10 ** (ECHO_DB / 20)
    noise = np.random.default_rng(1).standard_normal(answer.size) * 3  # ~ -80 dBFS room
    mic = np.clip(np.rint(echo + noise), -32768, 32767).astype("<i2")
    playback = PlaybackBuffer(24000)
    up = Resampler(RATE, 24000)
    playback.write(up.process(answer.astype("<i2").tobytes()) + up.flush(), "item")
    now = [0.0]
    tap = EchoLevelTap(playback, lambda: now[0], lambda: LATENCY_S, 20)
    silent = bytes(FRAME * 2)
    assert tap.process(silent, -0.02) is silent and tap.frame_reference_dbfs == -math.inf
    relined: list[tuple[float, float]] = []
    after: list[tuple[float, float]] = []
    for k in range(answer.size // FRAME):
        now[0] = k * 0.02
        playback.read(480)  # the speaker takes 20 ms, heard LATENCY_S later (so it says)
        frame = mic[k * FRAME : (k + 1) * FRAME].tobytes()
        before = tap.realignments
        assert tap.process(frame, now[0]) is frame  # the microphone is left alone
        if tap.realignments != before:
            relined = list(tap.relined)
        elif tap.lag_settled and math.isfinite(tap.frame_reference_dbfs):
            after.append((frame_dbfs(frame), tap.frame_reference_dbfs))
    assert tap.realignments == 1 and tap.lag_settled
    assert abs(tap.lead_ms + LAG_S * 1000 - 3.0) <= 2.0  # the echo lags its reference by ~3 ms

    def echo_return(pairs: list[tuple[float, float]]) -> float:
        loud = [m - r for m, r in pairs if r > -40.0]
        assert len(loud) >= 10
        return float(np.median(loud))

    assert abs(echo_return(relined) - ECHO_DB) <= 1.5  # the frames before, judged lined up
    assert abs(echo_return(after) - ECHO_DB) <= 1.5
    tap.close()
    assert playback._read_listeners == []

"""The guard's echo reference (``audio.echo_cancel = "none"``): what the speaker played, lined
up with each microphone frame once the echo's lag is measured, the microphone left untouched,
and nothing done while nothing plays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.echo_level import BAND_EDGES_HZ, BandMeter, EchoLevelTap
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


def _run_tap(bands: bool) -> tuple[EchoLevelTap, list[tuple[list[float], list[float]]], list[object]]:
    """The fixture's answer through the tap (as in the test above); the band levels of the
    frames once lined up, and those relined at the realignment."""
    answer = read_wav_mono(FIXTURES / "arc-easy-q237-tts.wav", RATE).astype(np.float64)[: 3 * RATE]
    lag = int((LATENCY_S + LAG_S) * RATE)
    echo = np.concatenate([np.zeros(lag), answer])[: answer.size] * 10 ** (ECHO_DB / 20)
    noise = np.random.default_rng(1).standard_normal(answer.size) * 3
    mic = np.clip(np.rint(echo + noise), -32768, 32767).astype("<i2")
    playback = PlaybackBuffer(24000)
    up = Resampler(RATE, 24000)
    playback.write(up.process(answer.astype("<i2").tobytes()) + up.flush(), "item")
    now = [0.0]
    tap = EchoLevelTap(playback, lambda: now[0], lambda: LATENCY_S, 20, bands=bands)
    assert tap.process(bytes(FRAME * 2), -0.02) and tap.frame_bands is None  # idle: nothing
    after: list[tuple[list[float], list[float]]] = []
    relined: list[object] = []
    for k in range(answer.size // FRAME):
        now[0] = k * 0.02
        playback.read(480)
        before = tap.realignments
        tap.process(mic[k * FRAME : (k + 1) * FRAME].tobytes(), now[0])
        if tap.realignments != before:
            relined = list(tap.relined_bands)
            assert tap.frame_bands is None  # this frame's reference was taken before
        elif tap.frame_bands is not None:
            after.append((list(tap.frame_bands[0]), list(tap.frame_bands[1])))
        else:
            assert not bands or not tap.lag_settled
    tap.close()
    return tap, after, relined


def _band_returns(pairs: list[tuple[list[float], list[float]]]) -> list[float]:
    """The median echo return per band, over frames in which the answer sounds there."""
    out = []
    for b in range(len(BAND_EDGES_HZ) - 1):
        diffs = [m[b] - r[b] for m, r in pairs if r[b] > -45.0]
        if len(diffs) >= 10:
            out.append(float(np.median(diffs)))
    return out


def test_once_lined_up_each_frame_has_its_band_levels_and_so_do_the_frames_relined():
    """Per band, the echo is the answer ECHO_DB down in every band the answer sounds in; the
    frames heard before the lag was lined up get the same, relined."""
    tap, after, relined = _run_tap(bands=True)
    assert tap.lag_settled and len(after) > 50
    returns = _band_returns(after)
    assert len(returns) >= 4 and all(abs(r - ECHO_DB) <= 2.0 for r in returns), returns
    assert len(relined) == len(tap.relined)
    pairs = [p for p in relined if p is not None]
    assert all(abs(r - ECHO_DB) <= 2.0 for r in _band_returns(pairs))  # type: ignore[arg-type]


def test_without_bands_the_tap_measures_none():
    tap, after, relined = _run_tap(bands=False)
    assert tap.lag_settled and after == [] and relined == [] and tap.meter is None


def test_band_meter_puts_a_tone_in_its_band_and_the_bands_add_up_to_the_frame():
    meter = BandMeter(FRAME)
    t = np.arange(FRAME) / RATE
    tone = (np.sin(2 * np.pi * 1200 * t) * 10000).astype("<i2").tobytes()
    levels = meter.levels(tone)
    band = next(i for i in range(len(BAND_EDGES_HZ) - 1) if BAND_EDGES_HZ[i] <= 1200 < BAND_EDGES_HZ[i + 1])
    assert levels[band] == pytest.approx(frame_dbfs(tone), abs=0.5)
    assert max(v for i, v in enumerate(levels) if i != band) < levels[band] - 60
    noise = (np.random.default_rng(2).standard_normal(FRAME) * 3000).astype("<i2").tobytes()
    power = sum(10 ** (v / 10) for v in meter.levels(noise))
    assert 10 * math.log10(power) == pytest.approx(frame_dbfs(noise), abs=1.0)
    assert meter.levels(bytes(FRAME * 2)) == [-math.inf] * (len(BAND_EDGES_HZ) - 1)

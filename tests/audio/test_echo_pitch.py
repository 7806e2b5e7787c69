"""A second voice in the microphone (:mod:`kiosk.audio.echo_pitch`): the answer's own echo
repeats at the answer's pitch, which the reference shows; a visitor as loud as that echo repeats
at hers, which it does not. Measured by the guard's tap from the answer's first frame on, before
the echo's lag is lined up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.echo_level import EchoLevelTap
from kiosk.audio.echo_pitch import SUBHARMONICS, PitchCue
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.resample import Resampler
from kiosk.audio.wav import read_wav_mono
from kiosk.core.echo_guard import PITCH_MIN, PITCH_OVER_REFERENCE
from kiosk.core.endpointing import frame_dbfs

FIXTURES = Path(__file__).parent.parent / "fixtures"
RATE = 16000
FRAME = 320  # 20 ms
ECHO_DB = -12.0
LATENCY_S = 0.1
LAG_S = 0.06  # the echo comes this much later than the speaker's stamps say: not yet measured
VISITOR_AT_S = 0.5  # she starts talking half a second into the answer


def second_voice(pitch: tuple[float, float] | None) -> bool:
    """What the guard counts (kiosk.core.echo_guard._loud_in_pitch, less the level rule)."""
    return pitch is not None and pitch[0] >= PITCH_MIN and pitch[0] - pitch[1] >= PITCH_OVER_REFERENCE


def run_tap(visitor_gain_db: float | None) -> list[tuple[float, tuple[float, float] | None, bool]]:
    """The fixture's answer echoing back at -12 dB, and a visitor (another voice) from 0.5 s
    on: per frame (time, the tap's pitch cue, whether she is talking then)."""
    answer = read_wav_mono(FIXTURES / "arc-easy-q237-tts.wav", RATE).astype(np.float64)[: 2 * RATE]
    lag = int((LATENCY_S + LAG_S) * RATE)
    echo = np.concatenate([np.zeros(lag), answer])[: answer.size] * 10 ** (ECHO_DB / 20)
    mic = echo + np.random.default_rng(1).standard_normal(answer.size) * 3
    talking = np.zeros(answer.size, dtype=bool)
    if visitor_gain_db is not None:
        voice = read_wav_mono(FIXTURES / "ja_stop_16k.wav", RATE).astype(np.float64)
        at = int(VISITOR_AT_S * RATE)
        voice = voice[: answer.size - at] * 10 ** (visitor_gain_db / 20)
        mic[at : at + voice.size] += voice
        talking[at : at + voice.size] = np.abs(voice) > 300
    pitches = taps_pitch_cue(answer, mic, LATENCY_S)
    return [
        (t, p, bool(talking[k * FRAME : (k + 1) * FRAME].any())) for k, (t, p) in enumerate(pitches)
    ]


def taps_pitch_cue(
    answer: np.ndarray, mic: np.ndarray, latency_s: float
) -> list[tuple[float, tuple[float, float] | None]]:
    """The guard's tap over ``mic`` (16 kHz) while the speaker plays ``answer`` (16 kHz, stamped
    ``latency_s`` ahead): per 20 ms frame, (time, the tap's pitch cue)."""
    mic = np.clip(np.rint(mic), -32768, 32767).astype("<i2")
    playback = PlaybackBuffer(24000)
    up = Resampler(RATE, 24000)
    playback.write(up.process(answer.astype("<i2").tobytes()) + up.flush(), "item")
    now = [0.0]
    # Every frame looked at (the pipeline skips those under vad.barge_in_min_level_dbfs).
    tap = EchoLevelTap(playback, lambda: now[0], lambda: latency_s, 20, pitch_min_dbfs=-40.0)
    out = []
    for k in range(answer.size // FRAME):
        now[0] = k * 0.02
        playback.read(480)
        tap.process(mic[k * FRAME : (k + 1) * FRAME].tobytes(), now[0])
        out.append((now[0], tap.frame_pitch))
    tap.close()
    return out


def cue_pairs(cue: PitchCue, mic: np.ndarray, ref: np.ndarray) -> list[tuple[float, float] | None]:
    """``cue`` over ``mic`` and the reference ``ref`` (16 kHz, lined up), 20 ms frame by frame:
    each frame's pitch levels (None: too quiet to look at)."""
    seen = []
    for k in range(mic.size // FRAME):
        m, r = (
            np.clip(np.rint(x[k * FRAME : (k + 1) * FRAME]), -32768, 32767).astype("<i2").tobytes()
            for x in (mic, ref)
        )
        seen.append(cue.pair(m, r, frame_dbfs(m)))
    return seen


def test_the_answers_own_echo_is_no_second_voice():
    out = run_tap(None)
    assert sum(p is not None for _, p, _ in out) >= 20  # looked at: the echo is loud enough
    assert [t for t, p, _ in out if second_voice(p)] == []


def test_a_visitor_as_loud_as_the_echo_is_a_second_voice_before_the_lag_is_measured():
    """Her "stop" at the echo's level (-6 dB on the fixture: median -39 / -35 dBFS, 90th
    percentile -26 / -29): the tap hears a second voice in two frames in a row within 100 ms
    of her first voiced frame, and only while she talks."""
    out = run_tap(-6.0)
    first = next(t for t, _, talking in out if talking)
    heard = [t for t, p, _ in out if second_voice(p)]
    assert all(any(talking and abs(t - u) <= 0.04 for u, _, talking in out) for t in heard)
    pairs = [t for t in heard if round(t - 0.02, 2) in {round(u, 2) for u in heard}]
    assert pairs and pairs[0] - first <= 0.1, (first, heard)


def test_a_quiet_frame_is_not_looked_at_and_a_new_stretch_forgets_the_reference():
    t = np.arange(2 * FRAME) / RATE
    visitor = (3000 * np.sin(2 * np.pi * 150 * t)).astype("<i2").tobytes()
    answer = (3000 * np.sign(np.sin(2 * np.pi * 150 * t))).astype("<i2").tobytes()
    other = (3000 * np.sin(2 * np.pi * 110 * t)).astype("<i2").tobytes()
    cue = PitchCue(FRAME)
    quiet = (np.frombuffer(visitor, dtype="<i2") // 300).astype("<i2").tobytes()
    assert frame_dbfs(quiet[: 2 * FRAME]) < cue.min_mic_dbfs
    assert cue.pair(quiet[: 2 * FRAME], other[: 2 * FRAME], frame_dbfs(quiet[: 2 * FRAME])) is None
    # The answer repeats at 150 Hz: the microphone's 150 Hz is its echo...
    cue.pair(visitor[: 2 * FRAME], answer[: 2 * FRAME], -20.0)
    mic, ref = cue.pair(visitor[2 * FRAME :], answer[2 * FRAME :], -20.0)  # type: ignore[misc]
    assert mic > 0.9 and ref > 0.9
    # ...a new stretch, another answer (110 Hz): the same 150 Hz is a second voice.
    cue.restart()
    cue.pair(visitor[: 2 * FRAME], other[: 2 * FRAME], -20.0)
    mic, ref = cue.pair(visitor[2 * FRAME :], other[2 * FRAME :], -20.0)  # type: ignore[misc]
    assert mic > 0.9 and mic - ref >= PITCH_OVER_REFERENCE


@pytest.mark.parametrize("times", [2, 3])
def test_a_ring_at_a_fraction_of_the_answers_period_is_no_second_voice(times: int) -> None:
    """The room rings at a harmonic of the answer (a resonance near 320 Hz) and damps its
    fundamental: the echo repeats at a half or a third of the answer's period, where the answer
    itself does not, but at two or three times that it does (fresh tuning seed 6 mix 074 at
    -6 dB: the echo at 25 samples of 8 kHz, the answer at 50, then 75; it paused itself)."""
    t = np.arange(RATE) / RATE
    phase = 2 * np.pi * (320.0 / times) * t
    answer = 8000 * (np.sin(phase) + 0.5 * np.sin(times * phase))
    echo = 2000 * np.sin(times * phase) * (1 + 0.5 * np.sin(2 * np.pi * 8 * t))  # and a tremolo
    seen = cue_pairs(PitchCue(FRAME, subharmonics=SUBHARMONICS), echo, answer)  # as the tap's
    assert sum(p is not None and p[0] >= PITCH_MIN for p in seen) >= 20  # it does repeat
    assert [k for k, p in enumerate(seen) if second_voice(p)] == []

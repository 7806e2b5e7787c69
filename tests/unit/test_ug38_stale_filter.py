"""While a rechecking SpeexDSP canceller measures the lag of a new playback stretch again, a
frame whose echo estimate is not in the microphone (its gain g = <mic, estimate> / |estimate|^2
under ``STALE_FILTER_GAIN``) is the answer's own voice behind a stale filter, not a visitor over
a working one (kiosk.core.echo_double_talk).

Through PulseAudio (used seed 811 mix 085, the later answer; bench/results/own36-2026-12-06.md)
the echo path moved 0.44 ms between the answers. The filter still held the first answer's
alignment, the new stretch's lag settled only 1.4 s in, and the guard trusted the filter from 0.2 s
in (its echo relearned low on frames it still cancelled well). A frame the stale filter missed
read like a second voice: linear output -25.2 dBFS, 8 dB over the filter's echo estimate (-33.2),
as loud as the raw microphone (-25.5; g 0.29), 10.8 dB over the bar (-36.4), the answer's own
pitch in it: the double-talk rule paused the answer on its own echo.
"""

from __future__ import annotations

import numpy as np

from kiosk.audio.linear_levels import linear_levels_dbfs
from kiosk.config import VadSettings
from kiosk.core.echo_double_talk import STALE_FILTER_GAIN, filter_gain
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.helpers import level_frame as frame

PAUSE_MS = VadSettings().barge_in_pause_ms
ROOM = -50.3  # the room's level
FAR = -16.0  # what the speaker played (the reference the filter holds)
USUAL = -17.4  # the echo's usual raw return (microphone - reference, dB)
LEFT = -26.4  # the echo's return after the canceller (the trusted bar: FAR + LEFT + 6 = -36.4)
HIGH = (-70.0, -72.0)  # the linear output over 3 kHz and its estimate there, echo alone


class Levels(tuple):
    """(linear output, echo estimate, raw microphone) dBFS as the canceller tags them
    (kiosk.audio.echo_cancel.LinearLevels: the guard reads the tag, nothing else)."""

    def __new__(cls, levels: tuple[float, float, float], remeasuring: bool) -> "Levels":
        made = super().__new__(cls, levels)
        made.lag_remeasuring = remeasuring
        return made


# s811/085's frame (replay frame 636): cleaned dBFS (over the trusted bar), (linear output, echo
# estimate, raw microphone) dBFS, the linear output's pitch (its own, the reference's at that
# period), over 3 kHz (linear, estimate).
STALE = (-32.9, (-25.2, -33.2, -25.5), (0.98, 0.99), (-67.3, -81.3))
# A visitor over a working filter: her voice (-24 dBFS) in the linear output, uncorrelated with
# the estimate but for a little (g 0.6), a pitch the answer lacks.
VISITOR = (-30.0, (-24.0, -33.2, -23.9), (0.9, 0.3), (-60.0, -81.3))


def echo(endpointer: Endpointer, remeasuring: bool) -> None:
    """One frame of the answer's echo alone, as the filter leaves it."""
    raw = FAR + USUAL
    linear = Levels((raw - 13.0, raw - 1.5, raw), remeasuring)
    endpointer.process(frame(FAR + LEFT), FAR, linear=linear, linear_high=HIGH)
    assert endpointer.suspected_speech_ms == 0


def later_answer(vad: FirstOpinion) -> Endpointer:
    """A SpeexDSP kiosk whose first answer was cancelled well and trusted (past the warm-up), at
    its next answer's first frame (a new stretch: the guard relearns what the filter leaves)."""
    endpointer = Endpointer(vad, VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(250):
        endpointer.process(frame(ROOM), None)
    for _ in range(150):
        echo(endpointer, False)
    assert endpointer.echo_cancelled_well
    for _ in range(50):  # the answer ends, the room alone
        endpointer.process(frame(ROOM), None)
    endpointer.echo_path_changed()  # the next answer's stretch
    return endpointer


def suspicion(vad: FirstOpinion, endpointer: Endpointer, heard: tuple, remeasuring: bool) -> int:
    """One frame (webrtcvad's first opinion calls it voice, the confirmed one not)."""
    level, linear, pitch, high = heard
    vad.provisional, vad.confirmed = True, False
    endpointer.process(
        frame(level), FAR, linear=Levels(linear, remeasuring), linear_pitch=lambda: pitch,
        linear_high=high,
    )  # fmt: skip
    seen = endpointer.suspected_speech_ms
    vad.provisional = False
    endpointer.reset()
    return seen


def test_a_stale_filters_miss_does_not_pause_the_answer_while_the_lag_is_measured_again():
    assert filter_gain(*STALE[1]) < STALE_FILTER_GAIN < filter_gain(*VISITOR[1])
    vad = FirstOpinion()
    endpointer = later_answer(vad)
    for _ in range(70):  # 1.4 s of the answer's echo, cancelled well: trusted (as on main)
        echo(endpointer, True)
    assert endpointer.echo_cancelled_well
    # The stale filter's miss, twice (2 frames of the first opinion would pause the answer too):
    # the answer's own voice (main: paused at once on the estimate path).
    assert suspicion(vad, endpointer, STALE, True) == 0
    vad.provisional = True
    for _ in range(2):
        level, linear, pitch, high = STALE
        endpointer.process(
            frame(level), FAR, linear=Levels(linear, True), linear_pitch=lambda: pitch, linear_high=high
        )
        assert endpointer.suspected_speech_ms == 0
    vad.provisional = False
    endpointer.reset()
    # A visitor over the filter in the same window is double talk at once.
    assert suspicion(vad, endpointer, VISITOR, True) >= PAUSE_MS
    # Once the lag is in (nothing moved: still trusted), the same frame is judged as before.
    echo(endpointer, False)
    assert endpointer.echo_cancelled_well
    assert suspicion(vad, endpointer, STALE, False) >= PAUSE_MS


def test_the_gain_is_that_of_the_samples():
    """g from the three levels (the linear output is the microphone less the estimate) is
    <mic, estimate> / |estimate|^2 of the samples: ~1 for the echo with a visitor on top, ~0.3 for
    an estimate misaligned with the echo in the microphone."""
    rng = np.random.default_rng(38)
    t = np.arange(320)
    echo = 3000 * np.sin(2 * np.pi * 150 * t / 16000 + 0.3) + rng.standard_normal(320) * 300
    visitor = rng.standard_normal(320) * 2000
    for estimate, mic in ((echo, echo + visitor), (0.3 * echo + rng.standard_normal(320) * 900, echo)):
        mic16 = np.clip(np.round(mic), -32768, 32767).astype("<i2")
        est16 = np.clip(np.round(estimate), -32768, 32767).astype("<i2")
        linear = (mic16.astype(np.int32) - est16).astype("<i2")
        levels = linear_levels_dbfs(mic16.tobytes(), linear.tobytes())
        m, e = mic16.astype(np.float64), est16.astype(np.float64)
        assert abs(filter_gain(*levels) - float(m @ e) / float(e @ e)) < 1e-3
    assert filter_gain(-30.0, -float("inf"), -30.0) is None

"""The SpeexDSP warm-up answer right after the canceller's first trust since start-up: through
PulseAudio (used seed 1201 mix 079, the kiosk's first answer, 4.80 s into the room) the filter had
been trusted for one frame when its estimate was still about half the echo's amplitude
(g = <mic, estimate> / |estimate|^2 = 1.99, then 1.61): its linear output -28.6 dBFS, 6.8 dB over
the estimate, and the cleaned frame -30.7 dBFS, over the bar that had just dropped with the trust.
Double talk (and the level rule, the frame being voice to webrtcvad) paused the answer on its own
echo. What the filter left was correlated with its own estimate (0.45, then 0.40: the echo it fell
short of); a visitor's voice is not (replayed visitor frames in that window: 0.33 at most;
bench/results/warm39-2026-12-06.md). Over the first WARM_UP_TRUSTED_MS of trust since start-up
such a frame is neither loud nor double talk; after it, as before.
"""

from __future__ import annotations

import math

from kiosk.config import VadSettings
from kiosk.core import echo_double_talk
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.helpers import level_frame as frame

# (the same echo-alone frames and start-up as stop 36's warm-up test: same room, speaker, returns)
from tests.unit.test_warm36_warm_up_double_talk import started, trusted_for

PAUSE_MS = VadSettings().barge_in_pause_ms
# (getattr: on the code before it, the tests below fail on what the endpointer does, not on this)
WARM_UP_SHORT_OF_ECHO_CORR = getattr(echo_double_talk, "WARM_UP_SHORT_OF_ECHO_CORR", 0.35)
FAR = -16.8  # what the speaker played at the leak
# s1201/079's two frames (run 1 of hold T1): cleaned dBFS, (linear output, echo estimate, raw
# microphone) dBFS, the linear output's pitch (its own, the reference's), over 3 kHz.
SHORT = (
    (-30.7, (-28.6, -35.4, -26.5), (0.73, 0.69), (-67.2, -73.7)),
    (-28.8, (-31.1, -34.8, -28.2), (0.94, 0.98), (-66.3, -71.8)),
)


def correlation(linear: float, estimate: float, mic: float) -> float:
    lin, est, raw = (10 ** (x / 10) for x in (linear, estimate, mic))
    return ((raw + est - lin) / (2 * est) - 1) * math.sqrt(est / lin)


def most_suspicion(vad: FirstOpinion, endpointer: Endpointer, frames=SHORT, mic_shift: float = 0.0) -> int:
    """The frames in a row (voice to webrtcvad, both opinions, as traced), their raw microphone
    ``mic_shift`` dB louder; the most suspicion they raised."""
    most = 0
    vad.provisional = vad.confirmed = True
    for level, (linear, estimate, raw), pitch, high in frames:
        endpointer.process(
            frame(level),
            FAR,
            linear=(linear, estimate, raw + mic_shift),
            linear_pitch=lambda pitch=pitch: pitch,
            linear_high=high,
        )
        most = max(most, endpointer.suspected_speech_ms)
    vad.provisional = vad.confirmed = False
    endpointer.reset()
    return most


def in_the_window(vad: FirstOpinion) -> Endpointer:
    """Started, trusted for one frame, and s1201/079's first frame held back (main: paused)."""
    endpointer = started(vad)
    trusted_for(endpointer, 1)
    assert most_suspicion(vad, endpointer, SHORT[:1]) == 0
    return endpointer


def test_the_first_trusts_shortfall_does_not_pause_the_warm_up_answer():
    assert [round(correlation(*f[1]), 2) for f in SHORT] == [0.45, 0.4]
    assert all(correlation(*f[1]) >= WARM_UP_SHORT_OF_ECHO_CORR for f in SHORT)
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 1)
    assert most_suspicion(vad, endpointer) < PAUSE_MS  # main: paused at the first (double talk)


def test_each_frame_alone_is_held_back_too():
    """Not only the double-talk path: the cleaned frame is over the bar and voice, and two such
    frames in a row pause by the level rule."""
    for first in (True, False):
        vad = FirstOpinion()
        endpointer = started(vad)
        trusted_for(endpointer, 1)
        assert most_suspicion(vad, endpointer, SHORT[:1] if first else SHORT[1:]) == 0


def test_a_visitor_over_the_echo_in_the_window_still_pauses_the_answer():
    """The same linear output and estimate, the microphone as loud as both apart (a voice not
    correlated with the estimate: g = 1), or louder: double talk pauses the answer at once."""
    linear, estimate, raw = SHORT[0][1]
    apart = 10 * math.log10(10 ** (linear / 10) + 10 ** (estimate / 10))
    for shift in (apart - raw, apart - raw + 1.0):
        vad = FirstOpinion()
        endpointer = in_the_window(vad)
        assert correlation(linear, estimate, raw + shift) < WARM_UP_SHORT_OF_ECHO_CORR
        assert most_suspicion(vad, endpointer, SHORT[:1], mic_shift=shift) >= PAUSE_MS


def test_after_the_first_0_8_s_of_trust_the_frames_are_judged_as_before():
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 39)
    assert most_suspicion(vad, endpointer, SHORT[:1]) == 0  # the 39th trusted frame: in the window
    assert most_suspicion(vad, endpointer, SHORT[:1]) >= PAUSE_MS  # the 40th: as on main


def test_levels_not_of_one_frame_are_judged_as_before():
    """A correlation over 1 (the microphone louder than estimate and linear output added in
    phase): the three levels are not one frame's; not judged by them."""
    vad = FirstOpinion()
    endpointer = in_the_window(vad)
    linear, estimate, raw = SHORT[0][1]
    in_phase = 20 * math.log10(10 ** (linear / 20) + 10 ** (estimate / 20))
    shift = in_phase - raw + 1.0
    assert correlation(linear, estimate, raw + shift) > 1.0
    assert most_suspicion(vad, endpointer, SHORT[:1], mic_shift=shift) >= PAUSE_MS


def test_a_canceller_that_tells_no_raw_level_is_judged_as_before():
    vad = FirstOpinion()
    endpointer = in_the_window(vad)
    level, (linear, estimate, _), pitch, high = SHORT[0]
    vad.provisional = vad.confirmed = True
    endpointer.process(frame(level), FAR, linear=(linear, estimate), linear_pitch=lambda: pitch, linear_high=high)
    assert endpointer.suspected_speech_ms >= PAUSE_MS


def test_after_the_window_a_correlated_loud_frame_pauses_by_the_level_rule_alone():
    """The window is the rule's own, not only the double-talk test's: a frame whose linear output
    is under the double-talk bar (so only the loud test can pause) and correlated with the
    estimate (0.77) is held back in the first 0.8 s of trust and, after it, pauses as on main.
    Its output's pitch is not the answer's (the answer's-own-voice cue stays out of it)."""
    linear_levels = (-41.0, -31.0, -29.0)  # linear output, estimate, raw microphone (dBFS)
    assert correlation(*linear_levels) >= WARM_UP_SHORT_OF_ECHO_CORR
    not_the_answers_pitch = (0.2, 0.9)

    def most(trusted_frames: int) -> int:
        vad = FirstOpinion()
        endpointer = started(vad)
        trusted_for(endpointer, trusted_frames)
        vad.provisional = vad.confirmed = True
        for _ in range(2):
            endpointer.process(frame(-30.7), FAR, linear=linear_levels,
                               linear_pitch=lambda: not_the_answers_pitch, linear_high=SHORT[0][3])
            assert not endpointer._double_talk_now
        return endpointer.suspected_speech_ms

    assert most(10) == 0
    assert most(45) >= PAUSE_MS

"""The echo alone behind a trusted SpeexDSP filter (``EchoGuard._trusted_echo_alone``): through
PulseAudio at -6 dB echo the filter now and then leaked a frame or two of the answer's echo over
the guard's bar while it was trusted (used seed 281 mix 074, the later answer at 13.44-13.46 s:
bench/results/self34-2026-12-05.md cause 1). The filter knew it was echo (its linear output 1.8 /
2.8 dB under its own estimate), the raw microphone held less than the echo alone usually brings
(7.6 / 10.2 dB under the usual return) and the linear output had no pitch the answer lacks;
webrtcvad called both frames voice and the answer paused itself. Such frames are not loud and no
double talk now; a frame with the microphone at the echo's usual return, or with a pitch the answer
lacks, still pauses the answer, and so does the consonant cue.
"""

from __future__ import annotations

import pytest

from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.helpers import level_frame as frame

PAUSE_MS = VadSettings().barge_in_pause_ms
FAR = -19.2  # what the speaker played (the reference the filter holds)
USUAL = -12.5  # the echo's usual raw return (microphone - reference, dB)
# Cause 1's two frames: cleaned dBFS, (linear output, echo estimate, raw microphone) dBFS, the
# linear output's pitch (its own, the reference's at that period).
LEAK = [
    (-44.1, (-42.3, -40.5, -39.4), (0.32, 0.67)),
    (-43.5, (-45.7, -42.9, -42.2), (0.24, 0.68)),
]


def trusted(vad: FirstOpinion) -> Endpointer:
    """A SpeexDSP kiosk in a room at -53.5 dBFS, 1 s into an answer at -19.2 dBFS whose echo
    comes back at the usual -12.5 dB in the raw microphone, -36.3 dB after the canceller."""
    endpointer = Endpointer(vad, VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(250):  # the room alone
        endpointer.process(frame(-53.5), None)
    raw = FAR + USUAL
    for _ in range(50):
        endpointer.process(frame(FAR - 36.3), FAR, linear=(raw - 14.0, raw - 4.0, raw))
        assert endpointer.suspected_speech_ms == 0
    assert endpointer.echo_cancelled_well
    return endpointer


def suspicion(
    vad: FirstOpinion, endpointer: Endpointer, frames: list, far: float | None = FAR
) -> list[int]:
    """The frames' suspicion; webrtcvad's first opinion calls each voice, Silero the second."""
    seen = []
    for k, (level, linear, pitch) in enumerate(frames):
        vad.provisional, vad.confirmed = True, k > 0
        endpointer.process(frame(level), far, linear=linear, linear_pitch=lambda p=pitch: p)
        seen.append(endpointer.suspected_speech_ms)
    return seen


def test_the_trusted_filters_leak_of_the_echo_alone_does_not_pause_the_answer():
    vad = FirstOpinion()
    endpointer = trusted(vad)
    seen = suspicion(vad, endpointer, LEAK)
    assert max(seen) < PAUSE_MS, seen  # main: paused at the second frame


def test_the_double_talk_frame_of_the_echo_alone_does_not_pause_it_either():
    """Cause 2 (s281 mix 074 at 13.20 s, after a room-player underrun): the linear output 2.9 dB
    under its estimate, 10 dB over the bar, the microphone 5.9 dB under the usual return."""
    vad = FirstOpinion()
    endpointer = trusted(vad)
    raw = FAR + USUAL - 5.9
    seen = suspicion(vad, endpointer, [(-46.1, (-36.0, -33.1, raw), (0.51, 0.83))])
    assert seen == [0]  # main: [40] (double talk: paused at once)


@pytest.mark.parametrize(
    "change",
    [
        "raw at the usual return",  # the microphone holds what the echo alone brings: a visitor may add to it
        "raw 2 dB under it",
        "a pitch the answer lacks",
        "over the estimate",
        "the speaker stopped",
    ],
)
def test_a_frame_that_may_hold_a_visitor_still_pauses_the_answer(change):
    vad = FirstOpinion()
    endpointer = trusted(vad)
    frames = []
    for level, (linear, estimate, raw), pitch in LEAK:
        if change == "raw at the usual return":
            raw = FAR + USUAL
        elif change == "raw 2 dB under it":
            raw = FAR + USUAL - 2.0
        elif change == "a pitch the answer lacks":
            pitch = (0.9, 0.2)
        elif change == "over the estimate":
            linear = estimate + 1.0
        elif change == "the speaker stopped":  # (its echo rings: the guard stays up)
            raw -= 10.0
        frames.append((level, (linear, estimate, raw), pitch))
    seen = suspicion(vad, endpointer, frames, None if change == "the speaker stopped" else FAR)
    assert max(seen) >= PAUSE_MS, seen


def test_the_consonant_cue_is_untouched():
    """A consonant over the echo over 3 kHz pauses the answer even in a frame the rule would clear."""
    vad = FirstOpinion()
    endpointer = trusted(vad)
    (level, linear, pitch) = LEAK[0]
    for _ in range(30):  # the band over 3 kHz: the echo's usual level there
        endpointer.process(
            frame(FAR - 36.3),
            FAR,
            linear=(FAR + USUAL - 14.0, FAR + USUAL - 4.0, FAR + USUAL),
            linear_high=(-75.0, -65.0),
        )
    endpointer.process(
        frame(level), FAR, linear=linear, linear_pitch=lambda: pitch, linear_high=(-40.0, -60.0)
    )
    assert endpointer.suspected_speech_ms >= PAUSE_MS

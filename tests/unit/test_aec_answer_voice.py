"""The answer's own voice behind a trusted echo canceller: SpeexDSP's filter now and then falls
10-20 dB behind the echo for a few frames (held-out mix 073 at 7.18 s: a sustained loud vowel,
the linear output within 2 dB of the filter's echo estimate and the cleaned frame 6 dB over the
guard's bar, voiced; a least-squares filter fitted on the seconds before left the echo at the
room's level there). What it leaves repeats where the answer does, so the canceller measures the
linear output's pitch once trusted (``EchoCanceller.linear_pitch``), and such a frame is not loud
(``EchoGuard._answers_own_voice``); a second voice, repeating where the answer does not, still
pauses the answer at once, and so does a visitor at the answer's pitch whose linear output is
louder than the filter's echo estimate.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
from kiosk.config import VadSettings
from tests.unit.helpers import FirstOpinion
from tests.unit.test_aec_double_talk import FAR_DBFS, answering, frame

PAUSE_MS = VadSettings().barge_in_pause_ms
# Mix 073's frames 358-364 (cleaned dBFS, (linear output, echo estimate) dBFS): the bar -42.4.
LEAK = [(-36.1, (-30.7, -29.0)), (-32.7, (-34.0, -28.4)), (-35.1, (-38.5, -28.3)), (-40.7, (-39.0, -28.1))]


@pytest.mark.parametrize(
    "linear_pitch, pauses",
    [
        ((0.92, 0.82), False),  # the answer repeats at that period as strongly: its own voice
        ((0.92, 0.30), True),  # a period the answer lacks: a second voice (as before)
        ((0.40, 0.40), True),  # hardly periodic: the level rules alone (as before)
        (None, True),  # not measured (as before)
    ],
)
def test_a_residual_burst_that_repeats_where_the_answer_does_does_not_pause_it(linear_pitch, pauses):
    vad = FirstOpinion()
    endpointer = answering(vad)
    assert endpointer.echo_cancelled_well
    vad.provisional = vad.confirmed = True  # webrtcvad and Silero both call the echo voice
    seen = []
    measured = None if linear_pitch is None else (lambda: linear_pitch)
    for level, linear in LEAK:
        endpointer.process(frame(level), FAR_DBFS, linear=linear, linear_pitch=measured)
        seen.append(endpointer.suspected_speech_ms)
    assert (max(seen) >= PAUSE_MS) == pauses, seen  # old code: paused at the first frame


def test_a_visitor_at_the_answers_pitch_louder_than_the_echo_estimate_still_pauses_it():
    """A lagging filter leaves part of the echo it estimates; a visitor who talks over the
    answer at its pitch puts more in the microphone than the filter thinks is echo (fresh tuning
    seed 25 mix 080: her first loud frame 5.9 dB over the estimate, pitch 0.87 / 0.84)."""
    vad = FirstOpinion()
    endpointer = answering(vad)
    vad.provisional = vad.confirmed = True
    seen = []
    for _ in range(2):
        endpointer.process(frame(-38.6), FAR_DBFS, linear=(-19.9, -25.8), linear_pitch=lambda: (0.87, 0.84))
        seen.append(endpointer.suspected_speech_ms)
    assert max(seen) >= PAUSE_MS


def test_the_answers_pitch_counts_only_behind_a_trusted_canceller():
    """Not yet trusted, the guard's own rules hold (the bar at the loudest echo return)."""
    vad = FirstOpinion()
    endpointer = answering(vad, residual_db=-12.0)
    assert not endpointer.echo_cancelled_well
    vad.provisional = vad.confirmed = True
    seen = []
    for _ in range(4):
        endpointer.process(frame(-10.0), FAR_DBFS, linear=(-8.0, -20.0), linear_pitch=lambda: (0.92, 0.82))
        seen.append(endpointer.suspected_speech_ms)
    assert max(seen) >= PAUSE_MS


class _Lagging:
    """A filter that removes only part of the echo: its linear output is the microphone at a
    quarter of its amplitude (the suppressor then squashes it)."""

    def __init__(self, frame: int, length: int, rate: int) -> None:
        self.linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        self.linear_output = (np.frombuffer(mic, dtype="<i2") // 4).astype("<i2").tobytes()
        return bytes(len(mic))


def test_the_canceller_measures_its_linear_outputs_pitch_once_trusted():
    rate, n = 16000, 320
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=rate)
    canceller = EchoCanceller(reference, 20, _Lagging, align=False, linear_pitch_min_dbfs=-50.0)
    t = np.arange(n * 40) / rate
    vowel = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in (1, 2, 3))  # the answer at 140 Hz
    answer = (5000 * vowel).astype("<i2")
    reference.played(answer.tobytes())  # (all of it stamped at once: audible from 0 s on)
    seen = []
    for k in range(40):
        now[0] = k * 0.02
        block = answer[k * n : (k + 1) * n].tobytes()
        canceller.pitch_wanted = k < 20  # trusted from frame 20 on
        quiet = k >= 35  # the echo's residual under -50 dBFS: not looked at
        mic = (np.frombuffer(block, dtype="<i2") // (100 if quiet else 2)).astype("<i2").tobytes()
        canceller.process(mic, now[0])
        seen.append(None if canceller.linear_pitch is None else canceller.linear_pitch())
    assert seen[:20] == [None] * 20  # not trusted: the cleaned frame's pitch instead
    for mic_pitch, ref_pitch in seen[21:35]:  # (frame 20 starts the cue on the linear output)
        assert mic_pitch >= 0.9 and ref_pitch >= mic_pitch - 0.05  # the answer's own period
    assert seen[35:] == [None] * 5

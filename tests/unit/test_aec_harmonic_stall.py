"""The answer's own voice where a trusted canceller's filter stalls on the fundamental but still
cancels some of its harmonics: what it leaves is the answer's 2nd or 3rd harmonic, which repeats
at a half or a third of the answer's period, where the reference does not (tuning seed 94 mix 074
at 5.34 s, -6 dB echo: 250 Hz left of an answer at ~130 Hz; held-out seed 261 mix 074's later
answer at 7.88 s, -6 dB: 471 Hz of one at ~151 Hz). Judged at that period only, the frame was a
voice the answer lacks, and it paused the answer. The reference's periodicity at two and three
times the linear output's period counts too, where the output repeats at that period as well
(``echo_cancel.LINEAR_PITCH_HARMONICS``).
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
from kiosk.config import VadSettings
from tests.unit.helpers import FirstOpinion
from tests.unit.test_aec_double_talk import answering

RATE, N = 16000, 320  # 20 ms frames
PAUSE_MS = VadSettings().barge_in_pause_ms
FRAMES, STALL = 40, range(30, 34)


def tone(hz: float, harmonics: tuple[int, ...], amplitude: float = 5000.0) -> np.ndarray:
    t = np.arange(N * FRAMES) / RATE
    return amplitude * sum(np.sin(2 * np.pi * hz * h * t) / h for h in harmonics)


class _Stalling:
    """Cancels most of the echo (its linear output 45 %, squashed 8 times by the suppressor),
    except in the frames :attr:`left` holds: there its linear output is that signal, and the
    suppressor lets it through."""

    left: dict[int, np.ndarray] = {}

    def __init__(self, frame: int, length: int, rate: int) -> None:
        self.linear_output = b""
        self._k = 0

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        k, self._k = self._k, self._k + 1
        if k in self.left:
            linear = self.left[k][k * N : (k + 1) * N].astype("<i2").tobytes()
            self.linear_output = linear
            return linear
        out = (0.45 * np.frombuffer(mic, dtype="<i2")).astype("<i2")
        self.linear_output = out.tobytes()
        return (out // 8).astype("<i2").tobytes()


def hear(mic: np.ndarray, left: np.ndarray, answer: np.ndarray) -> list[int]:
    """A trusted AEC kiosk playing ``answer``; its microphone ``mic``, and in the
    ``STALL`` frames the filter's linear output ``left`` (webrtcvad and Silero call it voice, as
    they did the stalls): suspected speech ms per frame."""
    vad = FirstOpinion()
    endpointer = answering(vad)
    assert endpointer.echo_cancelled_well
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
    _Stalling.left = {k: left for k in STALL}
    canceller = EchoCanceller(reference, 20, _Stalling, align=False)
    reference.played(answer.astype("<i2").tobytes())  # (audible from 0 s on)
    mic = np.concatenate([mic[: 10 * N] / 8, mic[10 * N :]])  # (a soft start: nothing loud before
    seen = []  # the cue has a window of the echo to compare with)
    for k in range(FRAMES):
        now[0] = k * 0.02
        vad.provisional = vad.confirmed = k in STALL
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.app does)
        cleaned = canceller.process(mic[k * N : (k + 1) * N].astype("<i2").tobytes(), now[0])
        endpointer.earcon_echo = canceller.earcon_audible
        endpointer.process(
            cleaned, canceller.reference_dbfs, linear=canceller.linear_levels,
            linear_pitch=canceller.linear_pitch,
        )  # fmt: skip
        seen.append(endpointer.suspected_speech_ms)
    return seen


@pytest.mark.parametrize(
    "answer_hz, harmonic",
    [
        (125.0, 2),  # 64 samples at the cue's 8 kHz, its 2nd harmonic every 32 (seed 94 mix 074)
        (8000 / 60, 3),  # every 20 (s261 mix 074: 17 of 53)
        (8000 / 84, 4),  # every 21
    ],
)
def test_a_stall_that_leaves_one_of_the_answers_harmonics_is_its_own_voice(answer_hz, harmonic):
    """The echo at half the answer; the filter leaves one of its harmonics alone (under the
    microphone and under its own estimate, over the guard's bar): old code paused the answer.
    (A pure tone repeats at every multiple of its period; which one the cue takes is the
    sampling's luck. At these pitches it takes the shortest, as in the stalls.)"""
    answer = tone(answer_hz, (1, 2, 3, 4))
    seen = hear(0.5 * answer, 0.5 * tone(answer_hz, (harmonic,)), answer)
    assert max(seen) < PAUSE_MS, seen


@pytest.mark.parametrize(
    "answer_hz, visitor_hz",
    [
        (125.0, 190.0),  # neither the answer's pitch nor a whole multiple of it
        (125.0, 115.0),  # near it: repeats at the answer's period nearly as well (seed 62 mix 086)
    ],
)
def test_a_visitor_at_a_pitch_the_answer_lacks_still_pauses_it(answer_hz, visitor_hz):
    """The same frames, but the linear output is a visitor as loud as the echo."""
    answer = tone(answer_hz, (1, 2, 3, 4))
    visitor = tone(visitor_hz, (1, 2, 3), 2500.0)
    seen = hear(0.5 * answer + visitor, visitor, answer)
    assert max(seen[STALL.start : STALL.stop]) >= PAUSE_MS, seen

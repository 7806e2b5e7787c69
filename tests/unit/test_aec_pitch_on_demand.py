"""The linear output's pitch behind a trusted canceller is measured on demand (issue 10, canceller
CPU): it decides only whether a frame the endpointer would count as loud (or as double talk) is
the answer's own voice, and most frames behind a trusted filter are too quiet for that. Measured
on every frame over ``vad.min_level_dbfs`` it cost ~45 % more canceller CPU (lobby tuning split:
12.2 -> 17.8 ms per s of playback). Asked for or not, a frame's levels are the same.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio import echo_pitch
from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
from kiosk.audio.echo_pitch import PitchCue
from kiosk.config import VadSettings
from tests.unit.helpers import FirstOpinion
from tests.unit.test_aec_double_talk import answering

RATE, N = 16000, 320  # 20 ms frames
PAUSE_MS = VadSettings().barge_in_pause_ms


def vowel(hz: float, frames: int, amplitude: float = 5000.0) -> np.ndarray:
    t = np.arange(N * frames) / RATE
    return amplitude * sum(np.sin(2 * np.pi * hz * h * t) / h for h in (1, 2, 3))


class _Lagging:
    """A filter that leaves 45 % of the echo in its linear output (its estimate is the other
    55 %: the output 1.7 dB under it); the suppressor divides that by ``squash``."""

    squash = 8

    def __init__(self, frame: int, length: int, rate: int) -> None:
        self.linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        linear = (0.45 * np.frombuffer(mic, dtype="<i2")).astype("<i2")
        self.linear_output = linear.tobytes()
        return (linear // self.squash).astype("<i2").tobytes()


@pytest.fixture
def autocorrelations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of pitch autocorrelation computed (microphone and reference windows alike)."""
    rows: list[int] = []
    real = echo_pitch._normalized_autocorrelation

    def counted(x: np.ndarray, n_fft: int) -> np.ndarray:
        rows.append(x.shape[0])
        return real(x, n_fft)

    monkeypatch.setattr(echo_pitch, "_normalized_autocorrelation", counted)
    return rows


def hear(echo_gains: list[float], squash: list[int], rows: list[int]) -> list[tuple[int, int]]:
    """A trusted AEC kiosk answering at 140 Hz; per frame the answer's echo at ``echo_gains`` of
    it, its linear residual squashed by ``squash`` (as the app feeds the canceller's numbers to
    the endpointer): (suspected speech ms, autocorrelation rows computed for the frame)."""
    vad = FirstOpinion()
    endpointer = answering(vad)
    assert endpointer.echo_cancelled_well
    vad.provisional = vad.confirmed = True  # webrtcvad and Silero call the residual voice
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20, _Lagging, align=False, linear_pitch_min_dbfs=-50.0)
    answer = vowel(140, len(echo_gains))
    reference.played(answer.astype("<i2").tobytes())  # (audible from 0 s on)
    seen = []
    for k, (gain, s) in enumerate(zip(echo_gains, squash, strict=True)):
        now[0] = k * 0.02
        before = sum(rows)
        _Lagging.squash = s
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.app does)
        mic = (gain * answer[k * N : (k + 1) * N]).astype("<i2").tobytes()
        cleaned = canceller.process(mic, now[0])
        endpointer.earcon_echo = canceller.earcon_audible
        endpointer.process(
            cleaned, canceller.reference_dbfs, linear=canceller.linear_levels, linear_pitch=canceller.linear_pitch
        )
        seen.append((endpointer.suspected_speech_ms, sum(rows) - before))
    return seen


def test_quiet_frames_behind_a_trusted_canceller_cost_no_pitch(autocorrelations):
    """The echo's linear residual at -43 dBFS (over vad.min_level_dbfs: the old code measured
    its pitch in every frame), squashed to -61 by the suppressor: never loud, never double
    talk, so nothing asks for its pitch."""
    seen = hear([1 / 8] * 30, [8] * 30, autocorrelations)
    assert [ms for ms, _ in seen] == [0] * 30
    assert autocorrelations == []  # old code: a batch every frame (its window, the new reference)


def test_a_loud_residual_burst_still_has_its_pitch_measured_and_is_the_answers_own_voice(autocorrelations):
    """The filter falls behind on a loud vowel (held-out mix 073 at 7.18 s): the residual gets
    through the suppressor, over the guard's bar and voiced. Its pitch is measured, in those
    frames only, and it is the answer's own: the answer plays on (without the pitch it paused
    at the first frame: tests/unit/test_aec_answer_voice.py)."""
    gains = [1 / 8] * 20 + [1 / 2] * 4 + [1 / 8] * 6
    squash = [8] * 20 + [1] * 4 + [8] * 6
    seen = hear(gains, squash, autocorrelations)
    assert [rows > 0 for _, rows in seen] == [False] * 20 + [True] * 4 + [False] * 6
    assert seen[20][1] == 6  # the burst's first frame: its window and the reference's last 5
    assert max(ms for ms, _ in seen) < PAUSE_MS


def test_measured_on_demand_the_levels_are_those_measured_every_frame():
    """Asked for in some frames only, later than the frame or twice, the levels are exactly
    those :meth:`PitchCue.pair` gives when every frame is measured (the reference's windows
    skipped meanwhile are computed when a later frame needs them)."""
    rng = np.random.default_rng(7)
    answer = vowel(140, 60) + 300 * rng.standard_normal(N * 60)
    mic = 0.3 * np.roll(answer, 40) + np.concatenate([np.zeros(N * 30), vowel(230, 30, 2000)])
    frames = [(mic[k * N : (k + 1) * N].astype("<i2").tobytes(), answer[k * N : (k + 1) * N].astype("<i2").tobytes()) for k in range(60)]  # fmt: skip
    every, asked = PitchCue(N, -60.0), PitchCue(N, -60.0)
    eager = [every.pair(m, r, 0.0, 2) for m, r in frames]
    pending = [asked.pair_on_demand(m, r, 0.0, 2) for m, r in frames]
    late = {k: pending[k]() for k in range(0, 60, 7)}  # asked after the whole run: still the same
    assert late == {k: eager[k] for k in late}
    assert asked.frames_measured == len(late)
    assert pending[7]() is late[7] and asked.frames_measured == len(late)  # measured once
    assert PitchCue(N, -30.0).pair_on_demand(*frames[0], -40.0) is None  # too quiet: nothing to ask

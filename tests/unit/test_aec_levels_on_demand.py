"""What the canceller measures for the endpointer is measured when the endpointer reads it (issue
10, canceller CPU): the linear output's level over 3 kHz in every frame the consonant cue hears,
the echo estimate's there only for a frame whose output stands out (before: one two-row FFT in
every trusted frame, ~30 us); the cleaned frame's pitch before trust only for a frame the guard
judges by it (before: every frame from -30 dBFS); the reference's decimation only for a frame
whose pitch is measured. The levels are those measured every frame (the same numbers: replays,
see the commit).
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio import echo_pitch
from kiosk.audio.echo_cancel import EchoCanceller, EchoReference, high_band_levels_db
from kiosk.audio.linear_levels import HighBandLevels, frame_samples
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.test_aec_double_talk import answering

RATE, N = 16000, 320  # 20 ms frames
PAUSE_MS = VadSettings().barge_in_pause_ms


def vowel(hz: float, frames: int, amplitude: float) -> np.ndarray:
    t = np.arange(N * frames) / RATE
    return amplitude * sum(np.sin(2 * np.pi * hz * h * t) / h for h in (1, 2, 3))


def hiss(frames: int, rms: float, seed: int = 1) -> np.ndarray:
    """Noise over 4 kHz only (a visitor's "s")."""
    x = np.random.default_rng(seed).standard_normal(N * frames)
    x = np.fft.irfft(np.where(np.fft.rfftfreq(x.size, 1 / RATE) >= 4000, np.fft.rfft(x), 0), x.size)
    return x / np.sqrt(np.mean(x**2)) * rms


class _Leaky:
    """Leaves a tenth of the echo in its linear output, and the visitor (``visitor``, set per
    frame) whole: its echo estimate is the other nine tenths. The suppressor divides by 8."""

    visitor = np.zeros(N)

    def __init__(self, frame: int, length: int, rate: int) -> None:
        self.linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        echo = np.frombuffer(mic, dtype="<i2") - _Leaky.visitor
        linear = (0.1 * echo + _Leaky.visitor).astype("<i2")
        self.linear_output = linear.tobytes()
        return (linear // 8).astype("<i2").tobytes()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Frame spectra computed (rows of 320-sample real FFTs: the high band's, not the pitch's
    512-point ones) and reference frames decimated for the pitch cue."""
    seen = {"spectra": 0, "decimated": 0}
    rfft, decimated = np.fft.rfft, echo_pitch._decimated

    def counted_rfft(a, n=None, *args, **kw):  # type: ignore[no-untyped-def]
        if n is None and np.shape(a)[-1] == N:
            seen["spectra"] += int(np.prod(np.shape(a)[:-1], dtype=int))
        return rfft(a, n, *args, **kw)

    def counted_decimated(pcm: bytes) -> np.ndarray:
        seen["decimated"] += 1
        return decimated(pcm)

    monkeypatch.setattr(np.fft, "rfft", counted_rfft)
    monkeypatch.setattr(echo_pitch, "_decimated", counted_decimated)
    return seen


def trusted_answer(visitor: np.ndarray, counted: dict[str, int]) -> list[tuple[int, int, int]]:
    """A trusted AEC kiosk answering at 140 Hz (with a little broadband noise) at -18 dBFS, its
    echo as loud, a ``_Leaky`` filter, and ``visitor`` added (as the app feeds the canceller's
    numbers to the endpointer): per frame (suspected speech ms, spectra, decimations)."""
    vad = FirstOpinion()
    endpointer = answering(vad)
    assert endpointer.echo_cancelled_well
    frames = visitor.size // N
    answer = vowel(140, frames, 5000.0) + 50 * np.random.default_rng(2).standard_normal(N * frames)
    now = [0.01]  # (the reference lined up with the frames: taken REFERENCE_LEAD_MS later)
    reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20, _Leaky, align=False)
    reference.played(answer.astype("<i2").tobytes())
    seen = []
    for k in range(frames):
        now[0] = k * 0.02
        before = dict(counted)
        _Leaky.visitor = visitor[k * N : (k + 1) * N].astype("<i2")
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.app does)
        mic = (answer[k * N : (k + 1) * N] + _Leaky.visitor).astype("<i2").tobytes()
        cleaned = canceller.process(mic, now[0])
        endpointer.earcon_echo = canceller.earcon_audible
        endpointer.process(
            cleaned, canceller.reference_dbfs, linear=canceller.linear_levels,
            linear_pitch=canceller.linear_pitch, linear_high=canceller.linear_high_levels,
        )  # fmt: skip
        spectra, decimated = (counted[key] - before[key] for key in ("spectra", "decimated"))
        seen.append((endpointer.suspected_speech_ms, spectra, decimated))
    return seen


def test_an_ordinary_trusted_frame_costs_one_spectrum_and_no_decimation(counted):
    """The echo alone: the consonant cue reads the linear output's level over 3 kHz (its recent
    median needs every frame's), never the estimate's; no pitch, no reference decimated."""
    seen = trusted_answer(np.zeros(N * 30), counted)
    assert seen == [(0, 1, 0)] * 30  # old: 2 spectra (output and microphone) and 1 decimation


def test_a_frame_whose_high_band_stands_out_has_its_estimate_measured_too(counted):
    """A visitor's "s" 50 dB over the linear output's recent level over 3 kHz: the estimate's
    level there is read as well (a second spectrum), and the answer pauses at once."""
    visitor = np.concatenate([np.zeros(N * 20), hiss(1, 1500.0), np.zeros(N * 4)])
    seen = trusted_answer(visitor, counted)
    assert [spectra for _, spectra, _ in seen] == [1] * 20 + [2] + [1] * 4
    assert seen[20][0] >= PAUSE_MS


def cold_answer(visitor_dbfs: float, counted: dict[str, int]) -> list[tuple[int, int, bool]]:
    """A canceller not trusted yet (the first answer, at -30 dBFS, its echo cancelled away by a
    passing filter: the cleaned frame is the visitor alone) and a visitor at ``visitor_dbfs``,
    voiced, over 1 s: per frame (suspected speech ms, pitch autocorrelation rows, in a turn)."""

    class Passing:
        linear_output = b""

        def __init__(self, *_: int) -> None:
            pass

        def cancel(self, mic: bytes, ref: bytes) -> bytes:
            return mic

    vad = FirstOpinion()
    endpointer = Endpointer(vad, VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(250):  # the room alone
        endpointer.process(np.full(N, 58, dtype="<i2").tobytes(), None)  # -55 dBFS
    endpointer.guarded = True
    rows = [0]
    real = echo_pitch._normalized_autocorrelation

    def autocorrelation(x: np.ndarray, n_fft: int) -> np.ndarray:
        rows[0] += x.shape[0]
        return real(x, n_fft)

    echo_pitch._normalized_autocorrelation = autocorrelation  # type: ignore[assignment]
    try:
        now = [0.0]
        reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
        canceller = EchoCanceller(reference, 20, Passing, align=False)
        answer = vowel(140, 60, 32768 * 10 ** (-30 / 20) / 0.87)  # (-30 dBFS)
        reference.played(answer.astype("<i2").tobytes())
        voice = vowel(230, 50, 32768 * 10 ** (visitor_dbfs / 20) / 0.87)
        vad.provisional = vad.confirmed = True
        seen = []
        for k in range(50):
            now[0] = k * 0.02
            before = rows[0]
            canceller.pitch_wanted = not endpointer.echo_cancelled_well
            cleaned = canceller.process(voice[k * N : (k + 1) * N].astype("<i2").tobytes(), now[0])
            endpointer.process(cleaned, canceller.reference_dbfs, pitch=canceller.frame_pitch)
            seen.append((endpointer.suspected_speech_ms, rows[0] - before, endpointer.in_speech))
    finally:
        echo_pitch._normalized_autocorrelation = real  # type: ignore[assignment]
    assert not endpointer.echo_cancelled_well
    return seen


def test_before_trust_a_visitor_over_the_bar_costs_no_pitch(counted):
    """At -12 dBFS she is over the guard's bar (the answer's -30 dBFS + the 0 dB return assumed
    while learning + 6 dB) from her first frame: loud without her pitch, then a turn. Nothing
    asks for the pitch (old: measured in every frame from 300 ms of playback on)."""
    seen = cold_answer(-12.0, counted)
    assert max(ms for ms, _, _ in seen) >= PAUSE_MS and seen[-1][2]  # she is heard, her turn
    assert [rows for _, rows, _ in seen] == [0] * 50


def test_before_trust_a_visitor_under_the_bar_has_her_pitch_measured(counted):
    """At -27 dBFS she is under the bar: her pitch (not the answer's) is what makes her heard,
    measured in every frame from 300 ms of playback on until her turn opens (old: on after it)."""
    seen = cold_answer(-27.0, counted)
    turn = next(k for k, (_, _, in_speech) in enumerate(seen) if in_speech)
    assert all(rows > 0 for _, rows, _ in seen[14:turn]) and turn > 20
    assert not any(rows for _, rows, _ in seen[:14] + seen[turn + 1 :])
    assert max(ms for ms, _, _ in seen) >= PAUSE_MS


def test_the_levels_read_late_or_in_any_order_are_those_measured_at_once():
    """:class:`HighBandLevels` read estimate first, or twice, gives the very numbers of measuring
    both in one pass (``high_band_levels_db``, the form the canceller measured in before)."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        mic = (rng.standard_normal(N) * rng.uniform(10, 8000)).astype("<i2").tobytes()
        linear = (rng.standard_normal(N) * rng.uniform(1, 3000)).astype("<i2").tobytes()
        both = high_band_levels_db(mic, linear)
        spent: list[float] = []
        levels = HighBandLevels(frame_samples(mic), frame_samples(linear), spent.append)
        assert (levels[1], levels[0], levels[1]) == (both[1], both[0], both[1])
        assert tuple(levels) == both and len(spent) == 2  # each measured once

"""Before the echo canceller is trusted (a first answer: the filter still converges, the guard
has not yet followed 200 ms of what it leaves), the bar stands at the loudest echo return heard
and a visitor under it was learned as echo, raising it further: lobby tuning first answers at
-12 dB missed a barge-in or heard it 1.4 s late. Until trusted, the canceller now also measures
each cleaned frame's pitch against the reference it was given (``EchoCanceller.frame_pitch``),
and a voice the answer lacks pauses the answer, as the guard's pitch cue does without AEC."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
from kiosk.audio.wav import read_wav_mono
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer

from .test_echo_cancel import FIXTURES, FRAME, RATE, _need_speex, _voiced, db, i16, room, speech


class _FirstOpinion:
    """The crude energy detector of test_echo_cancel, as webrtcvad's quick first opinion."""

    provisional = False

    def __call__(self, frame: bytes) -> bool:
        self.provisional = _voiced(frame)
        return self.provisional


def first_answer_mix(
    visitor_at_s: float | None,
    echo_db: float,
    answer_dbfs: float,
    visitor_db: float,
    visitor_against_echo: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 4 s answer at ``answer_dbfs`` echoing at ``echo_db`` in a -60 dBFS room, and a visitor
    (another voice, ``visitor_db`` against the answer, or against its echo) from
    ``visitor_at_s``: the answer, the microphone and the speaker's blocks (int16), the room."""
    far = speech(4.0)
    far *= 10 ** ((answer_dbfs + 20 * np.log10(32768) - db(far)) / 20)
    echo = np.convolve(np.concatenate([np.zeros(int(0.02 * RATE)), far]), room(5, echo_db))[: far.size]
    noise = np.random.default_rng(1).standard_normal(far.size) * 10 ** (-60 / 20) * 32768
    mic = echo + noise
    if visitor_at_s is not None:
        visitor = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", RATE).astype(np.float64)
        against = echo if visitor_against_echo else far
        visitor *= 10 ** ((db(against) - db(visitor) + visitor_db) / 20)
        at = int(visitor_at_s * RATE)
        mic[at : at + visitor.size] += visitor[: far.size - at]
    return far, i16(mic), i16(far), noise


def cold_front_end() -> tuple[list[float], EchoReference, EchoCanceller, VadSettings, Endpointer]:
    """A cold canceller and the endpointer behind it, on a settable clock (``now[0]``)."""
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20)
    endpointer = Endpointer(_FirstOpinion(), settings := VadSettings(), 20)
    endpointer.echo_relearn = True
    return now, reference, canceller, settings, endpointer


def _first_answer(
    visitor_at_s: float | None, answer_dbfs: float = -20.0, visitor_db: float = -6.0
) -> tuple[list[float], list[bool]]:
    """A cold canceller; an answer at ``answer_dbfs`` echoing at -12 dB in a -60 dBFS room; a
    visitor (another voice, ``visitor_db`` against the answer) from ``visitor_at_s``. The
    answer's pauses (s) and, per frame, whether the canceller was trusted."""
    far, mic16, ref16, noise = first_answer_mix(visitor_at_s, -12.0, answer_dbfs, visitor_db)
    now, reference, canceller, settings, endpointer = cold_front_end()
    for _ in range(100):  # the room alone, 2 s
        endpointer.process(i16(noise[:FRAME]).tobytes(), None)
    pauses, trusted, held = [], [], False
    for k in range(far.size // FRAME):
        now[0] = k * 0.02
        reference.played(ref16[k * FRAME : (k + 1) * FRAME].tobytes())
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.app does)
        frame = canceller.process(mic16[k * FRAME : (k + 1) * FRAME].tobytes(), now[0])
        endpointer.guarded = True
        endpointer.earcon_echo = canceller.earcon_audible
        endpointer.process(
            frame, canceller.reference_dbfs, linear=canceller.linear_levels,
            pitch=getattr(canceller, "frame_pitch", None),
        )  # fmt: skip
        pause = endpointer.suspected_speech_ms >= settings.barge_in_pause_ms
        if pause and not held:
            pauses.append(round(k * 0.02, 2))
        held = pause
        trusted.append(endpointer.echo_cancelled_well)
    canceller.close()
    return pauses, trusted


@pytest.mark.parametrize("visitor_at_s", [0.8, 1.2])
def test_before_the_canceller_is_trusted_a_second_voice_pauses_the_answer(visitor_at_s):
    """A visitor 9 dB under a loud answer (as loud as its raw echo, -23 dBFS) while the canceller
    still learns: the bar (the loudest echo return heard, +6 dB) is over her, but her pitch is
    not the answer's."""
    _need_speex()
    pauses, trusted = _first_answer(visitor_at_s, answer_dbfs=-14.0, visitor_db=-9.0)
    assert not any(trusted[: int((visitor_at_s + 0.3) / 0.02)])  # still learning
    assert pauses and visitor_at_s <= pauses[0] <= visitor_at_s + 0.3, pauses  # old: none


def test_the_pitch_cue_adds_no_pause_to_the_first_answers_echo(monkeypatch):
    """The echo alone: the same pauses as without the cue (none of its own; this test's crude
    energy detector calls a leaking residual voice twice, 2 s in, with or without it), and
    none over the answer's first 300 ms, where a cold filter's output is no echo-less signal
    yet (measured from the first frame, the cue paused the answer 180 ms in)."""
    _need_speex()
    with_cue, trusted = _first_answer(None, answer_dbfs=-14.0)
    assert any(trusted)  # the canceller does become trusted (its pitch is then not looked at)
    monkeypatch.setattr(EchoCanceller, "judges_output_pitch", False)
    assert with_cue == _first_answer(None, answer_dbfs=-14.0)[0]
    assert all(p > 1.0 for p in with_cue), with_cue


def test_the_canceller_measures_pitch_from_300_ms_of_playback_on_while_wanted():
    from kiosk.audio.echo_cancel import PITCH_AFTER_MS
    from kiosk.audio.echo_level import EchoLevelTap

    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20, lambda *_: _Pass(), align=False)
    n = 30
    t = np.arange(FRAME * n) / RATE
    voice = i16(8000 * np.sign(np.sin(2 * np.pi * 190 * t)))  # a pitch at 190 Hz
    answer = i16(6000 * np.sin(2 * np.pi * 1234 * t + 3 * np.sin(2 * np.pi * 7 * t)))  # none there
    seen = []
    for k in range(n):
        now[0] = k * 0.02
        reference.played(answer[k * FRAME : (k + 1) * FRAME].tobytes())
        canceller.pitch_wanted = k < 20
        canceller.process(voice[k * FRAME : (k + 1) * FRAME].tobytes(), now[0])
        seen.append(None if canceller.frame_pitch is None else canceller.frame_pitch())
    first = PITCH_AFTER_MS // 20 - 1  # the frame that completes 300 ms of playback
    assert seen[:first] == [None] * first  # a cold filter's first output: not judged
    for mic, ref in seen[first:20]:
        assert mic >= 0.9 and mic - ref >= 0.3  # her pitch, not the answer's
    assert seen[20:] == [None] * 10  # trusted: nothing measured
    assert not EchoLevelTap.judges_output_pitch  # (the guard's tap judges the raw frame itself)


class _Pass:
    linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        return mic


class _Voiced:
    provisional = True

    def __call__(self, frame: bytes) -> bool:
        return True


def _frame(dbfs: float) -> bytes:
    return i16(np.full(FRAME, 32768 * 10 ** (dbfs / 20))).tobytes()


@pytest.mark.parametrize(
    "echo_dbfs, pitch, pauses",
    [
        (-17.0, (0.9, 0.1), True),  # learning (return -12 dB): her own pitch pauses (old: not)
        (-17.0, (0.9, 0.8), False),  # the answer's pitch: no
        (-17.0, (0.5, 0.1), False),  # too weak a pitch: no
        (-26.0, (0.9, 0.1), False),  # trusted (return -21 dB): the level rules judge, not pitch
    ],
)
def test_the_endpointer_counts_pitch_behind_a_canceller_only_until_it_is_trusted(echo_dbfs, pitch, pauses):
    """A frame at -25 dBFS, under the guard's bar either way (loud answer at -5 dBFS: bar
    -5 - 12 + 6 while learning, -5 - 21 + 6 once trusted), voiced."""
    endpointer = Endpointer(_Voiced(), VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(100):  # the room alone
        endpointer.process(_frame(-60.0), None)
    endpointer.guarded = True
    for _ in range(40):
        endpointer.process(_frame(echo_dbfs), -5.0)
    assert endpointer.echo_cancelled_well == (echo_dbfs < -25)
    assert endpointer._guard_floor_dbfs(-5.0) > -25.0
    seen = []
    for _ in range(3):
        endpointer.process(_frame(-25.0), -5.0, pitch=pitch)
        seen.append(endpointer.suspected_speech_ms)
    assert (seen[-1] >= VadSettings().barge_in_pause_ms) == pauses, seen


def test_the_pipelines_canceller_measures_pitch_from_the_guards_minimum_level():
    """The guard counts no frame under ``vad.barge_in_min_level_dbfs``; the canceller does not
    measure quieter ones, and measures all from there (an installer's -36 dBFS too)."""
    from kiosk.audio.echo_cancel import echo_canceller_for
    from kiosk.audio.playback import PlaybackBuffer

    _need_speex()
    canceller = echo_canceller_for("speex", PlaybackBuffer(24000), lambda: 0.0, lambda: 0.0, 20, -36.0)
    try:
        assert canceller is not None and canceller._pitch is not None
        # (one cue for the cleaned output's pitch and, once trusted, the linear output's)
        assert canceller._pitch_min_dbfs == -36.0  # old: no pitch measured at all
        assert canceller._pitch.min_mic_dbfs <= -36.0
    finally:
        if canceller is not None:
            canceller.close()

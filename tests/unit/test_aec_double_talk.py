"""Double talk behind a trusted echo canceller: the canceller's residual suppression squashes a
visitor's first loud frame with the echo (lobby tuning mix 084: -28 dBFS out of the linear filter,
-45 after suppression, and webrtcvad called it unvoiced), so the endpointer also judges the
filter's linear output against the filter's own echo estimate. That frame alone pauses the
answer, and so does a loud voiced frame whose linear output is well over the bar; the echo
alone, however loud its linear residual, does not, nor a leaking residual just over the bar.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.helpers import level_frame as frame

FAR_DBFS = -17.0  # what the speaker plays


def answering(
    vad: FirstOpinion | None = None,
    residual_db: float = -32.0,
    *,
    linear: tuple[float, ...] | None = None,
    linear_high: tuple[float, float] | None = None,
) -> Endpointer:
    """An AEC kiosk in a room at -55 dBFS, playing an answer whose echo it has followed for
    0.6 s: the suppressed output sits ``residual_db`` under what plays; the linear filter's
    levels are ``linear`` (default: its output 12 dB over the suppressed one and 10 dB under
    its echo estimate), over 3 kHz ``linear_high``."""
    endpointer = Endpointer(vad or FirstOpinion(), VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(250):  # the room alone
        endpointer.process(frame(-55.0), None)
    endpointer.guarded = True
    echo = FAR_DBFS + residual_db
    levels = linear or (echo + 12.0, echo + 22.0)
    for _ in range(30):
        endpointer.process(frame(echo), FAR_DBFS, linear=levels, linear_high=linear_high)
        assert endpointer.suspected_speech_ms == 0
    return endpointer


def test_a_visitors_first_frame_in_the_linear_output_pauses_the_answer_at_once():
    vad = FirstOpinion()
    endpointer = answering(vad)
    assert endpointer.echo_cancelled_well
    # The suppressor left -45 dBFS and webrtcvad hears no voice in it; the linear output
    # holds the visitor at -28 dBFS, over the filter's echo estimate (-36).
    endpointer.process(frame(-45.0), FAR_DBFS, linear=(-28.0, -36.0))
    assert endpointer.suspected_speech_ms >= VadSettings().barge_in_pause_ms  # old: 0
    assert not endpointer.in_speech  # a pause, not a turn: the onset still needs voice
    # It stays paused over the gap to the next syllable (SUSPECT_GAP_MS), then resumes.
    for _ in range(9):
        endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0))
        assert endpointer.suspected_speech_ms > 0
    endpointer.process(frame(-49.0), FAR_DBFS, linear=(-37.0, -27.0))
    assert endpointer.suspected_speech_ms == 0


@pytest.mark.parametrize(
    "linear",
    [
        (-24.0, -13.0),  # -6 dB echo (mix 082): the linear residual 25 dB over the bar, 11 under its estimate
        (-44.0, -46.0),  # over its estimate, but within the margin over the bar
    ],
)
def test_the_echo_alone_in_the_linear_output_does_not_pause_the_answer(linear):
    vad = FirstOpinion()
    endpointer = answering(vad)
    for _ in range(50):
        endpointer.process(frame(-49.0), FAR_DBFS, linear=linear)
        assert endpointer.suspected_speech_ms == 0


def test_double_talk_waits_for_a_trusted_canceller():
    """Unconverged (the suppressed residual only 12 dB under what plays), the linear output
    says little: a frame that would be double talk behind a trusted canceller does not pause."""
    vad = FirstOpinion()
    endpointer = answering(vad, residual_db=-12.0)
    assert not endpointer.echo_cancelled_well
    endpointer.process(frame(-45.0), FAR_DBFS, linear=(-10.0, -20.0))
    assert endpointer.suspected_speech_ms == 0


@pytest.mark.parametrize(
    "linear, want",
    [
        ((-14.0, -4.0), [40, 40, 60]),  # the linear output 19 dB over the bar: at once (old: 0, 20, 40)
        ((-39.0, -27.0), [0, 20, 40]),  # a residual just over the bar, linear too: 3 frames as before
        (None, [0, 20, 40]),
    ],
)
def test_a_loud_voiced_frame_with_the_linear_output_well_over_the_bar_pauses_at_once(linear, want):
    """webrtcvad's first opinion alone (Silero not yet agreeing) on loud frames: behind a
    trusted canceller, a frame that is loud voice after suppression and whose linear output is
    well over the bar too pauses the answer (lobby seed 5 mix 086: 160 -> 140 ms); a leaking
    residual just over the bar, its linear output too (seed 4's first answers at -6 dB: 0.6-4 dB
    over), needs a frame more than ``vad.barge_in_pause_ms``, as without the linear levels."""
    vad = FirstOpinion()
    endpointer = answering(vad)
    vad.provisional = True
    seen = []
    for _ in range(3):
        endpointer.process(frame(-35.0), FAR_DBFS, linear=linear)  # the bar: -43 dBFS
        seen.append(endpointer.suspected_speech_ms)
    assert seen == want


def test_the_canceller_reports_its_linear_output_and_echo_estimate():
    from kiosk.audio.echo_cancel import linear_levels_dbfs

    class HalfFilter:
        """Removes half the microphone's amplitude; the suppressor then squashes the rest."""

        def __init__(self, frame: int, length: int, rate: int) -> None:
            self.linear_output = b""

        def cancel(self, mic: bytes, ref: bytes) -> bytes:
            self.linear_output = (np.frombuffer(mic, dtype="<i2") // 2).astype("<i2").tobytes()
            return bytes(len(mic))

    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=16000)
    canceller = EchoCanceller(reference, 20, HalfFilter, align=False)
    mic = frame(-20.0)
    assert canceller.process(mic, 0.0) == mic and canceller.linear_levels is None  # nothing played
    now[0] = 0.02
    reference.played(frame(-20.0) * 2)
    canceller.process(mic, 0.02)
    linear, estimate, microphone = canceller.linear_levels
    assert linear == pytest.approx(-26.0, abs=0.1) and estimate == pytest.approx(-26.0, abs=0.1)
    assert microphone == pytest.approx(-20.0, abs=0.01)
    assert linear_levels_dbfs(mic, bytes(len(mic))) == (
        -np.inf, pytest.approx(-20.0, abs=0.01), pytest.approx(-20.0, abs=0.01)
    )


@pytest.mark.parametrize("canceller_kept", [True, False])
def test_a_reload_that_keeps_the_canceller_keeps_its_trust(canceller_kept: bool) -> None:
    """SIGHUP keeps the adapted canceller (kiosk.daemon), so the new endpointer must not start
    over as if it were cold: the visitor's first frame in the linear output still pauses."""
    old = answering(FirstOpinion())
    assert old.echo_cancelled_well
    new = Endpointer(FirstOpinion(), VadSettings(), 20)
    new.echo_relearn = True
    new.carry_room(old, canceller_kept=canceller_kept)
    assert new.echo_cancelled_well is canceller_kept
    new.guarded = True
    new.process(frame(-45.0), FAR_DBFS, linear=(-28.0, -36.0))
    assert (new.suspected_speech_ms > 0) is canceller_kept

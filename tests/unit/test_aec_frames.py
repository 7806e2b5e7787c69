"""With the in-process canceller the echo return is learned per 20 ms (over the same 0.5 s, and
no faster, on 10 ms frames), and a visitor's first quiet syllables, learned as echo, do not undo
the trust in the canceller.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer


def frame(frame_ms: int, dbfs: float) -> bytes:
    return np.full(16 * frame_ms, round(32768 * 10 ** (dbfs / 20)), dtype="<i2").tobytes()


def aec_endpointer(frame_ms: int, is_speech=lambda f: False) -> Endpointer:
    endpointer = Endpointer(is_speech, VadSettings(), frame_ms)
    endpointer.echo_relearn = True
    endpointer.guarded = True
    return endpointer


def test_the_echo_return_is_followed_over_the_same_time_on_10_ms_frames():
    """300 ms of a poorly cancelled echo (-25 dB), then 300 ms of a well cancelled one (-40 dB):
    the window (0.5 s) still holds the poor stretch, on 20 ms frames and on 10 ms frames alike
    (before, 10 ms frames followed it over 250 ms only and already trusted the -40 dB)."""
    learned = {}
    for frame_ms in (20, 10):
        endpointer = aec_endpointer(frame_ms)
        n = 300 // frame_ms
        for mic_dbfs in [-45.0] * n + [-60.0] * n:  # the speaker plays at -20 dBFS
            endpointer.process(frame(frame_ms, mic_dbfs), -20.0)
        learned[frame_ms] = endpointer.echo_return_db
    assert learned[20] == pytest.approx(-25.0, abs=0.2)
    assert learned[10] == pytest.approx(learned[20], abs=0.2)


class Voice:
    """webrtcvad and Silero both hear voice in every frame."""

    provisional = True

    def __call__(self, frame: bytes) -> bool:
        return True


@pytest.mark.parametrize("frame_ms", [20, 10])
def test_a_visitors_first_quiet_syllables_do_not_undo_the_trust_in_the_canceller(frame_ms):
    """Adapted (the residual echo 25 dB under what plays), a visitor starts quietly: the first
    frames sit under the bar and are learned as echo; one of them over the trusted bound
    (-20 dB) used to undo the trust, the loudest frame became the echo return, and the bar
    chased the rising voice up (lobby: a barge-in never heard; on 10 ms frames, learned per
    frame, twice as fast). Only the high percentile of the window undoes the trust now, and
    10 ms frames are learned in pairs; the louder syllables clear the bar."""
    endpointer = aec_endpointer(frame_ms, Voice())
    per_step = 20 // frame_ms
    for _ in range(25 * per_step):
        endpointer.process(frame(frame_ms, -45.0), -20.0)  # the residual echo: -25 dB
    assert endpointer.echo_cancelled_well
    assert endpointer.echo_return_db == pytest.approx(-25.0, abs=0.2)
    for return_db in (-22.0, -19.5, -17.0, -14.5, -12.0):  # the visitor, 2.5 dB up per 20 ms
        for _ in range(per_step):
            endpointer.process(frame(frame_ms, -20.0 + return_db), -20.0)
    assert endpointer.echo_cancelled_well
    assert endpointer.echo_return_db == pytest.approx(-25.0, abs=0.2)
    assert endpointer.in_speech or endpointer.suspected_speech_ms >= 40

"""A rechecking canceller tags each frame's linear levels with whether it was measuring the lag of
a new playback stretch again when it filtered that frame (``LinearLevels.lag_remeasuring``, from
``EchoCanceller.lag_remeasuring``): the guard's stale-filter cue reads it
(kiosk.core.echo_double_talk.STALE_FILTER_GAIN; tests/unit/test_ug38_stale_filter.py).
"""

from __future__ import annotations

import numpy as np

from kiosk.audio.echo_cancel import LinearLevels
from tests.audio.rechecking import CountedFilter, rechecking_canceller

RATE = 16000


class HalfEcho(CountedFilter):
    """A "filter" that tells its linear output: half the microphone frame (6 dB of ERLE)."""

    linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        super().cancel(mic, ref)
        self.linear_output = (np.frombuffer(mic, "<i2") // 2).astype("<i2").tobytes()
        return self.linear_output


def test_each_frames_levels_tell_whether_the_stretchs_lag_is_measured_again() -> None:
    rig = rechecking_canceller(11, 41, RATE, HalfEcho)
    canceller = rig.canceller

    def step(t: float, playing: bool = True) -> tuple[bool, bool | None]:
        rig.play_and_hear(t, playing)
        levels = canceller.linear_levels
        if levels is None:
            return canceller.lag_remeasuring, None
        assert isinstance(levels, LinearLevels) and len(levels) == 3
        return canceller.lag_remeasuring, levels.lag_remeasuring

    # The first measurement (nothing lined up before): not a re-measurement, no frame tagged.
    first = [step(1.0 + k * 0.02) for k in range(100)]
    assert canceller.realignments == 1 and not any(a or b for a, b in first)
    assert not any(a or b for a, b in (step(3.0 + k * 0.02) for k in range(50)))  # settled
    for k in range(12):  # the stretch ends: its echo rings out, then nothing goes through
        step(4.0 + k * 0.02, playing=False)
    second = [step(4.24 + k * 0.02) for k in range(100)]  # the next stretch, the echo as before
    assert all(b is not None for _, b in second)
    assert all(a == b for a, b in second)  # each frame tagged as the guard judges it
    tagged = [b for _, b in second]
    assert tagged[0] and not tagged[-1]  # re-measured from its first frame until it settles
    settled_at = tagged.index(False)
    assert not any(tagged[settled_at:])
    assert 10 <= settled_at <= 40

"""Test helpers shared by the in-process canceller's timing and distrust tests
(``tests/audio/test_echo_timing.py``, ``tests/audio/test_aec_distrust.py``): fake filters and
a rechecking canceller as ``echo_canceller_for`` builds it for "speex"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiosk.audio.echo_cancel import EchoCanceller, EchoReference


class Taken:
    """A "filter" that keeps the reference frames it was given."""

    def __init__(self, *_: int) -> None:
        self.refs: list[bytes] = []

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        self.refs.append(ref)
        return mic


class CountedFilter(Taken):
    """:class:`Taken` that counts its restarts."""

    resets = 0

    def reset(self) -> None:
        self.resets += 1


@dataclass
class Rechecking:
    canceller: EchoCanceller
    reference: EchoReference
    now: list[float]  # the clock the reference stamps by (set it, then play)
    answer: np.ndarray  # seeded noise to play
    rate_hz: int = 16000
    sounded: np.ndarray | None = None  # what the speaker played, by sample (play_and_hear)

    def play_and_hear(self, t: float, playing: bool = True, stamp_error_s: float = 0.0) -> None:
        """At ``t`` the speaker plays the answer's next 20 ms (unless not ``playing``) and the
        canceller hears the frame before last, stamped ``stamp_error_s`` late: the echo, at a
        quarter of the level, of what the speaker played 20 ms before it."""
        frame = self.rate_hz // 50
        if self.sounded is None:
            self.sounded = np.zeros(len(self.answer) + self.rate_hz, np.int16)
        self.now[0] = t
        j = round(t * self.rate_hz)
        if playing:
            self.reference.played(self.answer[j : j + frame].tobytes())  # heard from now on
            self.sounded[j : j + frame] = self.answer[j : j + frame]
        captured = t - 0.04  # the frame before last, its echo 20 ms after the speaker
        i = round((captured - 0.02) * self.rate_hz)
        frame_pcm = (self.sounded[i : i + frame] // 4).tobytes()
        self.canceller.process(frame_pcm, captured + stamp_error_s)


def rechecking_canceller(
    seed: int, seconds: float, rate_hz: int = 16000, filter_cls: type = CountedFilter
) -> Rechecking:
    """A rechecking canceller (20 ms frames, ``filter_cls``) on a settable clock, and
    ``seconds`` of seeded noise (rms 3000) for its speaker to play."""
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=rate_hz)
    canceller = EchoCanceller(reference, 20, filter_cls)
    canceller.recheck = True
    rng = np.random.default_rng(seed)
    answer = (rng.standard_normal(round(rate_hz * seconds)) * 3000).astype(np.int16)
    return Rechecking(canceller, reference, now, answer, rate_hz)

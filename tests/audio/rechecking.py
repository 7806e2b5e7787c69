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


def rechecking_canceller(seed: int, seconds: float, rate_hz: int = 16000) -> Rechecking:
    """A rechecking canceller (20 ms frames, :class:`CountedFilter`) on a settable clock, and
    ``seconds`` of seeded noise (rms 3000) for its speaker to play."""
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=rate_hz)
    canceller = EchoCanceller(reference, 20, CountedFilter)
    canceller.recheck = True
    rng = np.random.default_rng(seed)
    answer = (rng.standard_normal(round(rate_hz * seconds)) * 3000).astype(np.int16)
    return Rechecking(canceller, reference, now, answer)

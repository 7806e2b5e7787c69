"""How much has been said: syllable nuclei counted in an utterance's level track.

The endpointer's semantic end-of-turn cue ("is this a whole question yet?") measures the
utterance in syllables, not seconds: a slow speaker's "Is there a pharmacy" lasts as long as
a quick speaker's whole question, but has half its syllables. A nucleus is a peak of the
short-time level (10 ms blocks) that rises ``prominence_db`` above the dip before it, reaches
``threshold`` (set by the caller: well above the room's ambient level) and then falls
``prominence_db`` again -- the intensity-peak rule of de Jong & Wempe (2009, "Praat script to
detect syllable nuclei and measure speech rate automatically"), without its pitch test.

Pure and cheap: a few numpy operations per frame, run only while an utterance is open.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK_MS = 10


def block_levels_dbfs(frame: bytes, frame_ms: int) -> list[float]:
    """RMS levels (dBFS) of the 10 ms blocks of a PCM16 frame (one level if it is shorter)."""
    x = np.frombuffer(frame[: len(frame) // 2 * 2], dtype="<i2").astype(np.float32)
    blocks = max(1, frame_ms // BLOCK_MS)
    if x.size == 0:
        return [-math.inf] * blocks
    x = x[: x.size // blocks * blocks].reshape(blocks, -1)
    mean_squares = np.einsum("ij,ij->i", x, x) / x.shape[1]
    return [10 * math.log10(ms / 32768.0**2) if ms > 0 else -math.inf for ms in mean_squares.tolist()]


class SyllableCounter:
    """Counts nuclei in a stream of 10 ms block levels (feed one utterance, then reset)."""

    def __init__(self, prominence_db: float = 3.0) -> None:
        self.prominence_db = prominence_db
        self.reset()

    def reset(self) -> None:
        self._done = 0
        self._dip = -math.inf  # an utterance starts from silence: its first peak counts
        self._peak: float | None = None  # the rising peak not yet fallen from

    @property
    def count(self) -> int:
        """Nuclei so far, a peak still at its height included."""
        return self._done + (self._peak is not None)

    def feed(self, levels: list[float], threshold_dbfs: float) -> None:
        for level in levels:
            if self._peak is None:
                self._dip = min(self._dip, level)
                if level >= threshold_dbfs and level - self._dip >= self.prominence_db:
                    self._peak = level
            elif level > self._peak:
                self._peak = level
            elif self._peak - level >= self.prominence_db:
                self._done += 1
                self._peak = None
                self._dip = level

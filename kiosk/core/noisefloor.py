"""The room's ambient level, learned continuously (minimum statistics).

A fixed onset gate (``vad.min_level_dbfs``) fails in a lobby whose HVAC sits at the gate.
:class:`NoiseFloor` keeps the levels of the last few seconds of audio in short blocks and
reports the lowest (or a low percentile): steady noise (HVAC, pink, brown, babble) *is* the
floor, while a visitor's syllables, a door or a footstep only ever fill the top blocks, and
speech has short gaps between words that show the floor even mid-turn. So the tracker also
runs during a turn: a level step up (or a turn opened by noise) is learned within the window
and then ends the turn. The endpointer makes onset and continuation relative to it.

Pure: frames in, a number out; time is the frame count.
"""

from __future__ import annotations

import math
from collections import deque

BLOCK_MS = 100  # one level per block: shorter than the gaps between words, longer than a click
MIN_BLOCKS = 5  # blocks heard before the floor is trusted (500 ms)
SILENCE_DBFS = -96.0  # digital silence counts as this (PCM16's own floor)


class NoiseFloor:
    """The lowest (or a low percentile) block level over a sliding window of audio.

    Args:
        frame_ms: length of each frame passed to :meth:`observe`.
        window_s: how much audio the floor remembers (how fast it follows a level step up;
            it follows a step down at once).
        percentile: 0..1; which block level counts as the floor (0: the minimum).
    """

    def __init__(self, frame_ms: int, window_s: float = 4.0, percentile: float = 0.0) -> None:
        self.frame_ms = frame_ms
        self.percentile = percentile
        self._block_frames = max(1, BLOCK_MS // frame_ms)
        self._blocks: deque[float] = deque(maxlen=max(MIN_BLOCKS, round(window_s * 1000 / BLOCK_MS)))
        self._power = 0.0  # sum of mean-square levels (full scale = 1) in the current block
        self._count = 0
        self._floor: float | None = None

    @property
    def dbfs(self) -> float | None:
        """The learned ambient level in dBFS; None until ``MIN_BLOCKS`` blocks were heard."""
        return self._floor

    def observe(self, level_dbfs: float) -> None:
        """One frame's RMS level (dBFS, -inf for digital silence)."""
        level = max(level_dbfs, SILENCE_DBFS) if not math.isnan(level_dbfs) else SILENCE_DBFS
        self._power += 10 ** (level / 10)
        self._count += 1
        if self._count < self._block_frames:
            return
        self._blocks.append(10 * math.log10(self._power / self._count))
        self._power, self._count = 0.0, 0
        if len(self._blocks) >= MIN_BLOCKS:
            ranked = sorted(self._blocks)
            self._floor = ranked[min(len(ranked) - 1, int(self.percentile * len(ranked)))]

    def carry_from(self, other: NoiseFloor) -> None:
        """Adopt what ``other`` learned (a settings reload must not forget the room)."""
        self._blocks.extend(other._blocks)
        self._floor = other._floor

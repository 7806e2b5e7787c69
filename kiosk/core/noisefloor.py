"""The room's ambient level, learned continuously (minimum statistics).

A fixed onset gate (``vad.min_level_dbfs``) fails in a lobby whose HVAC sits at the gate.
:class:`NoiseFloor` keeps the levels of the last few seconds of audio in short blocks and
reports the lowest: steady noise (HVAC, pink, brown) *is* the floor, while a visitor's syllables, a door or a footstep only ever fill the top blocks, and
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


class _BlockLevels:
    """Levels of the last ``maxlen`` blocks of ``block_frames`` frames (power-averaged)."""

    def __init__(self, block_frames: int, maxlen: int) -> None:
        self.block_frames = block_frames
        self.levels: deque[float] = deque(maxlen=maxlen)
        self._power = 0.0  # sum of mean-square levels (full scale = 1) in the current block
        self._count = 0

    def add(self, level_dbfs: float) -> bool:
        """Add one frame; True when it completed a block."""
        self._power += 10 ** (level_dbfs / 10)
        self._count += 1
        if self._count < self.block_frames:
            return False
        self.levels.append(10 * math.log10(self._power / self._count))
        self._power, self._count = 0.0, 0
        return True

    def retract(self, frames: int) -> None:
        """Forget about the last ``frames`` frames: the open block and the whole blocks they
        reach into (a few frames before them go too; the window has plenty more)."""
        frames -= self._count
        self._power, self._count = 0.0, 0
        for _ in range(min(len(self.levels), -(-max(0, frames) // self.block_frames))):
            self.levels.pop()

    def ranked(self, fraction: float, *, full: bool = False) -> float | None:
        """The block level at ``fraction`` (0 = lowest) of the sorted window; None if too few
        (``full``: until the whole window was heard)."""
        if len(self.levels) < (self.levels.maxlen if full and self.levels.maxlen else MIN_BLOCKS):
            return None
        ranked = sorted(self.levels)
        return ranked[min(len(ranked) - 1, int(fraction * len(ranked)))]


class NoiseFloor:
    """Two statistics of the room over a sliding window of 100 ms blocks.

    * :attr:`dbfs`, the floor: the quietest block of all (unguarded) audio, turns included.
      It follows a step down at once and a step up within the window.
    * :attr:`ambient_dbfs`: the median block of idle audio only. For steady noise it sits
      about 1 dB above the floor; for babble (other people talking) about 10 dB, where the
      gaps between their words put the floor: onset is judged against this one.

    Args:
        frame_ms: length of each frame passed to :meth:`observe`.
        window_s: how much audio each statistic remembers.
    """

    def __init__(self, frame_ms: int, window_s: float = 4.0) -> None:
        self.frame_ms = frame_ms
        block_frames = max(1, BLOCK_MS // frame_ms)
        blocks = max(MIN_BLOCKS, round(window_s * 1000 / BLOCK_MS))
        self._all = _BlockLevels(block_frames, blocks)
        self._idle = _BlockLevels(block_frames, blocks)
        self._floor: float | None = None
        self._ambient: float | None = None

    @property
    def dbfs(self) -> float | None:
        """The floor in dBFS; None until a whole window was heard."""
        return self._floor

    @property
    def ambient_dbfs(self) -> float | None:
        """The typical idle level in dBFS (median block); None until enough idle audio."""
        return self._ambient

    @property
    def quietest_dbfs(self) -> float | None:
        """The quietest block heard in the window so far, before :attr:`dbfs` has a whole
        window (None until ``MIN_BLOCKS``): a lower bound on the room's level."""
        return self._floor if self._floor is not None else self._all.ranked(0.0)

    def observe(self, level_dbfs: float, *, idle: bool = True) -> bool:
        """One frame's RMS level (dBFS, -inf for digital silence); ``idle``: no turn is open.

        True when a statistic was brought up to date (a block ended: every 100 ms at most).
        """
        level = max(level_dbfs, SILENCE_DBFS) if not math.isnan(level_dbfs) else SILENCE_DBFS
        changed = False
        if self._all.add(level):
            # Only a whole window: a turn must not lift it (a short one at start-up is most of it).
            self._floor = self._all.ranked(0.0, full=True)
            changed = True
        if idle and self._idle.add(level):
            self._ambient = self._idle.ranked(0.5)
            changed = True
        return changed

    def retract_idle(self, frames: int) -> None:
        """The last ``frames`` idle frames were a visitor after all (their onset is proved
        only now): the ambient level forgets them, so a visitor heard before the room is
        not taken for the room. The floor keeps them; it takes a whole window anyway."""
        self._idle.retract(frames)
        self._ambient = self._idle.ranked(0.5)

    def carry_from(self, other: NoiseFloor) -> None:
        """Adopt what ``other`` learned (a settings reload must not forget the room)."""
        self._all.levels.extend(other._all.levels)
        self._idle.levels.extend(other._idle.levels)
        self._floor, self._ambient = other._floor, other._ambient

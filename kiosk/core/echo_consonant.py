"""A visitor's first unvoiced consonant behind a trusted echo canceller (:class:`HighBandCue`, a
part of :class:`kiosk.core.echo_guard.EchoGuard`): the filter's linear output over 3 kHz
(:func:`kiosk.audio.linear_levels.high_band_levels_db`) against its own recent level and the
filter's echo estimate there.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence

# A visitor's first unvoiced consonant behind a trusted canceller (the "s" of "Sorry", "st" of
# "Stop", "su" of "sumimasen", "ch" of "chotto"): 60-120 ms of friction, 10-20 dB under her
# vowels and under the echo's broadband level, before the first vowel the guard's level rules
# hear (kiosk.core.echo_guard). Over 3 kHz the answer's echo is weak and what the filter leaves
# there is the room: a frame whose linear output there is this far over its median over the
# guarded frames before...
CONSONANT_OVER_RECENT_DB = 16.0
# ...and this far over the filter's echo estimate there (the answer's own consonants, where the
# filter missed them, come with their estimate) is double talk. Replayed (lobby_aec_replay, the
# tuning split + fresh seeds 24-26, 44-46 adapted, split + 24-26, 60-62 from cold): over 14-16 /
# 15-18 dB no pause and no earlier answer heard as a visitor; 13-14 / 12-14 dB paused answers
# at -20 dB echo. (kiosk.audio.echo_cancel.high_band_levels_db)
CONSONANT_OVER_ESTIMATE_DB = 15.0
# A softer one (her "s" a few dB over the room's hiss there, 100-200 ms before her first vowel:
# the lobby's slowest later-answer barge-ins at -12 dB through PulseAudio, mixes 084 and 086)
# counts where the filter's estimate over 3 kHz is far under the frame: the answer has no high
# band there (between words, a low vowel), so nothing of it can have been missed there, and what
# the filter leaves there is the room, steady within a few dB: a frame this far over the median...
CONSONANT_SOFT_OVER_RECENT_DB = 6.0
# ...and this far over the estimate. Replayed on pulse traces (main ed57819: tuning split x2,
# used held-out seeds 321-351, 36 barge-ins at -12 dB): those two mixes paused 40-80 ms sooner,
# no other pause came; echo alone, where the estimate there was >= 15 dB under the frame, left
# it at most 4.1 dB over the median (1222 frames), and 4 dB paused answers (tuning 074, 080).
CONSONANT_SOFT_OVER_ESTIMATE_DB = 20.0
# Either counts too while the guard distrusts a canceller it trusted before (a new playback
# stretch, a drop or a reline: the lag re-checked, the echo return relearned, 0.2-1 s; the
# filter still holds what it learned, kiosk.audio.echo_cancel.RELINE_MIN_MS): a stamp 0.1-0.5 ms
# off leaks the echo where the answer sounds, and there the filter's estimate is as loud. In
# replays of 38 pulse traces of barge-ins at -12 dB (speex-later), 10 began in such a distrust;
# 4 of them paused 80-120 ms sooner (tuning 079, 081 x3), no other pause moved; echo alone, so
# judged, left the band at most 4.9 dB over its median where the estimate there was >= 20 dB
# under it (966 frames, tuning split echo + barge-ins before the onset). Its recent levels
# outlive such a change (HighBandCue.forget): a reline during her speech had wiped them and
# the cue waited for 5 frames of her own (s321 mix 080 in replay: 232 -> 152 ms).
# (Always on since stop 33: kiosk.core.endpointing.Endpointer._consonant_in_distrust.)
# The median is over this many guarded frames (0.5 s), from this many on.
CONSONANT_RECENT_FRAMES = 25
CONSONANT_MIN_FRAMES = 5


class HighBandCue:
    """A visitor's first unvoiced consonant in the linear output's band over 3 kHz, behind a
    trusted canceller (``CONSONANT_OVER_RECENT_DB``, ``CONSONANT_SOFT_OVER_RECENT_DB``): set
    :attr:`frame` per guarded frame and :meth:`hear` it once."""

    def __init__(self) -> None:
        # (linear output, echo estimate) dB over 3 kHz of this frame; None: not measured. The
        # canceller measures each when first read (an FFT): the estimate's is read last.
        self.frame: Sequence[float] | None = None
        self._recent: deque[float] = deque(maxlen=CONSONANT_RECENT_FRAMES)
        self.heard = False  # what :meth:`hear` said of the last frame
        self._kept: list[float] = []

    def hear(self) -> bool:
        """This frame's level joins the recent ones; True if it is a consonant over the echo."""
        self.heard = self._hear()
        return self.heard

    def _hear(self) -> bool:
        if self.frame is None:
            self._kept = []
            return False
        if self._kept:  # (right after forget(): the room's level there is what it was)
            self._recent.extend(self._kept)
            self._kept = []
        linear = self.frame[0]
        recent = list(self._recent)  # (before this frame joins them)
        self._recent.append(linear)
        if len(recent) < CONSONANT_MIN_FRAMES or not math.isfinite(linear):
            return False
        over_recent = linear - statistics.median(recent)
        if over_recent < min(CONSONANT_OVER_RECENT_DB, CONSONANT_SOFT_OVER_RECENT_DB):
            return False  # (the estimate's level is measured only for a frame that stands out)
        over_estimate = linear - self.frame[1]
        if over_recent >= CONSONANT_OVER_RECENT_DB and over_estimate >= CONSONANT_OVER_ESTIMATE_DB:
            return True
        return (
            over_recent >= CONSONANT_SOFT_OVER_RECENT_DB
            and over_estimate >= CONSONANT_SOFT_OVER_ESTIMATE_DB
        )

    def forget(self) -> None:
        """The echo path changed: the recent levels count again only if the band is measured
        right on (the canceller measures it for a filter that kept what it learned: a new
        stretch, a drop, a reline); a frame without it (a filter restarted) drops them."""
        self._kept = list(self._recent)
        self._recent.clear()

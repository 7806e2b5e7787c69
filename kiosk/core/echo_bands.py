"""The half-duplex guard per frequency band (no AEC; the reference lined up with each frame).

Judged on the whole frame, the answer's own echo reaches 6-8 dB over its typical return now
and then, so the guard's bar sits that far over the echo and a visitor only a few dB louder
than it gets through only at a gap in the answer. But the answer's energy moves between
bands from phoneme to phoneme, and a visitor's voice fills bands where the answer is quiet at
that instant. Each band of a frame is judged against what the speaker played in it, lined up
with the frame (its decaying envelope: the room's tail), plus the echo return learned *in that
band*; a frame is loud over the echo when enough bands are over their bar.

The band levels come in as data (:class:`kiosk.audio.echo_level.EchoLevelTap` computes them
from the microphone frame and its lined-up reference): ``(microphone dBFS per band, speaker
dBFS per band)``. What the endpointer does with the answer (learning periods, when the guard
is up, the absolute minimum) stays in :mod:`kiosk.core.endpointing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

BandLevels = tuple[Sequence[float], Sequence[float]]  # (microphone, lined-up speaker) dBFS per band

# A band teaches its echo return only where the answer sounds in it this far over the room
# (else the room's noise in a band the answer leaves empty would pass for a loud echo).
BAND_LEARN_ABOVE_ROOM_DB = 20.0
# A period's bands learn from its first this many frames judged echo, and judge by them from
# then on, also in the first answer (lined up ~0.5-1 s into it, the oldest frames of the history
# are the least likely to hold a visitor already talking; tuning split + seeds 3-5, replayed:
# 20 frames, -12 dB barge-in p95 439 ms; 10: 259 ms; 6: self-interruptions at -6 dB).
BAND_LEARN_FRAMES = 10
# A band the answer sounded in (over the room) in fewer than this many of those frames goes on
# learning from the frames judged echo to the period's end: the upper envelope of one or two
# frames sat 10-15 dB under what the echo reached later (microphone minus envelope in a band
# spreads over ~20 dB from frame to frame), and two such bands alone paused the answer at -6 dB
# (fresh tuning seeds 3, 7, 10, 18 mixes 074/077) and once at -12 dB (seed 14 mix 081). Three
# were not enough either: through PulseAudio (seed 401 mix 073 at -12 dB, traced) the band
# 1.0-1.5 kHz learned from the first three frames of the answer's first word, -20 to -23 dB,
# while its echo later sat at -3 to -12 dB (its bar 4-10 dB under the echo for seconds), and with
# the band 2.2-3.2 kHz (also three frames) it paused the answer twice in each of four traces, on
# either code. Replayed (bench/pulse_guard_replay.py, 103 guard traces): 4, 5 or 6 alike, those 8
# pauses gone, no barge-in time changed.
BAND_MIN_SAMPLES = 4
# A frame is loud over the echo when at least this many bands are over their bar (one band
# alone: the echo's own frames now and then; tuning split + seeds 3-5, replayed)...
BANDS_OVER = 2
# ...or one band this far over its bar, learned from at least BAND_MIN_SAMPLES frames (or never
# sounded in): a visitor's voice often fills one band where the answer is quiet, well over its
# echo there, frames before a second band follows. (Tuning split + seeds 3-23 replayed: 6 dB,
# a self-pause at -6 dB; 9 dB none, -12 dB barge-ins 20-100 ms sooner in 21 of 132.)
BAND_ALONE_OVER_DB = 9.0
# ...each by the guard's margin plus this (a band's level varies more than the frame's)...
BAND_EXTRA_MARGIN_DB = 3.0
# ...each by the guard's margin, and louder than the whole room there (the room's level, all of
# it, is an upper bound on what any one band of it holds).
BAND_OVER_ROOM_DB = 6.0
# Two or more bands over count only if one of them is firm: its return rests on at least this many
# frames, or the answer never sounded in it (unlearned), or it was not relearned from the history
# when the echo's lag was lined up (EchoBands.end_period's ``relearned``; applied also to a first
# learning period's bands, judged before any relearn had enough frames, it delayed a visitor heard
# first by two bands from 4 frames each, 1.9-3.7 dB over: held-out s2101 mix 081 at -12 dB,
# 179 -> 379 ms; 234 stored guard traces replayed with bench/guard41_replay.py, relearn only:
# the weak pairs' 18 pause entries in 8 traces gone, no barge-in moved).
BAND_FIRM_SAMPLES = 5
# ...or one of them is this far over its bar (dB). A return learned from a few frames at the lag's
# relearn (the loud onsets, where the microphone sits far under the envelope) was 5-10 dB under
# what the echo reached later in low bands: two such bands a few tenths of a dB over their bars
# paused the answer (through PulseAudio, used seeds 1821 and 2071, mix 074 at -6 dB: 100-300 Hz
# from 2-4 frames, with a band from 1-2 frames; weak bands over by 0.3-4.0 dB), while a visitor
# heard first by two bands had one firm, or a weak one 5.6-15 dB over (5.6: stop 42's held-out
# s2111 mix 079). Replayed over 234 stored guard traces (bench/guard42_screen.py): 3 or 5 dB alike;
# 8 or 12 dB, s2111/079 100 ms later; BAND_FIRM_SAMPLES 6, it 40 ms later; 4, s1821's pauses stay.
BAND_WEAK_PAIR_OVER_DB = 5.0
# A band whose return rests on fewer than BAND_MIN_SAMPLES frames is judged as if it were at least
# the whole frame's echo return plus this (dB): through PulseAudio (held-out seed 441 mix 077 at
# -6 dB, the lag relearned ~1 s into the answer: bands 100-300 Hz, 1.5-2.2 and 2.2-3.2 kHz
# learned from 1-2 frames at -11 to -15 dB, the frame's -2.8 dB) the echo sat a median 3-6 dB
# over such a band's bar and 7-10 dB at phrase ends, where the reference falls faster than the
# room's tail: two such bands paused the answer 20 times in two traces. Replayed (bench/
# pulse_guard_replay.py, 78 traces): -6 dB none; -8 dB 6; -10 dB 15; -12 dB barge-ins as before.
BAND_SPARSE_UNDER_FRAME_DB = -6.0
# Where the speaker's level in a band has fallen this far under its envelope (a phrase end: the
# reference falls faster than the room's tail)...
BAND_TAIL_FALL_DB = 6.0
# ...the band's echo is judged this much louder (dB): there the microphone's band sat a median
# 1.3-4 dB further over the envelope + return than in the answer's steady frames (76 older guard
# traces through PulseAudio and seed 441's two). Replayed with the sparse floor above: frames of
# the echo alone that counted as loud voice on 441/077 49 -> 2 (the floor) -> 0, on the older
# traces 11 -> 4 -> 3; barge-ins as before (3-6 dB over a fall of 4-6 dB alike; 3 dB in every band
# whose envelope decays at all, without the fall: tuning 081 at -12 dB 165 -> 185 ms). Alone,
# without the floor: 441/077 still paused 15 times.
BAND_TAIL_EXTRA_DB = 3.0
# A band the answer never sounded in while learning is judged as if its echo were as loud as
# what the speaker plays there (it counts only where the answer is quiet now, as bands do).
BAND_UNLEARNED_RETURN_DB = 0.0


class BandVerdict(NamedTuple):
    """A frame's bands against their bars: how many are over, and the most any band learned
    from enough frames (not sparse) is over its bar, in dB."""

    over: int
    most_db: float
    firm: bool = True  # a band over is firm, or a weak one BAND_WEAK_PAIR_OVER_DB over its bar

    @property
    def loud(self) -> bool:
        """Over the echo: in ``BANDS_OVER`` bands (one of them firm), or in one band learned from
        enough frames by ``BAND_ALONE_OVER_DB`` more."""
        return (self.over >= BANDS_OVER and self.firm) or self.most_db >= BAND_ALONE_OVER_DB

    @property
    def one_over(self) -> bool:
        """At least one band learned from enough frames is over its bar (the guard asks right
        after a loud frame: the visitor's voice going on)."""
        return self.most_db >= 0.0


class EchoBands:
    """The echo per band: its envelope, and its return learned per playback period.

    Args:
        decay_db: how far the envelope falls per frame once the speaker's band falls silent
            (the room's tail, as for the whole frame).
    """

    def __init__(self, decay_db: float) -> None:
        self._decay_db = decay_db
        self._env: list[float] = []  # the speaker's envelope per band, lined up
        self._speaker: list[float] = []  # this frame's lined-up speaker levels per band
        self.returns: list[float | None] = []  # learned echo return per band (None: not heard)
        self._period: list[float | None] = []  # what this learning period heard so far
        self._samples: list[int] = []  # frames each band of the period learned from
        self.sparse: list[bool] = []  # per band: its return came from too few frames
        self.counts: list[int] = []  # per band, relearned: how many frames its return came from
        self._period_frames = 0

    def forget(self) -> None:
        """The echo path changed (or a new lag): nothing learned holds."""
        self.returns, self.sparse, self.counts = [], [], []
        self.new_period()

    def new_period(self) -> None:
        self._period, self._samples, self._period_frames = [], [], 0

    def silent(self) -> None:
        """No lined-up reference for this frame: the envelope starts afresh."""
        self._env, self._speaker = [], []

    def decay(self) -> None:
        """A frame without band levels while the lined-up speaker plays (the frame the lag is
        lined up on): the envelope falls by one frame of the room's tail. Starting afresh there
        dropped the tail still ringing in the room, and a word's end then paused the answer."""
        self._env = [e - self._decay_db for e in self._env]

    def hear(self, speaker: Sequence[float]) -> list[float]:
        """One frame's lined-up speaker levels per band; returns its envelope."""
        self._speaker = list(speaker)
        if len(self._env) != len(speaker):
            self._env = list(speaker)
        else:
            self._env = [
                max(s, e - self._decay_db) for s, e in zip(speaker, self._env, strict=True)
            ]
        return self._env

    def learn(self, mic: Sequence[float], room_dbfs: float | None) -> None:
        """A frame judged echo (not a visitor) in a learning period: the upper envelope of
        microphone minus speaker, per band where the answer sounds well over the room."""
        if len(self._period) != len(mic):
            self._period, self._samples = [None] * len(mic), [0] * len(mic)
        # Past BAND_LEARN_FRAMES only a band heard in too few frames so far learns on.
        done = self._period_frames >= BAND_LEARN_FRAMES
        least = (room_dbfs if room_dbfs is not None else -math.inf) + BAND_LEARN_ABOVE_ROOM_DB
        self._period_frames += 1
        for b, (m, e) in enumerate(zip(mic, self._env, strict=False)):
            if done and self._samples[b] >= BAND_MIN_SAMPLES:
                continue
            if e >= least and math.isfinite(m):
                old = self._period[b]
                self._period[b] = m - e if old is None else max(old, m - e)
                self._samples[b] += 1

    def end_period(self, relearned: bool = False) -> None:
        """The learning period is over: what it heard is the echo return (per band).
        ``relearned``: it was the history relearned when the echo's lag was lined up."""
        if any(r is not None for r in self._period):
            self.returns = list(self._period)
            self.sparse = [n < BAND_MIN_SAMPLES for n in self._samples]
            self.counts = list(self._samples) if relearned else []

    def _sparse_now(self, b: int, learning: bool) -> bool:
        """The band's return (raised by a learning period's) rests on too few frames."""
        now = learning and b < len(self._samples) and self._samples[b] >= BAND_MIN_SAMPLES
        if not self.returns:
            return not now
        return not now and b < len(self.sparse) and self.sparse[b]

    def _firm_now(self, b: int, learning: bool) -> bool:
        """The band's return was not relearned from the lined-up history, or rests on at least
        ``BAND_FIRM_SAMPLES`` frames (its own or, while a period learns, that period's)."""
        if not (self.counts and self.returns):
            return True
        now = self._samples[b] if learning and b < len(self._samples) else 0
        known = self.counts[b] if b < len(self.counts) else 0
        return max(known, now) >= BAND_FIRM_SAMPLES

    def _period_now(self, b: int) -> float | None:
        return self._period[b] if b < len(self._period) else None

    def _return_now(self, b: int, learning: bool) -> float | None:
        """The band's learned return, raised by what a learning period heard so far."""
        known = self.returns[b] if b < len(self.returns) else None
        now = self._period_now(b) if learning else None
        return known if known is None or now is None else max(known, now)

    def judge(
        self,
        mic: Sequence[float],
        margin_db: float,
        room_dbfs: float | None,
        learning: bool,
        frame_return_db: float | None = None,
    ) -> BandVerdict:
        """This frame's bands against their bars (see :meth:`bands_over`), judged once for
        both of the guard's rules (:class:`BandVerdict`)."""
        return BandVerdict(*self._judge(mic, margin_db, room_dbfs, learning, frame_return_db))

    def bands_over(
        self,
        mic: Sequence[float],
        margin_db: float,
        room_dbfs: float | None,
        learning: bool,
        frame_return_db: float | None = None,
    ) -> int:
        """How many bands of this frame are over their bar: the speaker's envelope there plus
        the band's learned echo return plus ``margin_db`` and ``BAND_EXTRA_MARGIN_DB``, and the
        room plus ``BAND_OVER_ROOM_DB`` (``BAND_TAIL_EXTRA_DB`` more where the speaker's level
        fell ``BAND_TAIL_FALL_DB`` under its envelope). A band whose return was never learned
        counts only where the answer does not sound over the room, with
        ``BAND_UNLEARNED_RETURN_DB``; one learned from too few frames with at least
        ``frame_return_db`` (the whole frame's echo return) plus ``BAND_SPARSE_UNDER_FRAME_DB``,
        if given.
        None count in the first learning period until ``BAND_LEARN_FRAMES`` were learned from."""
        return self._judge(mic, margin_db, room_dbfs, learning, frame_return_db)[0]

    def _judge(
        self,
        mic: Sequence[float],
        margin_db: float,
        room_dbfs: float | None,
        learning: bool,
        frame_return_db: float | None,
    ) -> tuple[int, float, bool]:
        """(bands over their bar, the most any band not sparse is over it in dB, whether a band
        over is firm or a weak one ``BAND_WEAK_PAIR_OVER_DB`` over)."""
        early = not self.returns and learning and self._period_frames >= BAND_LEARN_FRAMES
        if not (self.returns or early) or len(self._env) != len(mic):
            return 0, -math.inf, False
        room = room_dbfs if room_dbfs is not None else -math.inf
        over, most, firm = 0, -math.inf, False
        # (hear() sets the envelope and this frame's speaker levels together: same length)
        for b, (m, e, played) in enumerate(zip(mic, self._env, self._speaker, strict=True)):
            ret = self._return_now(b, learning) if self.returns else self._period_now(b)
            sparse = ret is not None and self._sparse_now(b, learning)
            strong = ret is None or self._firm_now(b, learning)
            if ret is None:
                if e >= room + BAND_LEARN_ABOVE_ROOM_DB:
                    continue
                ret = BAND_UNLEARNED_RETURN_DB
            elif sparse and frame_return_db is not None:
                ret = max(ret, frame_return_db + BAND_SPARSE_UNDER_FRAME_DB)
            if e > played + BAND_TAIL_FALL_DB:
                ret += BAND_TAIL_EXTRA_DB  # the room's tail, over the envelope's decay
            bar = max(e + ret + margin_db + BAND_EXTRA_MARGIN_DB, room + BAND_OVER_ROOM_DB)
            over += m >= bar
            firm = firm or (m >= bar and (strong or m - bar >= BAND_WEAK_PAIR_OVER_DB))
            if not sparse:
                most = max(most, m - bar)
        return over, most, firm

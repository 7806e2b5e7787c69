"""The endpointer's echo guard (:class:`EchoGuard`, a part of
:class:`kiosk.core.endpointing.Endpointer`): how loud the kiosk's own echo gets relative to what
the speaker plays (its *return*, learned per playback period, or followed all along behind an
echo canceller), and the bar a frame must clear to count while the answer plays: the whole
frame's level, or enough of its bands (:mod:`kiosk.core.echo_bands`) once the reference is
lined up with it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from kiosk.config import VadSettings
from kiosk.core.echo_bands import BandLevels, EchoBands
from kiosk.core.echo_double_talk import (  # noqa: F401 (PITCH_*: re-exported)
    PITCH_MIN,
    PITCH_OVER_REFERENCE,
    TrustedCancellerCues,
    pitch_the_answer_lacks,
)
from kiosk.core.levels import mean_level_db
from kiosk.core.noisefloor import NoiseFloor

# Frames at the start of each playback period spent learning the echo return (400 ms).
ECHO_LEARN_FRAMES = 20
# With an echo canceller: the echo return is followed over this many 20 ms steps (0.5 s)...
ECHO_RELEARN_FRAMES = 25
# ...learned per step (10 ms frames in pairs): over the same time, and no faster (a visitor's
# quiet first syllables under the bar, learned as echo, raise it per step)...
AEC_LEARN_STEP_MS = 20
# ...as their 95th percentile, not their loudest: a frame the canceller missed, or the
# visitor's first quiet syllables, must not raise the bar for the rest of the answer...
ECHO_RELEARN_RANK = 0.95
# ...from frames in which the speaker plays at least this far above the room's level (else
# the room's noise over a quiet stretch of the answer would pass for a loud echo; at 25 dB such
# a frame still reads as a return of -25 dB or less, clear of AEC_TRUSTED_RETURN_DB).
ECHO_RELEARN_ABOVE_ROOM_DB = 25.0
# Once even the loudest of those frames is this far under what the speaker plays, the canceller is
# trusted: barge-in needs the usual onset, no absolute level minimum (else the guard's rules hold).
AEC_TRUSTED_RETURN_DB = -20.0
# Lined up (no AEC), the frames heard before are relearned from; this many loud ones suffice.
RELEARN_ENOUGH_FRAMES = ECHO_LEARN_FRAMES // 2
# Without a canceller, lined up: the absolute minimum (vad.barge_in_min_level_dbfs) is for the
# raw echo's bursts, which cannot be in a frame while the lined-up echo (what the speaker plays
# + the echo return) is far under it: there a frame needs only to be this far over that echo...
FLOOR_OVER_ECHO_DB = 26.0
# ...and at most this much under the minimum. Through PulseAudio a quiet visitor's first syllable
# (held-out seed 351 mix 081, -12 dB echo, the answer near-silent there: -63 to -67 dBFS) was
# loud for ~2 frames around -30 dBFS: where the 20 ms grid fell so that the second read -32.3
# dBFS, one frame was not enough to pause, and the pause waited 200 ms for her next syllable.
FLOOR_RELAX_DB = 6.0
# The bands of a frame are judged from this far under the absolute minimum
# (vad.barge_in_min_level_dbfs): each band has its own bar over the echo, and a quiet visitor's
# frame that fills two bands over the answer's echo fell under the minimum by a fraction of a dB
# where the 20 ms grid fell (traced through PulseAudio: seed 371 mix 084 at -12 dB, -30.3 dBFS,
# 595 ms; seed 511 mix 082 at -6 dB, 1094 ms or 434 from run to run). Replayed (103 guard
# traces): 2 dB, those 595 -> 455 and 1098 -> 438 ms, 081 at -12 dB 40 ms sooner in four, no
# frame of the echo alone more counted loud; 3 dB one more (lead31 077 at -6 dB).
BAND_LEVEL_UNDER_MIN_DB = 2.0
# Right after a loud frame of the same voiced run (her voice goes on), one band learned from
# enough frames over its bar is enough (not BANDS_OVER, nor BAND_ALONE_OVER_DB over it), from this
# far under the absolute minimum: a quiet visitor under the answer's echo gets through in one
# frame where her voice fills bands the answer leaves quiet, and the frame after it often has
# only one band over (traced through PulseAudio, used seeds: 371 mix 084 at -12 dB, 3 bands at
# +377 ms, one at +397, the next loud frame at +517 ms: paused 537 ms after her onset; 511 mix
# 082 at -6 dB, 100-300 Hz +11 dB at +294 ms then +7.7 at -33.6 dBFS, the next at +414: 434 ms).
# The echo alone had a band over its bar in 0.3% of its frames (3778 guarded frames before the
# onset, 29 traces), and a loud frame of its own needs that right after it to pause the answer.
BAND_AFTER_LOUD_UNDER_MIN_DB = 6.0
# Lined up, no canceller, a frame at most this much louder (dB) than the frame before is judged
# against the louder echo of the two (the bar over the echo holds a frame): at a word end the echo
# in the microphone falls a frame after its lined-up reference (it may lag it by FOLLOW_BEHIND_MS,
# the room's reflections come later still) while the reference's envelope drops ~5 dB a frame.
# Used seeds, replayed: T1 s2451 mix 074 at -6 dB (-19.2 dBFS, 0.2 dB under the frame before, 2.9
# dB over the bar where the reference fell from -18.2 to -24.3 dBFS) and G4 s2801 mix 080 at -12
# dB (two such frames 0.7 and 1.4 dB over it) paused themselves; with the bar held, 1.9 dB or more
# under it (and 3 more of the 7 such pauses in 612 traces). A visitor's onset raises the
# microphone (G4 s2801 080: +0.4 and +2.5 dB on the two frames a bar held on every falling frame
# put under it, 60 ms later).
HELD_BAR_MAX_RISE_DB = 0.0
# Echo return assumed while the first playback period still learns (mic as loud as the speaker
# signal; with AEC, for an earcon): only speech far louder than the echo can barge in then.
DEFAULT_ECHO_RETURN_DB = 0.0


class EchoGuard(TrustedCancellerCues):
    """The echo half of the endpointer (its state is set up by ``Endpointer.__init__``)."""

    settings: VadSettings
    noise: NoiseFloor
    _room_dbfs: float | None
    _tail_decay_db: float
    _echo_ref_dbfs: float
    _heard_lined_up: deque[tuple[float, float]]  # (mic dBFS, _echo_ref_dbfs): frame before, this
    bands: EchoBands
    _frame_bands: BandLevels | None
    _frame_pitch: tuple[float, float] | Callable[[], tuple[float, float]] | None  # (mic, reference)
    _gap_left: int
    # The guard's level rule needs at least this (dBFS) instead of vad.barge_in_min_level_dbfs
    # (kiosk.audio.raw_guard: the raw microphone beside a canceller not yet trusted).
    guard_min_level_dbfs: float | None = None
    echo_return_db: float | None
    _period_echo_db: float | None
    _guard_frames: int
    echo_relearn: bool
    reference_aligned: bool
    earcon_echo: bool
    _recent_echo_db: deque[float]
    _onset_loud: int  # (the endpointer's voiced run: its loud frames, frames since the last)
    _since_loud: int
    _step_frames: int
    _step_db: list[float]
    _echo_max_db: float

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The room's learned level that onset and continuation are judged against: its
        typical idle level, or the floor if higher (after a step up during a turn, only the
        floor has heard it). None until enough audio was heard."""
        return self._room_dbfs

    @property
    def _band_room_dbfs(self) -> float:
        """The room's level for the guard's bands: the learned one, or until it is learned (a
        kiosk whose first audio was a question answers before it heard the room alone) the
        quietest any onset could be. Never nothing: a band the answer's echo leaves empty holds
        only the microphone's own noise, 70-80 dB under the frame, and by the band's decaying
        envelope alone that noise passed for a visitor (the answer paused itself every ~250 ms)."""
        if self._room_dbfs is not None:
            return self._room_dbfs
        return self.settings.min_level_dbfs - self.settings.onset_margin_db

    @property
    def echo_cancelled_well(self) -> bool:
        """An echo canceller runs and leaves at most ``AEC_TRUSTED_RETURN_DB`` of the echo: barge-in
        then needs the usual onset over what is left of it (until then the guard's rules hold)."""
        return self.echo_relearn and self._echo_max_db <= AEC_TRUSTED_RETURN_DB

    def echo_path_changed(self) -> None:
        """The echo canceller started over: the guard's rules hold until the echo is relearned."""
        self._recent_echo_db.clear()
        self._step_db.clear()
        self._raw_returns.clear()
        self._echo_max_db, self.echo_return_db = math.inf, None
        self.bands.forget()
        self.high_band.forget()

    def relearn_echo(
        self, heard: list[tuple[float, float]], bands: list[BandLevels | None] | None = None
    ) -> None:
        """The reference was just lined up with the echo (no AEC): learn the echo return
        afresh from ``heard``, (mic dBFS, lined-up speaker dBFS) of the frames of this
        playback stretch so far, oldest first, as if they had come lined up (and per band
        from ``bands``, the same frames' band levels, if given)."""
        self.echo_path_changed()
        self._guard_frames, self._period_echo_db = 0, None  # a new learning period
        self.bands.silent()
        env = -math.inf
        for k, (mic_dbfs, ref) in enumerate(heard):
            env = max(ref, env - self._tail_decay_db)
            self._frame_bands = bands[k] if bands is not None and k < len(bands) else None
            self._hear_bands()
            if ref > -math.inf:
                self._hear_echo(mic_dbfs, env)
        self._echo_ref_dbfs = max(self._echo_ref_dbfs, env)
        if self._guard_frames >= RELEARN_ENOUGH_FRAMES and self._period_echo_db is not None:
            # Enough heard: the visitor may be talking by now, and would be learned as echo.
            self.echo_return_db = self._period_echo_db
            self.bands.end_period(relearned=True)
            self._guard_frames = max(self._guard_frames, ECHO_LEARN_FRAMES + 1)

    @property
    def _guard_learning(self) -> bool:
        return 0 < self._guard_frames <= ECHO_LEARN_FRAMES

    def _echo_return_now(self) -> float:
        """The echo return to judge by: the learned one, or while a period still learns, the
        last period's (or a conservative default) raised by what this period heard so far."""
        known = self.echo_return_db if self.echo_return_db is not None else DEFAULT_ECHO_RETURN_DB
        known = DEFAULT_ECHO_RETURN_DB if self.earcon_echo else known
        if self._guard_learning and self._period_echo_db is not None:
            return max(known, self._period_echo_db)
        return known

    @property
    def _guard_room_dbfs(self) -> float | None:
        """The room's level for the guard: the learned one, or before it is known (a visitor
        who spoke at once: the idle frames that led up to the onset were taken back) the
        quietest block heard so far. Else the first answer's quiet stretches taught the
        room's noise as a loud echo, and the room's own noise over ``min_level_dbfs`` passed
        for a visitor (with AEC, a pause on nothing but the room)."""
        room = self.noise_floor_dbfs
        return self.noise.quietest_dbfs if room is None else room

    def _quiet_reference(self, far_end_dbfs: float) -> bool:
        """A quiet stretch of the answer (with AEC, or lined up with the frame): what the mic
        hears then is the room, not the echo; it neither teaches the echo return nor counts
        towards the frames that learn it."""
        # Before the room is known (a visitor who spoke at once: the idle frames that led up
        # to the onset were taken back), the quietest block heard so far stands for it; else
        # every quiet stretch of the first answer taught the room's noise as a loud echo.
        room = self._guard_room_dbfs
        aligned = self.echo_relearn or self.reference_aligned
        return aligned and room is not None and far_end_dbfs < room + ECHO_RELEARN_ABOVE_ROOM_DB

    def _hear_echo(self, mic_dbfs: float, far_end_dbfs: float) -> None:
        """A frame in which the speaker sounds: one more of the period, and learnt from."""
        if self.echo_relearn or not self._quiet_reference(far_end_dbfs):
            self._guard_frames += 1
        self._trusted_before_frame = self.echo_cancelled_well
        self._trusted_frames_since_start += self._trusted_before_frame
        raw = self._frame_raw_dbfs()
        if raw is not None and math.isfinite(raw) and not self._quiet_reference(far_end_dbfs):
            self._raw_returns.append(raw - self._echo_ref_dbfs)  # (AEC: the microphone before it)
        self._learn_echo(mic_dbfs, far_end_dbfs)

    def _learn_echo(self, mic_dbfs: float, far_end_dbfs: float) -> None:
        """The first ``ECHO_LEARN_FRAMES`` of each playback period in which the speaker sounds
        learn how loud its echo gets relative to what it plays (the upper envelope of mic dB -
        speaker dB), from every frame but those loud enough to count as a visitor already
        (double talk would teach a far louder "echo")."""
        threshold = far_end_dbfs + self._echo_return_now() + self.settings.barge_in_margin_db
        quiet = self._quiet_reference(far_end_dbfs)
        if self.echo_relearn:
            if quiet or self.earcon_echo:
                return  # a quiet stretch of the answer (the room's noise, not its echo), an earcon
            if math.isfinite(mic_dbfs) and mic_dbfs < threshold:
                self._step_db.append(mic_dbfs - far_end_dbfs)
                if len(self._step_db) < self._step_frames:
                    return
                self._recent_echo_db.append(mean_level_db(self._step_db))
                self._step_db.clear()
                if len(self._recent_echo_db) >= ECHO_LEARN_FRAMES // 2:
                    # Until the canceller is trusted (even its loudest frame is low) the
                    # loudest frame counts; then a high percentile, which alone can undo the
                    # trust (a visitor's first syllables, under the bar, must not: the bar
                    # would chase them up).
                    ranked = sorted(self._recent_echo_db)
                    high = ranked[int(ECHO_RELEARN_RANK * (len(ranked) - 1))]
                    self._echo_max_db = high if self.echo_cancelled_well else ranked[-1]
                    rank = ECHO_RELEARN_RANK if self.echo_cancelled_well else 1.0
                    self.echo_return_db = ranked[int(rank * (len(ranked) - 1))]
            return
        if self._guard_frames > ECHO_LEARN_FRAMES:
            return
        if not quiet and math.isfinite(mic_dbfs) and mic_dbfs < threshold:
            diff = mic_dbfs - far_end_dbfs
            self._period_echo_db = (
                diff if self._period_echo_db is None else max(self._period_echo_db, diff)
            )
            if self._frame_bands is not None:
                self.bands.learn(self._frame_bands[0], self._band_room_dbfs)
        if self._guard_frames == ECHO_LEARN_FRAMES and self._period_echo_db is not None:
            self.echo_return_db = self._period_echo_db
            self.bands.end_period()

    def _guard_floor_dbfs(self, far_end_dbfs: float | None) -> float:
        """Level a frame must reach to count while our own answer plays (no AEC).

        A Geigel-style double-talk rule: ``barge_in_margin_db`` above the speaker's echo
        (what it plays now + the echo return), and at least ``barge_in_min_level_dbfs`` (or
        :attr:`guard_min_level_dbfs`).
        """
        s = self.settings
        # With an echo canceller the margin over what is left of the echo is the rule; the
        # absolute minimum is for the raw echo's bursts (the room's onset level still holds).
        trusted = self.echo_cancelled_well and not self.earcon_echo
        least = self.guard_min_level_dbfs
        least = -math.inf if trusted else s.barge_in_min_level_dbfs if least is None else least
        if far_end_dbfs is None or not math.isfinite(far_end_dbfs):
            echo = None
        else:
            echo = far_end_dbfs + self._echo_return_now()
            if self._floor_relaxes:
                least = max(min(least, echo + FLOOR_OVER_ECHO_DB), least - FLOOR_RELAX_DB)
        if self.noise_floor_dbfs is None and (early := self._guard_room_dbfs) is not None:
            least = max(least, early + s.onset_margin_db)  # (the onset level's own, once known)
        if echo is None:
            return max(least, s.min_level_dbfs)
        return max(least, self._echo_held(echo) + s.barge_in_margin_db)

    def _echo_held(self, echo: float) -> float:
        """The echo the bar stands on: this frame's (``echo``), or the frame before's if louder
        and the microphone got no louder since (``HELD_BAR_MAX_RISE_DB``; the guard alone, lined
        up). Not for the minimum's relaxation (``FLOOR_OVER_ECHO_DB``): an answer near silence
        held there put a visitor under the bar a frame longer (used seed G2 s2611 mix 087)."""
        if not self._floor_relaxes or len(self._heard_lined_up) < 2:
            return echo
        (level_before, ref_before), (level, _) = self._heard_lined_up
        if level - level_before > HELD_BAR_MAX_RISE_DB:
            return echo
        return max(echo, ref_before + self._echo_return_now())

    @property
    def _floor_relaxes(self) -> bool:
        """The guard alone, lined up (``FLOOR_OVER_ECHO_DB``): no canceller (its raw guard sets
        :attr:`guard_min_level_dbfs`), not an earcon."""
        return (
            self.reference_aligned
            and not self.echo_relearn
            and self.guard_min_level_dbfs is None
            and not self.earcon_echo
        )

    def _hear_bands(self, live: bool = False) -> None:
        """``live``: the speaker's lined-up reference plays in this frame."""
        if self._frame_bands is None:
            if live:
                self.bands.decay()
            else:
                self.bands.silent()
        else:
            self.bands.hear(self._frame_bands[1])

    def _loud_in_bands(self, level: float, onset_level: float) -> bool:
        """Over the echo in enough bands (lined up, no AEC), and over the guard's minimum (less
        ``BAND_LEVEL_UNDER_MIN_DB``); right after a loud frame of the same voiced run, in one
        band learned from enough frames, from ``BAND_AFTER_LOUD_UNDER_MIN_DB`` under it."""
        s = self.settings
        if self._frame_bands is None or self.earcon_echo:
            return False
        after_loud = self._onset_loud > 0 and self._since_loud == 0
        under = BAND_AFTER_LOUD_UNDER_MIN_DB if after_loud else BAND_LEVEL_UNDER_MIN_DB
        if level < max(onset_level, s.barge_in_min_level_dbfs - under):
            return False
        verdict = self.bands.judge(
            self._frame_bands[0],
            s.barge_in_margin_db,
            self._band_room_dbfs,
            self._guard_learning,
            self._echo_return_now(),
        )
        if level >= s.barge_in_min_level_dbfs - BAND_LEVEL_UNDER_MIN_DB and verdict.loud:
            return True
        return after_loud and verdict.one_over

    def _loud_in_pitch(self, level: float, onset_level: float) -> bool:
        """A voice the answer lacks (the reference's pitch is known), over the guard's minimum.
        Needs no learned echo return: it holds from an answer's first frame on, before the
        echo's lag is measured, and however loud the echo. With AEC it judges the cleaned frame
        until the canceller is trusted: before that the bar stands at the loudest echo return
        heard (0 dB until 200 ms of answer are learned from), and a visitor under it, learned
        as echo, raised it further (lobby tuning first answers: barge-ins missed or 1.4 s late)."""
        if self._frame_pitch is None or self.earcon_echo or self.echo_cancelled_well:
            return False
        if level < max(onset_level, self.settings.barge_in_min_level_dbfs):
            return False
        pitch = self._frame_pitch  # (the canceller's is measured when asked for: a function)
        return pitch_the_answer_lacks(*(pitch() if callable(pitch) else pitch))

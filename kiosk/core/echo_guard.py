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
from kiosk.core.echo_consonant import HighBandCue
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
# A second voice (no AEC; kiosk.audio.echo_pitch): a frame the microphone repeats in at some pitch
# period at least this strongly (normalized autocorrelation)...
PITCH_MIN = 0.6
# ...and this much more strongly than the speaker's reference did at that period over its last
# few frames counts as over the echo, however loud the echo: the echo repeats where the answer
# does. (Tuning split + seeds 3-5, replayed: see the README's lobby section.)
PITCH_OVER_REFERENCE = 0.3
# Double talk behind a trusted canceller: a frame whose linear output (before residual suppression,
# which squashes a visitor's first syllable under the echo along with the echo) is this far over
# the guard's bar, and either loud voice after suppression too or...
DOUBLE_TALK_OVER_BAR_DB = 6.0
# ...at most this far under the filter's own echo estimate in that frame, pauses the answer at
# once, voiced or not: the visitor's first loud frame, 20-40 ms before webrtcvad calls the
# cleaned frame voice. Echo alone left the output >= 10 dB under the estimate wherever it was that
# far over the bar (lobby tuning voices, seeds 1 and 3-5, -20/-12/-6 dB: -10.4 dB at worst); and
# a leaking residual that webrtcvad calls voice sat just over the bar, its linear output too
# (seed 4, first answers at -6 dB: 0.6-4 dB), so it still needs the usual frames.
DOUBLE_TALK_OVER_ESTIMATE_DB = -3.0
# The answer's own voice behind a trusted canceller: SpeexDSP's filter now and then falls 10-20 dB
# behind the echo for 1-7 frames (a sustained loud vowel, a transition; a least-squares filter
# fitted on the seconds before left the echo at the room's level there), and what it leaves is
# over the bar, voiced, and as loud as the filter's echo estimate: it paused the answer
# (held-out mixes 073 at 7.18 s and 079's earlier answer, fresh tuning seed 24 mix 082 at 5.00 s).
# Its linear output then repeats at a period of at least this strength (normalized
# autocorrelation, kiosk.audio.echo_pitch; replayed tuning split + fresh seed 24 and those two
# mixes: 0.6 also made one barge-in at -12 dB 20 ms later, 0.7 none)...
ANSWER_PITCH_MIN = 0.7
# ...at which the reference repeated at most this much less strongly: the echo repeats where the
# answer does...
ANSWER_PITCH_WITHIN = 0.15
# ...and no louder than the filter's echo estimate plus this (dB): what a lagging filter leaves is
# the part of the echo it missed (those bursts: 1.7-21 dB under the estimate), a visitor talking
# over the answer at its pitch is more than the filter thinks is echo (fresh tuning seeds 24-25:
# 2-14 dB over it; without this her first loud frames were taken for the answer, 20-40 ms later;
# a stall of the filter on fresh tuning seed 92 mix 073 at 5.24 s, pitch 0.95 / 0.96, left 0.6 dB
# over it: 0 paused the answer there, 1 dB none and every barge-in delay replayed as before).
# Such a frame is not loud.
ANSWER_OVER_ESTIMATE_DB = 1.0
# ...or, when the filter has all but stopped cancelling (its linear output over its own estimate:
# a frame or two right after a first answer's canceller became trusted, tuning seed 25 mix 077 at
# 5.38 s, 4.7 dB over it, and the same answer heard before a later one), a microphone frame no
# louder over what the speaker plays than the echo alone usually is (its median over the last
# RAW_RETURN_FRAMES loud ones) plus this (dB): there the filter missed the echo, nothing was added
# to it. A visitor adds to it: first double-talk frames at the answer's pitch were 14 dB over the
# median (seed 25 mix 080), at any pitch 2.6 dB or more (tuning split, seeds 24-26, s241).
ANSWER_RAW_OVER_RETURN_DB = 2.0
RAW_RETURN_FRAMES = 50
RAW_RETURN_MIN_FRAMES = 10
# Behind a trusted filter that tells its estimate (SpeexDSP), while the speaker plays: a frame whose
# linear output is at most its estimate, the raw mic at least this far (dB) under the echo's usual
# return (as above), no pitch the answer lacks (PITCH_MIN, PITCH_OVER_REFERENCE) is the echo alone:
# not loud, no double talk (the consonant cue counts; no frame cleared after a loud one of the run,
# or while paused). At -6 dB echo through PulseAudio the filter leaked such frames (0.2-4.3 dB under
# its estimate, the mic 5.9-17.9 dB under the usual return) and the answer paused itself (used seed
# 281 mix 074: bench/results/self34-2026-12-05.md causes 1-2). A visitor's frames before her pause
# were -4.8..+1.2 dB from that return, the two under -3 dB at a pitch the answer lacks (52 replayed).
ECHO_ALONE_RAW_UNDER_RETURN_DB = 3.0
# ...or, up to this much over it (dB), when the filter still holds the echo over 3 kHz (its linear
# output there this far under its estimate there, or more): what it missed is low, the fundamental
# and first harmonics of a loud low vowel (s261 mix 072's first answer at 4.42 s, -20 dB echo:
# 1.3 dB over, 14.4 dB under over 3 kHz, pitch 0.97 / 0.93, yet the microphone 5.4 dB over the
# echo's usual return: the answer paused). A visitor adds her voice over 3 kHz too (tuning seed 44
# mix 087 at 4.94 s, at the answer's pitch: 1.6 dB over, 2.1 dB over over 3 kHz).
ANSWER_LOW_OVER_ESTIMATE_DB = 3.0
ANSWER_HIGH_UNDER_ESTIMATE_DB = -10.0
# WebRTC's AEC3 (audio.echo_cancel = "webrtc", kiosk.audio.webrtc_apm) tells only its output, and
# at the onset of a loud syllable after a quieter stretch it now and then leaks 2-3 frames of the
# echo, 7-30 dB under the raw echo (tuning split, first answers: -39 dBFS left under a -13.7 dBFS
# reference at -12 dB echo, -31.6 under -15.9 at -6 dB, -45.2 under -13.7 at -20 dB; each paused
# the answer). Behind it, a frame whose raw microphone is no louder over the reference than the
# echo's usual return + ANSWER_RAW_OVER_RETURN_DB is the echo alone, whatever it left (replayed on
# the tuning split and fresh tuning seed 130: self-pauses 3 and 1 -> 0; 1.0 dB instead of 2.0 let
# two back; a floor under the echo return judged by, -32 dB, cost a visitor 80 ms, kept none out).
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
# Echo return assumed while the first playback period still learns (mic as loud as the speaker
# signal; with AEC, for an earcon): only speech far louder than the echo can barge in then.
DEFAULT_ECHO_RETURN_DB = 0.0


class EchoGuard:
    """The echo half of the endpointer (its state is set up by ``Endpointer.__init__``)."""

    settings: VadSettings
    noise: NoiseFloor
    _room_dbfs: float | None
    _tail_decay_db: float
    _echo_ref_dbfs: float
    bands: EchoBands
    _frame_bands: BandLevels | None
    _frame_pitch: tuple[float, float] | Callable[[], tuple[float, float]] | None  # (mic, reference)
    _frame_linear: tuple[float, ...] | None
    _raw_returns: deque[float]
    _speaker_now: bool  # the speaker played within the canceller's span of this frame
    _gap_left: int
    # Trusted before this frame's echo was learned from: the frame in which the trust comes
    # (the bar drops, 16 dB at once on held-out s241 mix 087's earlier answer) is judged as
    # before it for double talk: what it leaves was under the old bar, and its linear pitch
    # was not measured (the canceller measured the cleaned frame's, as for an untrusted one).
    _trusted_before_frame = False
    _frame_linear_pitch: Callable[[], tuple[float, float]] | None
    high_band: HighBandCue
    # The canceller leaks now and then, and tells only its output (AEC3): the raw microphone's
    # level of each frame it filtered is set in raw_mic_dbfs (EchoGuard._leaked_echo).
    leaky_canceller: bool = False
    raw_mic_dbfs: float | None = None
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
            self.bands.end_period()
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
        return max(least, echo + s.barge_in_margin_db)

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

    def _hear_bands(self) -> None:
        if self._frame_bands is None:
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

    def _double_talk(self, floor_dbfs: float, loud_voice: bool = False) -> bool:
        """A second voice over the cancelled echo (AEC trusted): the linear output well over the
        bar and about as loud as the filter's echo estimate (``DOUBLE_TALK_OVER_ESTIMATE_DB``), or
        well over the bar in a frame that is loud voice after suppression too; or a consonant
        over the echo in the band over 3 kHz (:class:`HighBandCue`)."""
        consonant = self.high_band.hear()
        if self._frame_linear is None or self.earcon_echo or not self.echo_cancelled_well:
            return False
        if not self._trusted_before_frame:
            return False
        if consonant:  # (unless the filter's stall at the answer's pitch, as below)
            return not self._answers_own_voice()
        linear, estimate = self._frame_linear[:2]
        if linear < floor_dbfs + DOUBLE_TALK_OVER_BAR_DB:
            return False
        if not (loud_voice or linear - estimate >= DOUBLE_TALK_OVER_ESTIMATE_DB):
            return False
        # Last: the linear output's pitch is measured only for a frame it can still clear.
        return not (self._answers_own_voice() or self._trusted_echo_alone())

    def _answers_own_voice(self) -> bool:
        """Behind a trusted canceller, the linear output repeats at a period the answer repeats
        at as strongly (``ANSWER_PITCH_MIN``, ``ANSWER_PITCH_WITHIN``) and is no louder than the
        filter's echo estimate (``ANSWER_OVER_ESTIMATE_DB``; ``ANSWER_LOW_OVER_ESTIMATE_DB`` where
        the filter still holds the echo over 3 kHz), or the microphone no louder than
        the echo alone (``ANSWER_RAW_OVER_RETURN_DB``): the filter fell behind the echo, and
        what it left is the answer itself, not a second voice. The pitch is asked for last
        (the canceller measures it on demand: ~115 us of CPU a frame, ad hoc)."""
        if self._frame_linear_pitch is None or self._frame_linear is None or self.earcon_echo:
            return False
        if not self.echo_cancelled_well:
            return False
        linear, estimate = self._frame_linear[:2]
        over = linear - estimate
        if over > ANSWER_OVER_ESTIMATE_DB and not (
            self._missed_only_low(over) or self._echo_alone_in_microphone()
        ):
            return False
        mic, reference = self._frame_linear_pitch()
        return mic >= ANSWER_PITCH_MIN and reference >= mic - ANSWER_PITCH_WITHIN

    def _missed_only_low(self, over_db: float) -> bool:
        """The linear output at most ``ANSWER_LOW_OVER_ESTIMATE_DB`` over the filter's estimate
        (``over_db``), and over 3 kHz at least ``ANSWER_HIGH_UNDER_ESTIMATE_DB`` under it."""
        high = self.high_band.frame
        if high is None or over_db > ANSWER_LOW_OVER_ESTIMATE_DB:
            return False
        return high[0] - high[1] <= ANSWER_HIGH_UNDER_ESTIMATE_DB

    def _frame_raw_dbfs(self) -> float | None:
        """The raw microphone's level of this frame, if the canceller told it."""
        frame = self._frame_linear
        if frame is not None and len(frame) > 2:
            return frame[2]
        return self.raw_mic_dbfs if self.leaky_canceller and self.echo_relearn else None

    def _echo_alone_in_microphone(self) -> bool:
        """The raw microphone frame is no louder over what the speaker plays than the echo's
        usual return (the median of the last loud frames) + ``ANSWER_RAW_OVER_RETURN_DB``."""
        raw = self._frame_raw_dbfs()
        if raw is None or len(self._raw_returns) < RAW_RETURN_MIN_FRAMES:
            return False
        usual = sorted(self._raw_returns)[len(self._raw_returns) // 2]
        return raw - self._echo_ref_dbfs <= usual + ANSWER_RAW_OVER_RETURN_DB

    def _leaked_echo(self) -> bool:
        """Behind a leaky canceller (AEC3), the frame is the echo alone in the raw microphone;
        behind a trusted one that tells its estimate, :meth:`_trusted_echo_alone`."""
        if self.leaky_canceller:
            return self._echo_alone_in_microphone()
        return self._trusted_echo_alone()

    def _trusted_echo_alone(self) -> bool:
        """Behind a trusted canceller, while the speaker plays and no voiced run has a loud
        frame yet (nor a pause stands): the linear output at most the filter's estimate, the raw
        microphone ``ECHO_ALONE_RAW_UNDER_RETURN_DB`` under the echo's usual return, and no
        pitch the answer lacks in the linear output (asked for last)."""
        frame = self._frame_linear
        if frame is None or len(frame) < 3 or self.earcon_echo or not self.echo_cancelled_well:
            return False
        if not self._speaker_now or self._onset_loud or self._gap_left:
            return False
        linear, estimate, raw = frame[:3]
        if linear > estimate or len(self._raw_returns) < RAW_RETURN_MIN_FRAMES:
            return False
        usual = sorted(self._raw_returns)[len(self._raw_returns) // 2]
        if raw - self._echo_ref_dbfs > usual - ECHO_ALONE_RAW_UNDER_RETURN_DB:
            return False
        if self._frame_linear_pitch is None:
            return False
        mic, reference = self._frame_linear_pitch()
        return not (mic >= PITCH_MIN and mic - reference >= PITCH_OVER_REFERENCE)

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
        mic, reference = pitch() if callable(pitch) else pitch
        return mic >= PITCH_MIN and mic - reference >= PITCH_OVER_REFERENCE

"""The echo guard's cues behind a trusted echo canceller (:class:`TrustedCancellerCues`, a part
of :class:`kiosk.core.echo_guard.EchoGuard`): a second voice over the cancelled echo (double
talk), and what only looks like one: the filter falling behind the answer's own voice, or leaking
the echo alone. They read what the canceller tells of each frame: its linear output, its echo
estimate and the raw microphone (SpeexDSP), or only the raw level beside its output (AEC3).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from kiosk.core.echo_consonant import HighBandCue

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
# ...but over the first WARM_UP_TRUSTED_MS of answer the canceller is trusted since start-up, that
# estimate path also needs the raw microphone this far (dB) over the echo's usual raw return: a
# filter trusted for the first time still leaks a frame now and then, at or over its own estimate
# (SpeexDSP through PulseAudio, the first answer after start-up, used seeds 791 mix 079 and 761 mix
# 086: 0.22-0.72 s after that trust, the raw mic 2.8-4.5 dB over the usual return, the answer
# paused itself; bench/results/warm35-2026-12-06.md). A visitor adds to the echo (replayed, 75
# later- and 20 first-answer barge-ins: none slowed). Trust comes and goes within later answers
# too, but there a visitor's first frames look like those leaks in every other respect (warm35):
# the window is the first 0.8 s of trust since start-up only (a new answer, a relearned echo,
# a reload that keeps the canceller do not start it again: Endpointer.carry_room).
WARM_UP_TRUSTED_MS = 800
WARM_UP_RAW_OVER_RETURN_DB = 5.0
# Those leaks left the linear output -0.5..+2.1 dB from the estimate; one this far over it, or
# more (a visitor over the echo, or a filter all but stalled: ANSWER_RAW_OVER_RETURN_DB judges it)
# is judged as before.
WARM_UP_LEAK_OVER_ESTIMATE_DB = 3.0
# In that window, a frame whose linear output is correlated with the filter's own estimate this
# much or more (<linear, estimate> / (|linear| |estimate|) = (g - 1) |estimate| / |linear|, g as
# for STALE_FILTER_GAIN) is the echo the filter falls short of, not a voice: a filter trusted a
# frame or two ago still estimated half the echo's amplitude (g 1.6-2.0) and left the rest over
# the bar, in the cleaned frame too (through PulseAudio, used seed 1201 mix 079: 0.45 and 0.40 at
# the 1st and 2nd trusted frame; 1041 mix 081: 0.55, then 0.33, which still paused it). A visitor's voice is not
# correlated with the estimate: of 474 replayed visitor frames that were loud or double talk
# behind a trusted filter (first-answer and later barge-ins), none was over 0.35, and in that
# window 0.33 at most (0.3 made a -6 dB first-answer barge-in 20 ms later; replayed:
# bench/results/warm39-2026-12-06.md). Such a frame is not loud, no double talk. (Levels that
# give a correlation over 1 are not of one frame's microphone = estimate + linear output: not
# judged by it.)
WARM_UP_SHORT_OF_ECHO_CORR = 0.35
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
# A stale filter: while the canceller measures the lag of a new playback stretch again (SpeexDSP,
# EchoCanceller.lag_remeasuring: the echo path may have moved since the filter learned it), a
# frame whose echo estimate is not in the microphone is no evidence of a voice over a working
# filter: its gain g = <mic, estimate> / |estimate|^2 (from the three levels: the linear output is
# the microphone less the estimate) is ~1 where the estimate is the echo, a visitor on top or not
# (her voice is not correlated with it), and under this where the filter holds an alignment the
# echo left. Such a frame is the answer's own voice (not loud, no double talk, no consonant).
# Used seed 811 mix 085's later answer through PulseAudio: the echo came 0.44 ms later than in
# the first answer, the filter went on cancelling it for 24 trusted frames (g 0.96-1.23), then
# left 3 frames at g 0.38, 0.29, 0.22 (linear output 8 dB over its estimate, as loud as the
# microphone) and the answer paused itself (bench/results/own36-2026-12-06.md). On the rig's
# traces (bench/results/ug38-2026-12-06.md) the answers that paused themselves there read g 0.38
# (s811/085's pausing frame), 0.35 and -0.19 (s901 echo-073, -12 dB); a visitor's frames in that
# window before her pause 0.96 or more (only 6). Outside it g alone does not tell her: the frame
# that paused for her read under 0.5 in 4 barge-ins of 109 (0.29-0.43: a loud visitor over a
# quiet estimate, g - 1 = <her, estimate> / |estimate|^2).
STALE_FILTER_GAIN = 0.5
# A young filter that adds to the echo: in the first WARM_UP_TRUSTED_MS of trust since start-up,
# a frame whose estimate is not in the microphone (g under YOUNG_FILTER_GAIN: the linear output
# louder than the microphone it was cancelled from) while the raw microphone is less than
# WARM_UP_RAW_OVER_RETURN_DB over the echo's usual return (nothing was added in the room) is the
# filter's own error, however far over its estimate: it is judged by the answer's pitch
# (ANSWER_PITCH_MIN, ANSWER_PITCH_WITHIN) as a frame no louder than the estimate is. Through
# PulseAudio on the 80 ms room pipe (used seeds 2291 and 2301 mix 081, 25 and 36 trusted frames
# since start-up) the filter left frames 4.3 / 5.9 dB over its estimate at g 0.44 / 0.37, the raw
# microphone 2.4 / 4.2 dB over the usual return, at the answer's pitch (0.86 / 0.92 and 0.79):
# the warm-up answer paused itself (bench/results/warm46-classify-2026-12-07.txt). Replayed
# visitors: in the window one frame with g under 0.6 and the raw microphone under 5 dB paused
# (g 0.56, pitch 0.60 / 0.14: not the answer's); at the answer's pitch with g <= 0.5 only after
# 92 trusted frames or more.
YOUNG_FILTER_GAIN = 0.5
# The echo louder than the filter models: behind a trusted filter that tells it (SpeexDSP,
# kiosk.audio.echo_cancel.LinearLevels.reference_fits), a frame whose linear output stands at least
# MISSED_ECHO_OVER_ESTIMATE_DB over its echo estimate and of which a least-squares FIR on the
# speaker's reference explains at least MISSED_ECHO_FIT, in this frame and the trusted frame before
# it (MISSED_ECHO_FRAMES in a row), is the echo the filter missed, not a second voice: the answer's
# own voice (not loud, no double talk). The cleaned frame and what the guard learns are untouched.
# A young filter at the answer's next word (used seed 1621 mix 080 through PulseAudio, 11 traced
# runs: the 6th trusted frame since start-up paused the warm-up answer by double talk's estimate
# path) left pairs fitting 0.949-0.984, 1.5-7.4 dB over the estimate; of 248 replayed barge-ins the
# visitor's highest pair from her onset to her pause was 0.939 / 0.942 (stop 42's s2151 mix 081,
# its first frame 0.1 dB over the estimate). One frame alone is not enough: s2151 mix 085's visitor
# fitted 0.944 once, and a one-frame rule cost her 60 ms. Replayed over 300 stored traces: the 11
# kind-A self-pauses gone, none added, no barge-in moved (bench/results/warm43-screen-2026-12-07.txt).
MISSED_ECHO_FIT = 0.945
MISSED_ECHO_FRAMES = 2
MISSED_ECHO_OVER_ESTIMATE_DB = 1.0
# WebRTC's AEC3 (audio.echo_cancel = "webrtc", kiosk.audio.webrtc_apm) tells only its output, and
# at the onset of a loud syllable after a quieter stretch it now and then leaks 2-3 frames of the
# echo, 7-30 dB under the raw echo (tuning split, first answers: -39 dBFS left under a -13.7 dBFS
# reference at -12 dB echo, -31.6 under -15.9 at -6 dB, -45.2 under -13.7 at -20 dB; each paused
# the answer). Behind it, a frame whose raw microphone is no louder over the reference than the
# echo's usual return + ANSWER_RAW_OVER_RETURN_DB is the echo alone, whatever it left (replayed on
# the tuning split and fresh tuning seed 130: self-pauses 3 and 1 -> 0; 1.0 dB instead of 2.0 let
# two back; a floor under the echo return judged by, -32 dB, cost a visitor 80 ms, kept none out).


def filter_gain(linear_dbfs: float, estimate_dbfs: float, mic_dbfs: float) -> float | None:
    """g = <mic, estimate> / |estimate|^2 of a frame from its levels (the linear output is the
    microphone less the estimate: |lin|^2 = |mic|^2 + |est|^2 - 2 <mic, est>); None for a silent
    estimate."""
    lin, est, mic = (10 ** (x / 10) if math.isfinite(x) else 0.0 for x in (linear_dbfs, estimate_dbfs, mic_dbfs))
    if est <= 0.0:
        return None
    return (mic + est - lin) / (2.0 * est)


def pitch_the_answer_lacks(mic: float, reference: float) -> bool:
    """A period the frame repeats at (``PITCH_MIN``) and the answer does not
    (``PITCH_OVER_REFERENCE``): normalized autocorrelations of the microphone and the reference."""
    return mic >= PITCH_MIN and mic - reference >= PITCH_OVER_REFERENCE


class TrustedCancellerCues:
    """Double talk and the echo alone behind a canceller (the guard's state is set up by
    ``Endpointer.__init__``; the bar, the trust and the voiced run are the guard's)."""

    _echo_ref_dbfs: float
    _frame_linear: tuple[float, ...] | None  # (linear output, echo estimate[, raw mic]) dBFS
    _raw_returns: deque[float]
    _speaker_now: bool  # the speaker played within the canceller's span of this frame
    _gap_left: int
    _onset_loud: int
    earcon_echo: bool
    echo_relearn: bool
    echo_cancelled_well: bool  # (EchoGuard's property)
    # Trusted before this frame's echo was learned from: the frame in which the trust comes
    # (the bar drops, 16 dB at once on held-out s241 mix 087's earlier answer) is judged as
    # before it for double talk: what it leaves was under the old bar, and its linear pitch
    # was not measured (the canceller measured the cleaned frame's, as for an untrusted one).
    _trusted_before_frame = False
    frame_ms: int
    _trusted_frames_since_start: int  # frames the speaker sounded in, trusted before each
    _frame_linear_pitch: Callable[[], tuple[float, float]] | None
    high_band: HighBandCue
    # The canceller leaks now and then, and tells only its output (AEC3): the raw microphone's
    # level of each frame it filtered is set in raw_mic_dbfs (_leaked_echo).
    leaky_canceller: bool = False
    raw_mic_dbfs: float | None = None

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
        if not loud_voice and self._in_warm_up() and self._warm_up_leak():
            return False
        # Last: the linear output's pitch is measured only for a frame it can still clear.
        return not (self._answers_own_voice() or self._trusted_echo_alone())

    def _in_warm_up(self) -> bool:
        """Within the first ``WARM_UP_TRUSTED_MS`` of answer behind a trusted canceller since
        start-up (this frame counted)."""
        return self._trusted_frames_since_start * self.frame_ms < WARM_UP_TRUSTED_MS

    def _warm_up_leak(self) -> bool:
        """The linear output at most ``WARM_UP_LEAK_OVER_ESTIMATE_DB`` over the filter's estimate
        and the raw microphone less than ``WARM_UP_RAW_OVER_RETURN_DB`` over the echo's usual
        return: no more than the first trust's leak brings alone (not known: no, as before)."""
        if self._warm_up_short_of_echo():
            return True
        if self._frame_linear is None:
            return False
        linear, estimate = self._frame_linear[:2]
        if linear - estimate > WARM_UP_LEAK_OVER_ESTIMATE_DB:
            return False
        return self._nothing_added_in_room()

    def _nothing_added_in_room(self) -> bool:
        """The raw microphone less than ``WARM_UP_RAW_OVER_RETURN_DB`` over the echo's usual
        return (not known: no)."""
        raw, usual = self._frame_raw_dbfs(), self._usual_raw_return()
        if raw is None or usual is None:
            return False
        return raw - self._echo_ref_dbfs - usual < WARM_UP_RAW_OVER_RETURN_DB

    def _warm_up_short_of_echo(self) -> bool:
        """Within the warm-up (:meth:`_in_warm_up`), behind a canceller trusted before this frame
        that tells the microphone's level: the linear output correlated with the filter's estimate
        at least ``WARM_UP_SHORT_OF_ECHO_CORR`` (the estimate short of the echo)."""
        frame = self._frame_linear
        if frame is None or len(frame) < 3 or self.earcon_echo or not self.echo_cancelled_well:
            return False
        if not (self._trusted_before_frame and self._in_warm_up()):
            return False
        linear, estimate, mic = (10 ** (x / 10) if math.isfinite(x) else 0.0 for x in frame[:3])
        if linear <= 0.0 or estimate <= 0.0:
            return False
        gain = (mic + estimate - linear) / (2.0 * estimate)
        return WARM_UP_SHORT_OF_ECHO_CORR <= (gain - 1.0) * math.sqrt(estimate / linear) <= 1.0

    def _answers_own_voice(self) -> bool:
        """Behind a trusted canceller, the linear output repeats at a period the answer repeats
        at as strongly (``ANSWER_PITCH_MIN``, ``ANSWER_PITCH_WITHIN``) and is no louder than the
        filter's echo estimate (``ANSWER_OVER_ESTIMATE_DB``; ``ANSWER_LOW_OVER_ESTIMATE_DB`` where
        the filter still holds the echo over 3 kHz), or the microphone no louder than
        the echo alone (``ANSWER_RAW_OVER_RETURN_DB``), or in the warm-up a young filter that
        adds to the echo (:meth:`_young_filter_adds`): the filter fell behind the echo, and
        what it left is the answer itself, not a second voice; or a stale filter
        (:meth:`_stale_filter`), whatever it left. The pitch is asked for last (the canceller
        measures it on demand: ~115 us of CPU a frame, ad hoc)."""
        if self._frame_linear is None or self.earcon_echo or not self.echo_cancelled_well:
            return False
        if self._stale_filter() or self._missed_echo():
            return True
        if self._frame_linear_pitch is None:
            return False
        linear, estimate = self._frame_linear[:2]
        over = linear - estimate
        if over > ANSWER_OVER_ESTIMATE_DB and not (
            self._missed_only_low(over)
            or self._echo_alone_in_microphone()
            or self._young_filter_adds()
        ):
            return False
        mic, reference = self._frame_linear_pitch()
        return mic >= ANSWER_PITCH_MIN and reference >= mic - ANSWER_PITCH_WITHIN

    def _missed_echo(self) -> bool:
        """This frame and the ``MISSED_ECHO_FRAMES`` - 1 trusted frames before it: each one's
        linear output at least ``MISSED_ECHO_OVER_ESTIMATE_DB`` over the filter's estimate and
        the reference's (``MISSED_ECHO_FIT``)."""
        frame = self._frame_linear
        fits = getattr(frame, "reference_fits", None)
        if frame is None or fits is None or frame[0] - frame[1] < MISSED_ECHO_OVER_ESTIMATE_DB:
            return False  # (this frame's levels first: a fit only for a frame that can pass)
        got = fits(MISSED_ECHO_FRAMES)
        return len(got) >= MISSED_ECHO_FRAMES and all(
            over >= MISSED_ECHO_OVER_ESTIMATE_DB and fit >= MISSED_ECHO_FIT for over, fit in got
        )

    def _young_filter_adds(self) -> bool:
        """In the warm-up (:meth:`_in_warm_up`), behind a canceller trusted before this frame that
        tells the microphone's level: the estimate not in the microphone (``YOUNG_FILTER_GAIN``)
        and the raw microphone under ``WARM_UP_RAW_OVER_RETURN_DB`` over the echo's usual return."""
        frame = self._frame_linear
        if frame is None or len(frame) < 3:
            return False
        if not (self._trusted_before_frame and self._in_warm_up()):
            return False
        g = filter_gain(*frame[:3])
        return g is not None and g < YOUNG_FILTER_GAIN and self._nothing_added_in_room()

    def _stale_filter(self) -> bool:
        """The canceller re-measures this stretch's lag and the filter's estimate is not in the
        microphone (``STALE_FILTER_GAIN``)."""
        frame = self._frame_linear
        if frame is None or len(frame) < 3 or not getattr(frame, "lag_remeasuring", False):
            return False
        g = filter_gain(*frame[:3])
        return g is not None and g < STALE_FILTER_GAIN

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
        raw, usual = self._frame_raw_dbfs(), self._usual_raw_return()
        if raw is None or usual is None:
            return False
        return raw - self._echo_ref_dbfs <= usual + ANSWER_RAW_OVER_RETURN_DB

    def _usual_raw_return(self) -> float | None:
        """The echo's usual raw return (mic - speaker, dB): the last loud frames' median."""
        if len(self._raw_returns) < RAW_RETURN_MIN_FRAMES:
            return None
        return sorted(self._raw_returns)[len(self._raw_returns) // 2]

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
        usual = self._usual_raw_return()
        if linear > estimate or usual is None:
            return False
        if raw - self._echo_ref_dbfs > usual - ECHO_ALONE_RAW_UNDER_RETURN_DB:
            return False
        if self._frame_linear_pitch is None:
            return False
        return not pitch_the_answer_lacks(*self._frame_linear_pitch())

"""Local endpointing: when does a person start and stop speaking, and which audio is speech.

Owns the pre-roll ring buffer, the onset rule (``min_speech_ms`` of voiced frames), the
hangover that ends an utterance, and the half-duplex barge-in guard. Onset and continuation
are relative to the room: the ambient level is learned while idle (:mod:`kiosk.core.noisefloor`)
and a frame counts only that far above it. Does not own the voice detector itself (injected:
``is_speech(frame) -> bool``, webrtcvad + Silero in production) or what happens upstream
(``kiosk.core.turns``).

Only speech goes upstream: silence inside an utterance is held back and released only if
speech resumes, so trailing silence (the hangover) is never streamed or billed.
Time is the frame count: every frame is exactly ``frame_ms`` long.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

from kiosk.config import VadSettings
from kiosk.core.echo_bands import BandLevels, EchoBands
from kiosk.core.echo_consonant import HighBandCue
from kiosk.core.echo_double_talk import RAW_RETURN_FRAMES
from kiosk.core.echo_guard import (  # noqa: F401 (re-exported)
    AEC_LEARN_STEP_MS,
    AEC_TRUSTED_RETURN_DB,
    DEFAULT_ECHO_RETURN_DB,
    ECHO_LEARN_FRAMES,
    ECHO_RELEARN_ABOVE_ROOM_DB,
    ECHO_RELEARN_FRAMES,
    ECHO_RELEARN_RANK,
    RELEARN_ENOUGH_FRAMES,
    EchoGuard,
)
from kiosk.core.endpoint_events import EndOfSpeech, EndpointEvent, Onset, Speech
from kiosk.core.levels import frame_dbfs, frame_levels_dbfs  # noqa: F401 (re-exported)
from kiosk.core.noisefloor import NoiseFloor
from kiosk.core.suspicion import SUSPECT_GAP_MS, SUSPECT_RUN_GAP_MS, BargeInSuspicion  # noqa: F401
from kiosk.core.syllables import SyllableCounter, block_levels_dbfs

# Unguarded frames that end a playback period (500 ms).
ECHO_PERIOD_GAP_FRAMES = 25
# The echo tail falls by this much over ``echo_tail_ms`` (a room's RT60).
ECHO_TAIL_DECAY_DB = 60.0
# After a turn is cut short mid-speech, the visitor's words stay out of the room's level this long.
CUT_SPEECH_MS = 3000
# The speaker's last level stays the echo reference this long after its queue ran empty
# (what PlaybackBuffer.recent_output_dbfs spans).
ECHO_REFERENCE_MS = 200
# A syllable nucleus peaks at least this far above the room's ambient level.
NUCLEUS_ABOVE_ROOM_DB = 9.0


class Endpointer(BargeInSuspicion, EchoGuard):
    """Feed fixed-size PCM16 frames; get onset / speech / end events.

    Args:
        is_speech: the voice detector for one frame.
        settings: ``[vad]`` settings (min speech, hangover, pre-roll, barge-in guard).
        frame_ms: length of every frame.
        no_speech_timeout_s: when opened by :meth:`force_open` (button), end with
            ``no_speech=True`` if nobody speaks this long.
    """

    def __init__(
        self,
        is_speech: Callable[[bytes], bool],
        settings: VadSettings,
        frame_ms: int,
        *,
        no_speech_timeout_s: float = 5.0,
    ) -> None:
        self._is_speech = is_speech
        # A detector with a second opinion to wake (webrtcvad + Silero) is told the level
        # below which no frame could count towards an onset: the room's, not only the fixed
        # min_level_dbfs (a quiet room's noise has frames above that, and webrtcvad calls some
        # of them voice).
        self._tells_wake_level = hasattr(is_speech, "wake_level_dbfs")
        self.settings = settings
        self.frame_ms = frame_ms
        self._preroll: deque[bytes] = deque(maxlen=max(0, settings.preroll_ms // frame_ms))
        self._onset_frames: list[bytes] = []  # voiced run not yet long enough to count
        self._onset_loud = 0  # frames of that run at or above the level floor
        self._close_loud = 0  # of them, the last each under SUSPECT_RUN_GAP_MS after the one before
        self._since_loud = 0  # frames of the run since its last loud one
        self._suspect_frames = 0  # loud frames in a row the detector's first opinion calls voice
        self._paused_for = 0  # the suspicion (frames) that paused the answer, while it stands
        self._gap_left = 0  # frames the onset run may still go without loud voice, paused
        self._gap_frames = max(1, SUSPECT_GAP_MS // frame_ms)
        self._run_gap_frames = max(1, SUSPECT_RUN_GAP_MS // frame_ms)
        self._pause: list[bytes] = []  # silence inside an utterance, held back
        self._in_speech = self._forced = False
        self._voiced_ms = self._silence_ms = 0
        self._utterance_ms = 0  # onset .. last voiced frame
        self.syllables = SyllableCounter()  # nuclei since the onset
        self.guarded = False  # half-duplex guard: set while the kiosk's own answer plays
        self.noise = NoiseFloor(frame_ms, settings.noise_window_s)
        self._room_dbfs: float | None = None  # noise_floor_dbfs, kept up to date by _learn_room
        # The echo reference outlives the playback queue by the room's tail: the last block's
        # echo is still in the microphone when the queue runs empty.
        self._tail_frames, self._tail_left = max(0, settings.echo_tail_ms // frame_ms), 0
        self._tail_decay_db = ECHO_TAIL_DECAY_DB * frame_ms / max(1, settings.echo_tail_ms)
        self._echo_ref_dbfs = -math.inf
        self._heard_lined_up: deque[tuple[float, float]] = deque(maxlen=2)
        # Lined up (no AEC), the guard judges each band too (kiosk.core.echo_bands).
        self.bands = EchoBands(self._tail_decay_db)
        self._frame_bands: BandLevels | None = None
        self._frame_pitch: tuple[float, float] | Callable[[], tuple[float, float]] | None = None
        self._frame_linear: tuple[float, ...] | None = None  # AEC: (linear output, estimate, mic)
        self._raw_returns: deque[float] = deque(maxlen=RAW_RETURN_FRAMES)  # AEC: mic - speaker dB
        self._speaker_now = False  # the speaker's reference is live in this frame
        self._frame_linear_pitch: Callable[[], tuple[float, float]] | None = None  # AEC trusted
        self.high_band = HighBandCue()  # AEC trusted: the linear output over 3 kHz
        self._trusted_once = False  # the AEC was trusted once (the cue counts in a distrust after)
        self._trusted_frames_since_start = 0  # AEC: answer frames heard trusted (the warm-up)
        self._double_talk_now = False  # this frame alone pauses the answer (double talk behind AEC)
        self._learning_run = False  # the onset run began while the guard was still learning
        self._since_guarded = ECHO_REFERENCE_MS  # frames since the app last set guarded (long ago)
        self._cut_left = 0  # frames after a turn was cut short mid-speech
        # Learned echo return (mic dB - speaker dB at its loudest); None until first learned.
        self.echo_return_db: float | None = None
        self._period_echo_db: float | None = None
        self._guard_frames = 0  # frames into the current guarded playback period
        # An echo canceller cleans the input: what is left of the echo shrinks as it adapts,
        # so the echo return is followed all along (over the last 0.5 s of loud frames, from
        # 200 ms of them on, across answers), not learned at the start of each playback period.
        self.echo_relearn = False
        self.reference_aligned = False  # far_end_dbfs is lined up with each frame (no AEC)
        self.earcon_echo = False  # per frame: an earcon may echo in it (the filter may not know it)
        self._recent_echo_db: deque[float] = deque(maxlen=ECHO_RELEARN_FRAMES)  # one per step
        self._step_frames, self._step_db = max(1, AEC_LEARN_STEP_MS // frame_ms), list[float]()
        self._echo_max_db = math.inf  # the loudest of them (trusted: their high percentile)
        self._unguarded_frames = 0
        self.no_speech_timeout_s = no_speech_timeout_s

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def _learn_room(self) -> None:
        # Read on every frame (two or three times), changed at most every 100 ms: kept here.
        levels = [x for x in (self.noise.dbfs, self.noise.ambient_dbfs) if x is not None]
        self._room_dbfs = max(levels) if levels else None

    @property
    def onset_level_dbfs(self) -> float:
        """A voiced frame counts towards an onset at this level or louder (unguarded)."""
        s = self.settings
        room = self.noise_floor_dbfs
        return s.min_level_dbfs if room is None else max(s.min_level_dbfs, room + s.onset_margin_db)

    @property
    def continue_level_dbfs(self) -> float:
        """A voiced frame keeps an open utterance going at this level or louder."""
        s = self.settings
        room = self.noise_floor_dbfs
        if room is None:
            return s.min_level_dbfs - s.onset_margin_db + s.continue_margin_db
        return room + s.continue_margin_db

    @property
    def pause_hangover_ms(self) -> int:
        """How long the current pause may last before the utterance ends.

        Semantic end of turn from how much was said: an utterance as long as a sentence in
        time and in syllables (``complete_after_ms`` from onset and ``complete_after_syllables``
        nuclei, which a slow speaker's half question lacks), or clearly long whatever the count
        (``complete_long_ms``: noise can hide the dips, a late onset the start), is taken as
        finished and ends after ``complete_hangover_ms``; a shorter one ("Excuse me, where is
        ...") may pause up to ``hangover_ms``. (Tuning split, SNR >= 10 dB: mid-sentence
        pauses came after 2-8 nuclei and <= 1.22 s; ends after 7-24, < 9 only after late onsets.)
        """
        s, said_ms = self.settings, self._utterance_ms
        if said_ms >= s.complete_long_ms or (
            said_ms >= s.complete_after_ms and self.syllables.count >= s.complete_after_syllables
        ):
            return min(s.complete_hangover_ms, s.hangover_ms)
        return s.hangover_ms

    @property
    def echo_guarded(self) -> bool:
        """The guard is up: our answer plays, or its echo tail still rings."""
        return self.guarded or self._tail_left > 0

    def force_open(self) -> None:
        """Treat the person as speaking now (button tap / push-to-talk / wake word)."""
        self._in_speech = True
        self._forced = True
        # No pre-roll goes up for a button-opened turn, and audio from before it must not
        # become the pre-roll of the next onset either.
        self._preroll.clear()
        self._voiced_ms = 0
        self._silence_ms = 0
        self._utterance_ms = 0
        self.syllables.reset()
        self._pause = []
        self._drop_onset_run()
        self._forget_suspicion()

    def _drop_onset_run(self) -> None:
        """Forget a voiced run not yet proved an onset (its frames and both loud counts)."""
        self._onset_frames = []
        self._onset_loud = 0
        self._close_loud = 0

    def carry_room(self, other: Endpointer, canceller_kept: bool = False) -> None:
        """Adopt what ``other`` learned about the room: its ambient level and echo return
        (a settings reload builds a new endpointer; the room did not change). With
        ``canceller_kept`` (the reload keeps the adapted echo canceller), also how well that
        canceller was cancelling, so its trust is not relearned on the next answer, and how long
        it was trusted (its warm-up is over where it was: echo_double_talk.WARM_UP_TRUSTED_MS)."""
        self.noise.carry_from(other.noise)
        self._learn_room()
        self.echo_return_db = other.echo_return_db
        self.bands.returns = list(other.bands.returns)
        self.bands.sparse = list(other.bands.sparse)
        if canceller_kept:
            self._echo_max_db = other._echo_max_db
            self._trusted_frames_since_start = other._trusted_frames_since_start
            self._recent_echo_db.extend(other._recent_echo_db)

    def reset(self) -> None:
        """Forget the current utterance (the turn ended elsewhere: mute, barge-in, error).

        Also forgets the pre-roll and a half-proved onset: audio from before the reset must
        not be sent as the next onset's pre-roll (after a mute it may be minutes old).
        """
        if self._in_speech:
            self._cut_left = CUT_SPEECH_MS // self.frame_ms
        self._preroll.clear()
        self._in_speech = False
        self._forced = False
        self._drop_onset_run()
        self._forget_suspicion()
        self._learning_run = False
        self._pause = []
        self._voiced_ms = 0
        self._silence_ms = 0
        self._utterance_ms = 0
        self.syllables.reset()

    def process(
        self,
        frame: bytes,
        far_end_dbfs: float | None = None,
        level_dbfs: float | None = None,
        bands: BandLevels | None = None,
        pitch: tuple[float, float] | Callable[[], tuple[float, float]] | None = None,
        linear: tuple[float, ...] | None = None,
        linear_pitch: Callable[[], tuple[float, float]] | None = None,
        linear_high: Sequence[float] | None = None,
    ) -> list[EndpointEvent]:
        """Feed one frame.

        Args:
            frame: PCM16 mono, exactly ``frame_ms``.
            far_end_dbfs: the level of what the speaker played just now (the echo
                reference, recent enough to still be in the microphone); None when unknown
                or when an echo canceller takes care of it.
            level_dbfs: ``frame_dbfs(frame)`` if already known (:func:`frame_levels_dbfs`).
            bands: (microphone, lined-up speaker) dBFS per band, when lined up (no AEC).
            pitch: (microphone, speaker) periodicity at the microphone's pitch period, while
                the speaker plays (:class:`kiosk.audio.echo_pitch.PitchCue`; with AEC, of the
                cleaned frame, counted only until trusted: a function, measured when called).
            linear: with AEC, (linear output, echo estimate[, microphone]) dBFS of this frame
                before residual suppression (``EchoCanceller.linear_levels``).
            linear_pitch: with a trusted AEC, a function returning (linear output, speaker)
                periodicity at the linear output's pitch period, called only for a frame
                whose decision it can change (``EchoCanceller.linear_pitch`` measures on demand).
            linear_high: ``linear`` over 3 kHz, trusted (``EchoCanceller.linear_high_levels``: read lazily).
        """
        onset_level = self.onset_level_dbfs
        if self._tells_wake_level:
            # (Inside an utterance: as before, vad.min_level_dbfs.)
            wake = self.settings.min_level_dbfs if self._in_speech else onset_level
            self._is_speech.wake_level_dbfs = wake  # type: ignore[attr-defined]
            self._is_speech.room_learned = self._room_dbfs is not None  # type: ignore[attr-defined]
        voiced = self._is_speech(frame)
        first_opinion = bool(getattr(self._is_speech, "provisional", voiced))
        level = frame_dbfs(frame) if level_dbfs is None else level_dbfs
        # What the speaker played stays the reference ECHO_REFERENCE_MS after its queue ran empty
        # (its echo is in the mic), later it may be stale; lined up with the frame, never.
        self._since_guarded = 0 if self.guarded else self._since_guarded + 1
        aligned = self.echo_relearn or self.reference_aligned
        fresh = aligned or self._since_guarded * self.frame_ms <= ECHO_REFERENCE_MS
        ref = far_end_dbfs if fresh and far_end_dbfs is not None and math.isfinite(far_end_dbfs) else -math.inf
        # Judged as the guard stood when the frame arrived, or up if the speaker just played
        # something (its queue may be empty between deltas while the echo is in the mic).
        guard = self.echo_guarded or ref > -math.inf
        if self.guarded or ref > -math.inf:
            self._echo_ref_dbfs = max(ref, self._echo_ref_dbfs - self._tail_decay_db)
            self._tail_left = self._tail_frames
        elif self._tail_left > 0:
            self._tail_left -= 1
            self._echo_ref_dbfs -= self._tail_decay_db
        if not guard:
            self._echo_ref_dbfs = -math.inf
        self._heard_lined_up.append((level, self._echo_ref_dbfs))
        self._frame_bands = bands if self.reference_aligned and guard else None
        self._frame_pitch = pitch if guard and (self.reference_aligned or self.echo_relearn) else None
        self._frame_linear = linear if self.echo_relearn and guard else None
        self._speaker_now = ref > -math.inf
        self._frame_linear_pitch = linear_pitch if self.echo_relearn and guard else None
        self.high_band.frame = linear_high if self.echo_relearn and guard else None
        self._hear_bands(self.reference_aligned and ref > -math.inf)
        if ref > -math.inf:
            self._unguarded_frames = 0
            # Lined up with the frame, the echo follows the speaker's decaying envelope.
            self._hear_echo(level, self._echo_ref_dbfs if self.reference_aligned else ref)
        elif not self.guarded:
            # A playback period ends after a real pause, not when the speaker briefly runs dry
            # between answer deltas (that would restart the learning over and over).
            self._unguarded_frames += 1
            if self._unguarded_frames >= ECHO_PERIOD_GAP_FRAMES:
                self._guard_frames = 0
                self._period_echo_db = None
                self.bands.new_period()
        if self._in_speech:
            events = self._continue(frame, voiced and level >= self.continue_level_dbfs)
        else:
            floor = onset_level
            if guard:
                far_end = self._echo_ref_dbfs if math.isfinite(self._echo_ref_dbfs) else None
                floor = max(floor, self._guard_floor_dbfs(far_end))
            loud = level >= floor or (
                guard
                and (self._loud_in_bands(level, onset_level) or self._loud_in_pitch(level, onset_level))
            )
            # What a trusted canceller left is the answer's own voice: not loud, however loud.
            # (And in the warm-up, the echo a filter trusted just now falls short of.)
            loud = loud and not (
                guard
                and (
                    self._warm_up_short_of_echo()
                    or self._answers_own_voice()
                    or self._leaked_echo()
                )
            )
            self._double_talk_now = guard and (
                self._double_talk(floor, first_opinion and loud) or self._consonant_in_distrust()
            )
            loud_voice = (first_opinion and loud) or self._double_talk_now
            self._suspect_frames = self._suspect_frames + 1 if loud_voice else 0
            events = self._wait_for_onset(frame, voiced, loud, floor, guard)
            self._hold_suspicion(loud_voice, guard)
        if not guard:  # the room (and a turn's gaps), never our own echo
            # Nor a visitor who goes on talking after their turn was cut short (error, cap):
            # for a while, frames loud enough to open a turn are no ambient.
            self._cut_left = max(0, self._cut_left - 1)
            visitor = self._cut_left > 0 and level >= onset_level
            if self.noise.observe(level, idle=not self._in_speech and not visitor):
                self._learn_room()
        return events

    def _consonant_in_distrust(self) -> bool:
        """The consonant cue heard this frame while the guard distrusts a canceller it trusted
        before (kiosk.core.echo_consonant; the canceller tells the band only for a filter that
        was trusted since it last restarted)."""
        self._trusted_once = self._trusted_once or self.echo_cancelled_well
        if not (self._trusted_once and self.high_band.heard):
            return False
        return not self.echo_cancelled_well and not self.earcon_echo

    def _wait_for_onset(
        self, frame: bytes, voiced: bool, loud: bool, floor: float, guard: bool
    ) -> list[EndpointEvent]:
        """Onset = enough *loud* voiced frames within one voiced run.

        webrtcvad ignores level: after a stretch of silence it calls faint hum speech, so a
        frame counts only this far above the room's ambient level (``onset_level_dbfs``);
        while our answer (or its echo tail) plays without AEC, at a louder one (the guard),
        since the speaker's echo is quieter than someone talking to us. Quieter voiced frames
        inside the run neither count nor break it (real speech dips between syllables); an
        unvoiced frame ends the run (a cough or click stays a blip), unless the run has paused
        the answer and its last loud frame is at most ``SUSPECT_GAP_MS`` old.
        """
        s = self.settings
        if not voiced and guard and self._gap_left > 0 and self._onset_frames:
            # Between syllables, the answer paused: the run goes on.
            self._onset_frames.append(frame)
            self._since_loud += 1
            return []
        if not voiced:
            if self._onset_frames:
                for f in self._onset_frames:
                    self._preroll.append(f)
                self._drop_onset_run()
            self._learning_run = False
            self._preroll.append(frame)
            return []
        if not self._onset_frames:
            self._learning_run = self._guard_learning
        if loud:
            if self._onset_loud == 0 and not self._learning_run:
                # Quiet voiced lead-in before the first loud frame is pre-roll, not speech
                # (capped like any pre-roll: it is billed). A run that began while the guard
                # was still learning the echo keeps its start: it may be the visitor's first word.
                for f in self._onset_frames:
                    self._preroll.append(f)
                self._onset_frames = []
            self._onset_loud += 1
            fresh = self._onset_loud == 1 or self._since_loud >= self._run_gap_frames
            self._close_loud = 1 if fresh else self._close_loud + 1
            self._since_loud = 0
        else:
            self._since_loud += 1
        self._onset_frames.append(frame)
        # With an echo canceller the level rule judges what is left of the echo: the usual
        # onset proves a barge-in (the longer proof is for the raw echo's bursts).
        need_ms = s.barge_in_min_speech_ms if guard and not self.echo_cancelled_well else s.min_speech_ms
        if self._onset_loud * self.frame_ms < need_ms:
            if len(self._onset_frames) * self.frame_ms > 3 * max(need_ms, 100):
                # A long quiet voiced run (hum): keep only its tail; the rest is pre-roll.
                oldest = self._onset_frames.pop(0)
                self._preroll.append(oldest)
                if frame_dbfs(oldest) >= floor:
                    self._onset_loud = max(0, self._onset_loud - 1)
            return []
        audio = b"".join(self._preroll) + b"".join(self._onset_frames)
        if not guard:  # what led up to the onset was heard as idle room: it was the visitor
            self.noise.retract_idle(len(self._preroll) + len(self._onset_frames) - 1)
            self._learn_room()
        self._utterance_ms = len(self._onset_frames) * self.frame_ms
        for f in self._onset_frames:
            self._count_syllables(f)
        self._preroll.clear()
        self._drop_onset_run()
        self._forget_suspicion()
        self._learning_run = False
        self._in_speech = True
        self._forced = False
        self._silence_ms = 0
        self._voiced_ms = self._utterance_ms
        return [Onset(audio)]

    def _count_syllables(self, frame: bytes, voiced: bool = True) -> None:
        if self.settings.complete_after_syllables:  # nuclei are voiced; a pause is a dip
            room = self.noise_floor_dbfs
            base = self.settings.min_level_dbfs - self.settings.onset_margin_db if room is None else room
            levels = block_levels_dbfs(frame, self.frame_ms) if voiced else [-math.inf]
            self.syllables.feed(levels, base + NUCLEUS_ABOVE_ROOM_DB)

    def _continue(self, frame: bytes, voiced: bool) -> list[EndpointEvent]:
        s = self.settings
        self._count_syllables(frame, voiced)
        if voiced:
            # A pause counts once speech resumes; the wait before a button-opened turn's
            # first word does not (speech_s is onset .. last voiced frame).
            waited_ms = self._silence_ms if self._voiced_ms else 0
            self._voiced_ms += self.frame_ms
            self._utterance_ms += waited_ms + self.frame_ms
            self._silence_ms = 0
            audio = b"".join(self._pause) + frame
            self._pause = []
            return [Speech(audio)]
        self._silence_ms += self.frame_ms
        self._pause.append(frame)
        if self._forced and self._voiced_ms == 0:
            # Opened by the button, nobody spoke yet: keep only a pre-roll's worth of the wait.
            keep = max(1, self.settings.preroll_ms // self.frame_ms)
            del self._pause[:-keep]
            if self._silence_ms >= self.no_speech_timeout_s * 1000:
                self.reset()
                return [EndOfSpeech(0.0, no_speech=True)]
            return []
        if self._silence_ms >= self.pause_hangover_ms:
            speech_s = self._utterance_ms / 1000
            self.reset()
            return [EndOfSpeech(speech_s)]
        return []

"""In-process acoustic echo cancellation against what the speaker actually played.

Owns the echo *reference* (:class:`EchoReference`: the speaker's output on a timeline of
when it becomes audible, at the microphone's 16 kHz) and the frame processor
(:class:`EchoCanceller`: one microphone frame and the time it was captured in, the frame
with the speaker's echo removed). The canceller itself is SpeexDSP's
(:mod:`kiosk.audio.speexdsp`); the core never sees any of this, only cleaner frames.

Alignment: the speaker side stamps each block it takes from the playback buffer with the
time it will be heard (now + what the sink and the device still hold); the microphone side
asks for the reference heard while its frame was captured, ``REFERENCE_LEAD_MS`` later: the
filter models the echo as a delayed copy of its reference, so the reference must not come
after its echo (a latency over-estimated by up to the lead is still cancelled; one
under-estimated is covered by the filter's length). The filter converges fastest when the
echo lags its reference little (SpeexDSP: ~5 dB more ERLE in the first seconds at 0 than at
40 ms), so the lead is short, and the actual lag is measured and lined up once
(:mod:`kiosk.audio.echo_delay`); both sides must then keep that relation: the microphone's
frames follow their sample count (:mod:`kiosk.audio.mic_timeline`), the speaker's blocks
continue one another, and what the speaker dropped unheard (the sound server's queue on a
pause) is cut from the reference, the next block placed where its stamp says. Nothing played
recently: the frame passes through untouched and SpeexDSP is not called (no cost while idle).

Threads: :meth:`EchoReference.played` runs on the speaker's thread (PortAudio callback),
:meth:`EchoReference.take` on the microphone's; one short lock, no I/O.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from kiosk.audio.echo_delay import TARGET_MS, EchoDelayEstimator
from kiosk.audio.echo_pitch import MIN_MIC_DBFS, PitchCue, PitchLevels
from kiosk.audio.echo_reference import RATE_HZ, EchoReference
from kiosk.audio.linear_levels import (  # noqa: F401 (the level functions re-exported)
    HIGH_BAND_HZ,
    HighBandLevels,
    frame_samples,
    high_band_levels_db,
    linear_levels_dbfs,
    linear_levels_from,
)
from kiosk.audio.mic_timeline import MicTimeline
from kiosk.core.endpointing import frame_dbfs

# The reference is taken this much later than the capture time: an echo up to this much earlier
# than the stamps say (the speaker's latency over-estimated) stays causal for the filter.
REFERENCE_LEAD_MS = 10
# The echo path the filter models: lead + device jitter + the room's reverberant tail.
FILTER_MS = 120
# The measured lag is lined up (the filter restarted) only when it is off by at least this.
REALIGN_MIN_MS = 4.0
# Once lined up, the lag is measured again at each new playback stretch and after each drop
# (rechecking canceller): a stamp puts a stretch within ~0.1-0.5 ms of the last (through
# PulseAudio), enough to undo what the filter learned (tuning mix 073's later answer: ERLE
# 14 dB at the end of the first answer, -2 to 4 dB over the next's first second, and it paused
# itself). Off by at least this (2 samples) and less than REALIGN_MIN_MS, the reference is moved
# back onto the lag the filter learned, and the filter keeps what it learned.
RELINE_MIN_MS = 0.125
# Each new stretch, drop and reline counts in :attr:`EchoCanceller.realignments` (a rechecking
# canceller): the guard forgets what the filter left before (``EchoGuard.echo_path_changed``) and
# its own rules hold until the echo return is relearned and low again. Trust carried over from
# the stretch before let a filter 0.1-0.5 ms off take its leak for a visitor: each resume leaked
# and paused again (speexpa28 through PulseAudio: loops of 4-20 self-pauses on tuning mixes 073,
# 074, 077; tests/audio/test_aec_distrust.py).
# Residual echo suppression after the linear filter (SpeexDSP preprocessor), dB.
RESIDUAL_SUPPRESS_DB: int | None = -40
# The cleaned frames' pitch is measured only from this much playback on (per stretch): over the
# first few hundred ms the filter's output is no echo-less signal yet (a cold SpeexDSP filter
# even amplified the echo at an answer's onset, and its output then had a pitch the reference's
# first windows lacked: tests/audio/test_aec_pitch_first_answer.py).
PITCH_AFTER_MS = 300
# Once trusted, the linear output's pitch is measured in frames at least this loud (dBFS, by
# default: a frame must be louder than vad.min_level_dbfs to count at all; the pipeline passes it).
LINEAR_PITCH_MIN_DBFS = -50.0
# ...and the reference's periodicity counts within this many samples (8 kHz) of its period: the
# answer's pitch glides, and the echo the filter lags behind is tens of ms older than the
# reference's last windows (held-out mix 073 at 7.18 s: 0.73 within 1 sample, 0.97 within 2).
LINEAR_PITCH_LAG_TOLERANCE = 2
# ...and where the linear output repeats at a whole fraction of the reference's period (at most
# half of it) and at that period too, the reference's periodicity there counts: a filter that
# stalls on the answer's fundamental may still cancel some harmonics and leave one, which repeats
# at a half or a third of the answer's period, where the reference does not (tuning seed 94 mix
# 074 at 5.34 s, -6 dB: 250 Hz left of an answer at ~130 Hz; held-out s241 mix 075 at 9.00 s,
# -20 dB: 320 Hz of one at ~127; s261 mix 074's later answer at 7.88 s, -6 dB: 471 Hz of one at
# ~151; all three paused the answer. kiosk.audio.echo_pitch._harmonic_levels)
LINEAR_PITCH_HARMONICS = True

# Behind a trusted filter, the last few frames' linear output and the reference the filter was
# given are kept, so the guard can ask how much of each frame's linear output a least-squares FIR
# on that reference explains (taps every 4 samples over its first 10 ms: the echo lags its
# reference by echo_delay.TARGET_MS), on demand (``LinearLevels.reference_fits``): near all of it
# is the echo the filter missed (an echo louder than it models), not a visitor's voice
# (kiosk.core.echo_double_talk.MISSED_ECHO_FIT). ~0.7 ms a fit (x86), only where the guard asks.
REFERENCE_FIT_FRAMES = 3
REFERENCE_FIT_SHIFTS = range(0, 160, 4)


class LinearLevels(tuple):  # type: ignore[type-arg]
    """:attr:`EchoCanceller.linear_levels`: (linear output, echo estimate, microphone) dBFS of a
    frame, and :attr:`lag_remeasuring`, the canceller's :attr:`EchoCanceller.lag_remeasuring`
    once it filtered that frame (the guard reads both: kiosk.core.echo_double_talk, the stale
    filter)."""

    lag_remeasuring = False
    # Behind a trusted filter: a function of n returning, for this frame and up to n - 1
    # consecutive trusted frames before it (oldest first), (linear output - echo estimate dB, how
    # much of the linear output a fit on the reference explains: :func:`reference_fit`), each fit
    # measured when first asked for.
    reference_fits: Callable[[int], tuple[tuple[float, float], ...]] | None = None

    def __getstate__(self) -> dict:  # (a trace pickles the levels: not the canceller's fits)
        return {k: v for k, v in self.__dict__.items() if k != "reference_fits"}


def reference_fit(linear: np.ndarray, reference: np.ndarray) -> float:
    """The fraction of ``linear``'s energy a least-squares FIR on ``reference`` at
    ``REFERENCE_FIT_SHIFTS`` explains; ``reference`` holds the reference of ``linear``'s samples
    last, and at least the last shift's samples before them."""
    y = linear.astype(np.float64)
    energy = float(np.dot(y, y))
    if energy <= 0.0:
        return 0.0
    n, h = y.size, reference.size - y.size
    basis = np.stack([reference[h - k : h - k + n] for k in REFERENCE_FIT_SHIFTS], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    left = y - basis @ coef
    return max(0.0, 1.0 - float(np.dot(left, left)) / energy)


class EchoCanceller:
    """Removes the speaker's echo from 16 kHz microphone frames.

    Args:
        reference: what the speaker played (fed by the speaker side).
        frame_ms: the microphone frame length.
        make_filter: ``(frame_samples, filter_samples, rate_hz) -> obj`` with
            ``cancel(mic, ref) -> bytes`` (default: SpeexDSP with residual suppression).

    ``cpu_s`` counts the process CPU time spent cancelling and ``frames_cancelled`` the
    frames that went through the filter (the rest passed untouched).

    Until the guard trusts the filter (set :attr:`pitch_wanted`), each cleaned frame at
    ``pitch_min_dbfs`` or louder can also be measured for a pitch of its own (on demand:
    :attr:`frame_pitch`, :class:`kiosk.audio.echo_pitch.PitchCue` against the reference the
    filter was given): a visitor's voice repeats at her pitch period, what is left of the
    echo where the answer does, so she is heard before the echo return is learned. Once it is
    trusted, the linear output's pitch can be measured instead (:attr:`linear_pitch`, frames at
    ``linear_pitch_min_dbfs`` or louder, on demand): SpeexDSP's filter now and then falls
    10-20 dB behind the echo for a few frames (a sustained vowel, a transition), and what it
    leaves then is the answer's own voice, repeating where the answer does. Trusted, the linear
    output's and the echo estimate's levels over 3 kHz are measured too, each when first read
    (:attr:`linear_high_levels`), and go on being measured while the guard distrusts it again
    (a new stretch, a drop, a reline) until the filter restarts. Measures the endpointer asks for count in ``cpu_s`` too.
    """

    # Measure the cleaned frames' pitch (the guard's level tap, a subclass, measures its own).
    judges_output_pitch = True

    def __init__(
        self,
        reference: EchoReference,
        frame_ms: int,
        make_filter: Callable[[int, int, int], object] | None = None,
        *,
        align: bool = True,
        pitch_min_dbfs: float = MIN_MIC_DBFS,
        linear_pitch_min_dbfs: float = LINEAR_PITCH_MIN_DBFS,
    ) -> None:
        self.reference = reference
        self.frame_ms = frame_ms
        self.frame_samples = RATE_HZ * frame_ms // 1000
        if make_filter is None:
            from kiosk.audio.speexdsp import SpeexEcho

            def make_filter(frame: int, length: int, rate: int) -> object:
                return SpeexEcho(
                    frame,
                    length,
                    rate,
                    suppress_db=RESIDUAL_SUPPRESS_DB,
                    denoise=RESIDUAL_SUPPRESS_DB is not None,
                    noise_suppress_db=0,
                )

        self._filter = make_filter(self.frame_samples, RATE_HZ * FILTER_MS // 1000, RATE_HZ)
        # Frames the filter still needs after the reference fell silent (its echo rings).
        self._tail_frames = math.ceil((FILTER_MS + REFERENCE_LEAD_MS) / frame_ms) + 1
        self._silent_frames = self._tail_frames
        self._zeros = bytes(self.frame_samples * 2)
        self._mic = MicTimeline(frame_ms / 1000)  # when each frame was captured
        # Levels of the reference frames the filter still holds (its span): what the echo in
        # the frame just cleaned can have come from, aligned with the microphone.
        self._ref_levels: deque[float] = deque(maxlen=self._tail_frames)
        self._ref_earcons: deque[bool] = deque(maxlen=self._tail_frames)  # the same, earcons
        # Trusted frames in a row: [linear output, reference (the frame before's first), fit or
        # None] (LinearLevels.reference_fits); the reference given to the filter the frame before.
        self._fit_frames: deque[list] = deque(maxlen=REFERENCE_FIT_FRAMES)
        self._last_ref = np.zeros(self.frame_samples, dtype=np.float32)
        # Where the reference is taken relative to the capture time; moved once the echo's
        # actual lag is measured (kiosk.audio.echo_delay).
        self._lead_s = REFERENCE_LEAD_MS / 1000
        self._delay = EchoDelayEstimator(self.frame_samples, RATE_HZ) if align else None
        self.realignments = 0  # times the echo path changed for the guard (the filter restarted)
        self._lined_up = False  # the lag was measured once
        self.recheck = False  # (see RELINE_MIN_MS; set by echo_canceller_for)
        self._restamps_seen = 0
        self.relines = 0  # times the reference was moved back onto the learned lag
        # The guard trusted this filter since it last restarted: while it distrusts it again (a
        # new stretch, a drop, a reline: RELINE_MIN_MS) the filter still holds what it learned,
        # and its linear output over 3 kHz is measured for the consonant cue as when trusted
        # (kiosk.core.echo_consonant: the consonant cue in a distrust).
        self._trusted_since_reset = False
        # (linear output, echo estimate, microphone) dBFS of the last frame filtered, before
        # residual suppression; None when it passed untouched or the filter does not tell.
        self.linear_levels: LinearLevels | None = None
        # Trusted (pitch not wanted), or trusted since the filter last restarted: (linear output,
        # echo estimate) over HIGH_BAND_HZ, each measured when first read
        # (kiosk.audio.linear_levels.HighBandLevels).
        self.linear_high_levels: HighBandLevels | None = None
        # Until trusted (pitch wanted): a function returning (cleaned frame, reference)
        # periodicity at the cleaned frame's pitch period, measured when first called (the
        # guard asks only for a frame under its bar and over the onset level); None when not
        # to be measured (too quiet, too early, nothing played, or not wanted).
        # One cue serves both (the cleaned output's until trusted, the linear output's after):
        # it keeps the reference's recent windows, which both compare with.
        self._pitch_min_dbfs, self._linear_pitch_min_dbfs = pitch_min_dbfs, linear_pitch_min_dbfs
        least = min(pitch_min_dbfs, linear_pitch_min_dbfs)
        self._pitch = PitchCue(self.frame_samples, least) if self.judges_output_pitch else None
        self.pitch_wanted = True
        self._played_frames = 0  # frames of this playback stretch with a reference
        self.frame_pitch: Callable[[], PitchLevels] | None = None
        # Trusted (pitch not wanted): a function returning (linear output, reference)
        # periodicity at the linear output's pitch period, measured when first called (only
        # the frames whose decision it can change need it: most frames behind a trusted filter
        # are too quiet to be judged at all); None for a frame too quiet or not filtered.
        self.linear_pitch: Callable[[], PitchLevels] | None = None
        # The microphone's dBFS of the last frame filtered, when the filter tells no linear output.
        self.raw_dbfs: float | None = None
        self.cpu_s = 0.0
        self.frames_cancelled = 0

    @property
    def lead_ms(self) -> float:
        """How much later than its capture time each frame's reference is taken."""
        return self._lead_s * 1000

    @property
    def lag_remeasuring(self) -> bool:
        """The lag was lined up once and is being measured again (a rechecking canceller: a new
        playback stretch, a drop) and has not settled yet: the filter still holds the alignment
        it learned, which the echo may have left (0.4 ms on used seed 811 mix 085's later
        answer, bench/results/own36-2026-12-06.md)."""
        return self.recheck and self._lined_up and self._delay is not None and not self._delay.settled

    @property
    def active(self) -> bool:
        """The last frame went through the filter (the speaker played, or its echo rings)."""
        return self._silent_frames < self._tail_frames

    @property
    def reference_dbfs(self) -> float:
        """The loudest reference frame within the filter's span of the last frame: what the
        speaker played that can still echo in it (-inf when nothing did)."""
        return max(self._ref_levels, default=-math.inf)

    @property
    def earcon_audible(self) -> bool:
        """An earcon sounds in the reference within the filter's span of the last frame: its
        echo may be left in the frame (the filter learns from answers, whose spectrum need not
        cover the earcon's tones: the fake answer's harmonics stop at 800 Hz, its 880 Hz
        note passed with ~2 dB ERLE)."""
        return any(self._ref_earcons)

    def process(self, frame: bytes, captured_at_s: float) -> bytes:
        """``frame`` (PCM16 mono, ``frame_ms``) captured from ``captured_at_s`` on, cleaned."""
        at = self._mic.place(captured_at_s)
        ref, earcon = self.reference.take_marked(at + self._lead_s, self.frame_samples)
        self.linear_levels = self.linear_high_levels = self.raw_dbfs = None
        self.frame_pitch = self.linear_pitch = None
        if ref is None:
            if self._silent_frames >= self._tail_frames:
                if self._ref_levels:
                    # A new playback stretch comes next, placed by its own stamp (0.1-0.5 ms
                    # off the last through PulseAudio): the filter is distrusted until the lag
                    # is measured again and what it leaves is relearned (RELINE_MIN_MS).
                    self.realignments += self._recheck_lag()
                if self._ref_levels and self._pitch is not None:
                    self._pitch.restart()  # a new playback stretch: no reference from before
                self._played_frames = 0
                self._ref_levels.clear()
                self._ref_earcons.clear()
                self._fit_frames.clear()
                self._last_ref = np.zeros(self.frame_samples, dtype=np.float32)
                return frame  # nothing played lately: no echo, no cost
            self._silent_frames += 1
            ref = self._zeros
            self._ref_levels.append(-math.inf)
        else:
            self._silent_frames = 0
            self._ref_levels.append(frame_dbfs(ref))
            self._played_frames += 1
        self._ref_earcons.append(earcon)
        started = time.process_time()
        out = self._filter.cancel(frame, ref)  # type: ignore[attr-defined]
        linear = getattr(self._filter, "linear_output", None)
        if linear is None:  # (a filter that tells only its output: the guard reads the input's level)
            self.raw_dbfs = frame_dbfs(frame)
        if linear:
            mic, out_samples = frame_samples(frame), frame_samples(linear)  # (converted once)
            self.linear_levels = LinearLevels(linear_levels_from(mic, out_samples))
            self._trusted_since_reset = self._trusted_since_reset or not self.pitch_wanted
            if self._trusted_since_reset:  # (measured when read: the endpointer's cue reads them)
                self.linear_high_levels = HighBandLevels(mic, out_samples, self._spent)
            self._keep_for_fit(out_samples, ref, self.linear_levels[0] - self.linear_levels[1])
        else:
            self._fit_frames.clear()
            self._last_ref = frame_samples(ref)
        if self._pitch is not None:
            self._measure_pitch(out, linear, ref)
        if self.recheck and self.reference.restamps != self._restamps_seen:
            # Placed by a stamp after a drop: the guard relearns what the filter leaves (also
            # when the lag is being measured again already: a stretch that ended on the pause).
            self._restamps_seen = self.reference.restamps
            self._recheck_lag()
            self.realignments += self._lined_up
        if self._delay is not None and not self._delay.settled and self._silent_frames == 0:
            lag_ms = self._delay.observe(frame, ref)
            off_ms = math.nan if lag_ms is None else abs(lag_ms - TARGET_MS)
            if self.recheck and self._lined_up and RELINE_MIN_MS <= off_ms < REALIGN_MIN_MS:
                self._lead_s -= (lag_ms - TARGET_MS) / 1000  # back onto the lag it learned
                self.relines += 1
                self.realignments += 1  # (the guard relearns what the filter leaves now)
            elif lag_ms is not None and abs(lag_ms - TARGET_MS) >= REALIGN_MIN_MS:
                # Line the echo up a few ms after its reference; what the filter learned
                # at the old alignment is wrong now.
                self._lead_s -= (lag_ms - TARGET_MS) / 1000
                reset = getattr(self._filter, "reset", None)
                if reset is not None:
                    reset()
                self._trusted_since_reset = False  # (a restarted filter learns afresh)
                self.realignments += 1
            self._lined_up = self._lined_up or lag_ms is not None
            self._mic.held = self.recheck and self._lined_up  # (kiosk.audio.mic_timeline)
        if isinstance(self.linear_levels, LinearLevels) and self.lag_remeasuring:
            self.linear_levels.lag_remeasuring = True  # (as the guard judges this frame)
        self.cpu_s += time.process_time() - started
        self.frames_cancelled += 1
        return out

    def _keep_for_fit(self, linear: np.ndarray, ref: bytes, over_db: float) -> None:
        """Keep a trusted frame's linear output, its reference and how far its linear output
        stands over its estimate (dB) for :func:`reference_fit` (an untrusted frame breaks the
        row) and hand the guard its fits on demand."""
        now = frame_samples(ref)
        if self.pitch_wanted:
            self._fit_frames.clear()
        else:
            self._fit_frames.append([linear, np.concatenate([self._last_ref, now]), None, over_db])
            kept = list(self._fit_frames)

            def fits(n: int) -> tuple[tuple[float, float], ...]:
                started = time.process_time()
                for item in kept[-n:]:
                    if item[2] is None:
                        item[2] = reference_fit(item[0], item[1])
                self._spent(time.process_time() - started)
                return tuple((item[3], item[2]) for item in kept[-n:])

            assert self.linear_levels is not None
            self.linear_levels.reference_fits = fits
        self._last_ref = now

    def _recheck_lag(self) -> bool:
        """Measure the lag again (a rechecking canceller whose lag was settled)."""
        if not (self.recheck and self._delay is not None and self._delay.settled):
            return False
        self._delay.restart()
        return True

    def _measure_pitch(self, out: bytes, linear: bytes | None, ref: bytes) -> None:
        """:attr:`frame_pitch` of the cleaned frame while :attr:`pitch_wanted` (from
        ``PITCH_AFTER_MS`` into the stretch), else :attr:`linear_pitch` of the linear output,
        each measured if asked for; a frame too quiet (or too early) only adds the reference to
        the cue's history."""
        assert self._pitch is not None
        if self.pitch_wanted:
            level = frame_dbfs(out)
            judged = self._played_frames * self.frame_ms >= PITCH_AFTER_MS and level >= self._pitch_min_dbfs
            measure = self._pitch.pair_on_demand(out, ref, level if judged else -math.inf)
            self.frame_pitch = None if measure is None else self._counted(measure)
            return
        signal = linear or out  # (a filter that does not tell its linear output: the cleaned one)
        level = frame_dbfs(signal)
        judged = level >= self._linear_pitch_min_dbfs
        measure = self._pitch.pair_on_demand(
            signal, ref, level if judged else -math.inf,
            LINEAR_PITCH_LAG_TOLERANCE, LINEAR_PITCH_HARMONICS,
        )  # fmt: skip
        self.linear_pitch = None if measure is None else self._counted(measure)

    def _counted(self, measure: Callable[[], PitchLevels]) -> Callable[[], PitchLevels]:
        """``measure``, its CPU time added to :attr:`cpu_s` (it runs when the endpointer asks,
        after :meth:`process` returned)."""

        def pitch() -> PitchLevels:
            started = time.process_time()
            try:
                return measure()
            finally:
                self._spent(time.process_time() - started)

        return pitch

    def _spent(self, cpu_s: float) -> None:
        """A measure the endpointer asked for after :meth:`process` returned took ``cpu_s``."""
        self.cpu_s += cpu_s

    def close(self) -> None:
        close = getattr(self._filter, "close", None)
        if close is not None:
            close()


class PlaybackEchoCanceller(EchoCanceller):
    """An :class:`EchoCanceller` whose reference is tapped from a playback buffer (every
    block the speaker takes); :meth:`close` lets go of the buffer."""

    def __init__(
        self,
        playback: object,
        clock: Callable[[], float],
        latency_s: Callable[[], float],
        frame_ms: int,
        make_filter: Callable[[int, int, int], object] | None = None,
        *,
        align: bool = True,
        pitch_min_dbfs: float = MIN_MIC_DBFS,
        linear_pitch_min_dbfs: float = LINEAR_PITCH_MIN_DBFS,
    ) -> None:
        reference = EchoReference(clock, latency_s, getattr(playback, "rate_hz", 24000))
        super().__init__(
            reference, frame_ms, make_filter, align=align,
            pitch_min_dbfs=pitch_min_dbfs, linear_pitch_min_dbfs=linear_pitch_min_dbfs,
        )
        self._playback = playback

        def played(pcm: bytes) -> None:  # on the speaker's thread, right after its read
            reference.played(pcm, playback.earcon_in_last_read)  # type: ignore[attr-defined]

        self._listener = played
        playback.add_read_listener(played)  # type: ignore[attr-defined]
        if hasattr(playback, "add_drop_listener"):
            playback.add_drop_listener(reference.dropped)

    def close(self) -> None:
        self._playback.remove_read_listener(self._listener)  # type: ignore[attr-defined]
        if hasattr(self._playback, "remove_drop_listener"):
            self._playback.remove_drop_listener(self.reference.dropped)
        super().close()


def echo_canceller_for(
    kind: str,
    playback: object,
    clock: Callable[[], float],
    latency_s: Callable[[], float],
    frame_ms: int,
    pitch_min_dbfs: float = MIN_MIC_DBFS,
    linear_pitch_min_dbfs: float = LINEAR_PITCH_MIN_DBFS,
) -> PlaybackEchoCanceller | None:
    """``audio.echo_cancel``: "none" -> None; "speex" -> a canceller tapping ``playback``
    (its cleaned frames' pitch measured from ``pitch_min_dbfs`` up: the guard counts none
    quieter, ``vad.barge_in_min_level_dbfs``; once trusted, its linear output's from
    ``linear_pitch_min_dbfs`` up: no frame quieter than ``vad.min_level_dbfs`` counts);
    "webrtc" -> the same tap with WebRTC's AEC3 (:mod:`kiosk.audio.webrtc_apm`), which finds
    the echo's delay itself: the reference is not realigned (that would restart it)."""
    if kind == "none":
        return None
    make_filter = None
    if kind == "webrtc":
        from kiosk.audio.webrtc_apm import WebRtcEcho as make_filter  # (imported only when chosen)
    canceller = PlaybackEchoCanceller(
        playback, clock, latency_s, frame_ms, make_filter, align=kind != "webrtc",
        pitch_min_dbfs=pitch_min_dbfs, linear_pitch_min_dbfs=linear_pitch_min_dbfs,
    )  # fmt: skip
    canceller.recheck = kind == "speex"
    return canceller

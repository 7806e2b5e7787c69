"""The speaker's level lined up with each microphone frame, for the half-duplex guard.

Without echo cancellation (``audio.echo_cancel = "none"``, the default) the guard judges each
microphone frame against the echo it can hold. What the speaker took lately
(:attr:`~kiosk.audio.playback.PlaybackBuffer.recent_output_dbfs`, its loudest block of the
last 200 ms) runs a device latency ahead of that echo and spans far more than the room's
tail, so the guard's bar sits at the answer's loudest syllable of the last 200 ms: a
visitor must outshout that, not the echo in the frame.

:class:`EchoLevelTap` is the in-process canceller's reference path without the filter: the
speaker's blocks on the timeline of when they are heard
(:class:`~kiosk.audio.echo_cancel.EchoReference`), the echo's true lag measured once from the
signals (GCC-PHAT, :mod:`kiosk.audio.echo_delay`) and lined up, and per microphone frame the
level of the reference frame heard with it (:attr:`frame_reference_dbfs`), and once lined
up, the levels per band of both (:attr:`frame_bands`, for the guard per band:
:mod:`kiosk.core.echo_bands`). Once lined up, the lag goes on being measured and the reference
is moved back onto the echo if it drifts (``FOLLOW_AHEAD_MS``). The microphone frames pass
through untouched. Cost while the speaker plays: one reference frame taken and its level per
microphone frame, one rfft pair every 4 frames (the lag), and once lined up two short rffts per
frame; while idle, nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

from kiosk.audio.echo_cancel import RATE_HZ, PlaybackEchoCanceller
from kiosk.audio.echo_delay import TARGET_MS, EchoDelayEstimator
from kiosk.audio.echo_pitch import (
    GUARD_HISTORY_WINDOWS,
    GUARD_SUBHARMONICS,
    MIN_MIC_DBFS,
    PitchCue,
    PitchLevels,
)
from kiosk.core.echo_bands import BandLevels
from kiosk.core.endpointing import frame_dbfs

# Frames of this playback stretch remembered (1 s), to relearn the echo once it is lined up.
HISTORY_FRAMES = 50
# The guard's bands (Hz): a TTS answer's harmonics and formants lie mostly under 4 kHz.
BAND_EDGES_HZ = (100, 300, 600, 1000, 1500, 2200, 3200, 4500, 8000)
# Once lined up, the echo's lag goes on being measured while the speaker plays (echo_delay's
# estimate every EVERY_FRAMES frames: the tap took 0.125 s of CPU instead of 0.087 s over a
# 9.7 s answer on the bench machine, tests/audio/test_echo_level_follow.py), and the reference
# is moved back onto it (no relearning: there is no filter to restart) as soon as the echo no
# longer lags it (this far ahead of TARGET_MS).
# Through PulseAudio the microphone's stamps moved ~40 ms when a question opened a turn (its
# hand-overs went from batches to one block each); the timeline, steered 1 % a frame towards
# them, was still moving ~1 ms/s while the answer played, after the lag was lined up, and the
# echo came to lead its reference by 2-16 ms: a syllable's onset was in the microphone a frame
# before the reference had it, over the guard's bar in a band or in pitch (held-out seed 321
# mix 077 at -6 dB paused itself on two such frames 200 ms apart; traced: bench/pulse_trace.py,
# tuning mixes 074/077/082/087, replayed: bench/pulse_guard_replay.py).
FOLLOW_AHEAD_MS = TARGET_MS
# ...or this far behind where it was put: an echo a little late only holds the guard's bar up a
# few ms longer, and the strongest path measured is now and then a reflection ~5 ms after the
# direct sound (moved onto it, the echo led again: held-out s321 mix 077, replayed).
FOLLOW_BEHIND_MS = 8.0


class BandMeter:
    """Levels per band of 16 kHz PCM16 frames of one size (Hann window, one rfft each), in
    dBFS: a band's power is its share of the frame's mean square, so the bands of a steady
    sound add up to the frame's level."""

    def __init__(self, frame_samples: int, edges_hz: tuple[int, ...] = BAND_EDGES_HZ) -> None:
        self._window = np.hanning(frame_samples).astype(np.float32)
        hz = np.fft.rfftfreq(frame_samples, 1 / RATE_HZ)
        bins = np.searchsorted(hz, edges_hz)
        self._starts = bins[:-1]
        # |X|^2 -> mean square: two sides, the window's power, full scale.
        self._scale = 2.0 / (frame_samples * float(np.sum(self._window**2)) * 32768.0**2)

    def levels(self, pcm: bytes) -> list[float]:
        return self.pair(pcm, pcm)[0]

    def pair(self, mic: bytes, ref: bytes) -> BandLevels:
        """The band levels of two frames (the microphone's and its reference), in one pass."""
        x = np.frombuffer(mic + ref, dtype="<i2").astype(np.float32).reshape(2, -1) * self._window
        spec = np.fft.rfft(x, axis=1)
        power = np.add.reduceat(spec.real**2 + spec.imag**2, self._starts, axis=1)
        with np.errstate(divide="ignore"):
            db = 10 * np.log10(power[:, : self._starts.size] * self._scale)
        mic_db, ref_db = db.tolist()
        return mic_db, ref_db


class _PassThrough:
    """A "filter" that leaves the microphone alone: only the reference and the lag are wanted
    (and the reference frame it was given, for the bands)."""

    ref: bytes | None = None

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        self.ref = ref
        return mic


class EchoLevelTap(PlaybackEchoCanceller):
    """What the speaker played, lined up with each microphone frame; no cancelling.

    :meth:`process` returns the frame unchanged; then :attr:`frame_reference_dbfs` is the
    level of the reference lined up with it (-inf when nothing played then, or after the
    tail) and :attr:`reference_dbfs` the loudest over the span the canceller would model.
    When the lag was just lined up (``realignments`` went up), :attr:`relined` holds
    (microphone dBFS, lined-up reference dBFS) of the frames of this playback stretch heard
    before, oldest first: the echo they held, judged as it will be from now on; with
    ``bands``, :attr:`relined_bands` the same frames' levels per band.
    """

    judges_output_pitch = False  # (its own cue below judges the raw frames)

    def __init__(
        self,
        playback: object,
        clock: Callable[[], float],
        latency_s: Callable[[], float],
        frame_ms: int,
        *,
        bands: bool = True,
        pitch: bool = True,
        pitch_min_dbfs: float = MIN_MIC_DBFS,
        pitch_history_windows: int = GUARD_HISTORY_WINDOWS,
        pitch_subharmonics: tuple[int, ...] = GUARD_SUBHARMONICS,
    ) -> None:
        self._pass = _PassThrough()
        super().__init__(playback, clock, latency_s, frame_ms, lambda *_: self._pass)
        # (mic time, dBFS, the frame): the frame only while the lag is not yet lined up
        self._heard: deque[tuple[float, float, bytes | None]] = deque(maxlen=HISTORY_FRAMES)
        self.relined: list[tuple[float, float]] = []
        self.meter = BandMeter(self.frame_samples) if bands else None  # None: no bands
        self.frame_bands: BandLevels | None = None
        self.relined_bands: list[BandLevels | None] = []
        # The microphone's periodicity against the reference's, from the answer's first frame
        # (before the lag is lined up too: pitch outlasts a few tens of ms of misalignment).
        self.pitch = (
            PitchCue(
                self.frame_samples, pitch_min_dbfs, pitch_subharmonics, pitch_history_windows
            )
            if pitch
            else None
        )
        self.frame_pitch: PitchLevels | None = None
        self._follow = EchoDelayEstimator(self.frame_samples, RATE_HZ)  # the lag, once lined up
        self.follows = 0  # times the reference was moved onto the echo after it was lined up

    @property
    def lag_settled(self) -> bool:
        """The echo's lag was measured and the reference lined up with it."""
        return self._delay is not None and self._delay.settled

    @property
    def frame_reference_dbfs(self) -> float:
        """The level of the reference frame lined up with the last microphone frame."""
        return self._ref_levels[-1] if self._ref_levels else -math.inf

    def process(self, frame: bytes, captured_at_s: float) -> bytes:
        realignments = self.realignments
        self._pass.ref = None
        super().process(frame, captured_at_s)
        self.frame_bands = self.frame_pitch = None
        if not self._ref_levels:  # nothing played lately: a new stretch starts afresh
            if self._heard and self.pitch is not None:
                self.pitch.restart()
            self._heard.clear()
            self._follow.restart()
            return frame
        relined = self.realignments != realignments
        if relined:
            self._reline()
            self._follow.restart()
        elif self.meter is not None and self.lag_settled and self._pass.ref is not None:
            self.frame_bands = self.meter.pair(frame, self._pass.ref)
        at = self._mic.last_s  # where the microphone timeline put this frame
        keep = frame if self.meter is not None and not self.lag_settled else None
        level = frame_dbfs(frame)
        if self.pitch is not None and self._pass.ref is not None:
            self.frame_pitch = self.pitch.pair(frame, self._pass.ref, level)
        self._heard.append((at, level, keep))
        if not relined:
            self._follow_lag(frame)
        return frame

    def _follow_lag(self, frame: bytes) -> None:
        """Lined up: measure the lag on (frame, the reference heard with it) and move the
        reference back onto the echo (from the next frame on) when the echo drifted
        ``FOLLOW_AHEAD_MS`` ahead of ``TARGET_MS`` or ``FOLLOW_BEHIND_MS`` behind it."""
        if not self.lag_settled or self._pass.ref is None or self._silent_frames:
            return
        lag_ms = self._follow.observe(frame, self._pass.ref)
        if lag_ms is None:
            return
        self._follow.restart()
        if not -FOLLOW_AHEAD_MS < lag_ms - TARGET_MS < FOLLOW_BEHIND_MS:
            self._lead_s -= (lag_ms - TARGET_MS) / 1000
            self.follows += 1

    def _reline(self) -> None:
        """The lag was just lined up: the frames heard so far, judged against the reference
        heard with each (levels, and per band)."""
        self.relined, self.relined_bands = [], []
        for at, mic, pcm in self._heard:
            ref = self.reference.take(at + self._lead_s, self.frame_samples)
            self.relined.append((mic, -math.inf if ref is None else frame_dbfs(ref)))
            if self.meter is not None:
                ok = ref is not None and pcm is not None
                bands = self.meter.pair(pcm, ref) if ok else None  # type: ignore[arg-type]
                self.relined_bands.append(bands)

"""The guard-only mode's judgement of the raw microphone, beside an echo canceller not yet trusted.

With ``audio.echo_cancel`` the endpointer judges the canceller's cleaned frames. Until it trusts
the canceller (``EchoGuard.echo_cancelled_well``: a first answer after start-up, while the filter
still converges; ~1.4 s of a loud answer at -12 dB echo) its bar stands at the loudest echo
return the filter leaves, a visitor's quiet first syllables under it are learned as echo and
raise it, and she was heard later than the guard alone hears her on the raw microphone.
:class:`RawMicGuard` runs the guard mode's own front end beside the canceller while the speaker
plays and the canceller is not trusted: an :class:`~kiosk.audio.echo_level.EchoLevelTap` (the
speaker's output lined up with the raw frames: levels, bands, pitch) and an endpointer with the
guard's rules (``reference_aligned``), which learns the raw echo return afresh each time it
starts. The pipeline pauses the answer on either one's suspicion and takes a barge-in proved by
either. (Lobby tuning split + fresh tuning-voice seeds 60-65, first answers replayed by
``bench/lobby_aec_replay.py``: -12 dB worst 469 -> 409 ms, -6 dB 719 -> 219, no self-pause
added.)

Differences from the guard mode: its voice detector is webrtcvad alone (the second opinion,
Silero, is one model per process, the main endpointer's; pausing goes by webrtcvad's first
opinion in either), so a barge-in it proves was not confirmed by Silero; and its pitch cue
counts only once the echo's lag is lined up.

Cost: the tap's reference on the speaker's thread (a second resampler), and while the speaker
plays and the canceller is not trusted the guard mode's per-frame work (the lag search until
settled, band and pitch levels, webrtcvad, the endpointer: ~150 us a frame, ad hoc, x86). While
idle: a reference lookup per frame; once trusted, nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from kiosk.audio.echo_level import EchoLevelTap
from kiosk.audio.echo_pitch import HISTORY_WINDOWS, SUBHARMONICS
from kiosk.audio.vad import webrtc_voice_detector
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer, Onset

VAD_RATE_HZ = 16000
# Its level rule (a frame over the echo's learned return by vad.barge_in_margin_db) counts from
# this far under vad.barge_in_min_level_dbfs, the guard mode's floor for the raw echo's bursts.
# The slow first-answer barge-ins waited for the visitor's raw level to reach that floor (-30
# dBFS): her first syllables came 3-7 frames before it, at -36 to -30 dBFS, over the echo. Replayed
# (lobby_aec_replay: tuning split + fresh tuning seeds 24-26, 90-95, 100-104): 6 dB made 20 of 90
# first-answer barge-ins faster (-12 dB p95 208 -> 201 ms), none slower, no self-pause added; 9
# dB as safe, 15 dB paused -20/-12 dB answers. Its voice cues (a pitch the answer lacks, bands
# over the echo) keep the floor: 1-2 dB under it they paused -6 dB answers on their echo's
# ringing tail (tests/audio/test_raw_guard_first_answer.py; fresh seed 100 at 4 dB).
LEVEL_UNDER_MIN_DB = 6.0
# A raw frame of which the canceller beside it takes this much or more (raw microphone - its linear
# output, dB: SpeexDSP tells both) is the echo, not loud: a voice the speaker did not play passes
# the filter, so a visitor in the frame is at most the linear output's level. The raw guard's loud
# frames that paused warm-up answers through PulseAudio (stop 40, 322 replayed pulse traces) came
# beside a filter taking 7.1-13.3 dB of them (used seeds 811 mix 085, 1251 mix 084: a raw guard
# started afresh after a short trust, its return learned on 12 frames, or its level rule under a
# falling reference); its loud frames of visitors (541 within 1 s of her onset, first- and
# later-answer barge-ins) 4.8 dB at most, those that paused for her 2.5 at most
# (bench/results/warm40-2026-12-06.md). Beside a filter that tells no linear output (AEC3), or
# takes less, judged as before.
RAW_CANCELLED_DB = 6.0


class _RawEndpointer(Endpointer):
    """The guard's endpointer on the raw frames, told per frame how much of it the canceller beside
    it took (:attr:`cancelled_db`): a frame it took ``RAW_CANCELLED_DB`` of is the echo."""

    cancelled_db: float | None = None

    def _leaked_echo(self) -> bool:
        taken = self.cancelled_db
        return (taken is not None and taken >= RAW_CANCELLED_DB) or super()._leaked_echo()


def cancelled_db(linear: Sequence[float] | None) -> float | None:
    """How much (dB) of the raw frame the canceller took: microphone - linear output, from its
    (linear output, echo estimate, microphone) levels; None if it did not tell them."""
    if linear is None or len(linear) < 3 or not all(math.isfinite(x) for x in (linear[0], linear[2])):
        return None
    return linear[2] - linear[0]


class RawMicGuard:
    """Feed every raw microphone frame (:meth:`hear`); while it :attr:`listens`, its
    :attr:`suspected_speech_ms` counts as the pipeline's suspicion too, and :meth:`hear` returns
    the audio of a barge-in the guard alone would have proved (an onset while guarded)."""

    def __init__(
        self,
        playback: object,
        clock: Callable[[], float],
        latency_s: Callable[[], float],
        frame_ms: int,
        settings: VadSettings,
    ) -> None:
        self.settings = settings
        self.level_min_dbfs = settings.barge_in_min_level_dbfs - LEVEL_UNDER_MIN_DB
        self.frame_ms = frame_ms
        # (100 ms of reference and subharmonics up to the 4th for its pitch cue, as before:
        # GUARD_HISTORY_WINDOWS and GUARD_SUBHARMONICS were measured for the guard alone, not
        # beside a canceller.)
        self.tap = EchoLevelTap(
            playback, clock, latency_s, frame_ms,
            pitch_min_dbfs=settings.barge_in_min_level_dbfs, pitch_history_windows=HISTORY_WINDOWS,
            pitch_subharmonics=SUBHARMONICS,
        )  # fmt: skip
        self._voice = webrtc_voice_detector(settings.aggressiveness, VAD_RATE_HZ, frame_ms)
        self.endpointer: _RawEndpointer | None = None  # while it listens
        self._realignments_seen = 0
        # It listens behind a trusted canceller too (AEC3: its output holds back a visitor's
        # first 100-200 ms of double talk).
        self.listens_when_trusted = False

    @property
    def listens(self) -> bool:
        """Its judgement counts: the speaker plays (or its echo rings), the canceller untrusted."""
        return self.endpointer is not None

    @property
    def suspected_speech_ms(self) -> int:
        return 0 if self.endpointer is None else self.endpointer.suspected_speech_ms

    def hear(
        self,
        raw: bytes,
        captured_at_s: float,
        guarded: bool,
        main: Endpointer,
        linear: Sequence[float] | None = None,
    ) -> bytes | None:
        """One raw frame (before the canceller), the app's guard flag for it and the main
        endpointer (whose room it adopts when it starts listening, and whose trust ends its
        say); ``linear``: the canceller's (linear output, echo estimate, microphone) dBFS of
        this very frame, if it tells them (``EchoCanceller.linear_levels``). The onset audio of
        a barge-in proved on this frame, else None."""
        if main.echo_cancelled_well and not self.listens_when_trusted:  # the main endpointer decides
            self.endpointer = None
            return None
        self.tap.process(raw, captured_at_s)
        tap = self.tap
        # It listens from the speaker's first block on, and on while the answer is up (held on
        # a suspicion, the speaker plays nothing: the visitor goes on, and must prove her onset
        # over no echo).
        if not (tap.active or (self.endpointer is not None and guarded)):
            self.endpointer = None
            return None
        if self.endpointer is None:
            # A new stretch heard untrusted: the guard's rules from scratch (the raw echo
            # return learned over its first frames), in the room the main endpointer learned.
            self.endpointer = _RawEndpointer(self._voice, self.settings, self.frame_ms)
            self.endpointer.carry_room(main)
            self.endpointer.echo_return_db = None  # (main's is what the filter leaves)
            self.endpointer.reference_aligned = True
            self.endpointer.guard_min_level_dbfs = self.level_min_dbfs
            self._realignments_seen = tap.realignments  # (lined up before: no history to relearn)
        guard = self.endpointer
        if tap.realignments != self._realignments_seen:
            self._realignments_seen = tap.realignments
            guard.relearn_echo(tap.relined, tap.relined_bands)
        guard.guarded = guarded
        guard.cancelled_db = cancelled_db(linear)
        far_end = tap.frame_reference_dbfs if tap.lag_settled else tap.reference_dbfs
        # The pitch cue only once the echo's lag is lined up: before, it compares the raw frame
        # with reference windows that may not hold its echo (the guard mode's own risk: a
        # synthetic first answer whose echo came 30 ms after the reference taken paused 160 ms in).
        pitch = tap.frame_pitch if tap.lag_settled else None
        for event in guard.process(raw, far_end, None, tap.frame_bands, pitch):
            if isinstance(event, Onset) and guarded:
                self.endpointer = None  # the main endpointer takes the turn from here
                return event.audio
        return None

    def close(self) -> None:
        self.tap.close()

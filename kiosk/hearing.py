"""What a microphone frame goes through before the endpointer's events reach the turn.

:class:`EchoFrontEnd` owns the parts that know what the speaker plays: the echo canceller
(``audio.echo_cancel``), the raw-microphone guard beside it until it is trusted
(:class:`~kiosk.audio.raw_guard.RawMicGuard`), or, without a canceller, the guard's level tap
lining the speaker's output up with each frame (:class:`~kiosk.audio.echo_level.EchoLevelTap`).
The pipeline (:class:`~kiosk.app.KioskPipeline`) asks it to :meth:`~EchoFrontEnd.clean` each
frame, then to :meth:`~EchoFrontEnd.judge` it: the endpointer's events for that frame, with
whatever the echo parts measured about it.

Kept apart from the pipeline so the turn's wiring and the echo's wiring each stay small; a
settings reload keeps an adapted canceller (:meth:`~EchoFrontEnd.keep_canceller_of`).
"""

from __future__ import annotations

from collections.abc import Callable

from kiosk.audio.echo_cancel import EchoCanceller, echo_canceller_for
from kiosk.audio.echo_level import EchoLevelTap
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.raw_guard import RawMicGuard
from kiosk.config import Config
from kiosk.core.endpoint_events import EndpointEvent
from kiosk.core.endpointing import Endpointer


class EchoFrontEnd:
    """The echo canceller or the guard's level tap, and the raw guard, for one pipeline.

    Args:
        cfg: validated settings (``audio.echo_cancel``, ``audio.echo_cancelled``, ``vad``).
        playback: the speaker's buffer (what plays is the echo's reference).
        clock: monotonic seconds (a frame's capture time when the caller gives none).
        unheard_s: audio handed to the speaker but not heard yet (device latency).
        endpointer: the pipeline's endpointer (told what the echo parts found).
    """

    def __init__(
        self,
        cfg: Config,
        playback: PlaybackBuffer,
        clock: Callable[[], float],
        unheard_s: Callable[[], float],
        endpointer: Endpointer,
    ) -> None:
        self.cfg = cfg
        self.playback = playback
        self.clock = clock
        self.endpointer = endpointer
        # audio.echo_cancel: the speaker's echo removed before anything listens (the guard
        # then judges what is left of it).
        self.echo_canceller: EchoCanceller | None = echo_canceller_for(
            cfg.audio.echo_cancel, playback, clock, unheard_s, cfg.audio.frame_ms,
            pitch_min_dbfs=cfg.vad.barge_in_min_level_dbfs,  # quieter frames never count
            linear_pitch_min_dbfs=cfg.vad.min_level_dbfs,  # (trusted: no quieter frame counts)
        )
        endpointer.echo_relearn = self.echo_canceller is not None
        # AEC3 tells only its output, and leaks now and then (kiosk.core.echo_guard: _leaked_echo).
        endpointer.leaky_canceller = cfg.audio.echo_cancel == "webrtc"
        # Until the canceller is trusted, the guard alone judges the raw microphone beside it.
        # Its tap stamps the speaker's blocks by the canceller's clock, whatever that is now
        # (simulate and the lobby bench put it on the microphone's timeline), and whichever
        # canceller this front end holds (a reload keeps the old one).
        self.raw_guard: RawMicGuard | None = None
        if self.echo_canceller is not None:
            self.raw_guard = RawMicGuard(
                playback, self._speaker_clock, unheard_s, cfg.audio.frame_ms, cfg.vad
            )
            # AEC3's output holds back a visitor's first 100-200 ms of double talk (its
            # suppressor takes her for echo), trusted or not: the raw guard listens all along.
            self.raw_guard.listens_when_trusted = cfg.audio.echo_cancel == "webrtc"
        # Without one, the guard judges each frame by the speaker's output lined up with it
        # (the same reference timeline and measured lag, no filter).
        self.echo_level: EchoLevelTap | None = None
        if self.echo_canceller is None and not cfg.audio.echo_cancelled:
            self.echo_level = EchoLevelTap(
                playback, clock, unheard_s, cfg.audio.frame_ms,
                pitch_min_dbfs=cfg.vad.barge_in_min_level_dbfs,  # quieter frames never count
            )
        endpointer.reference_aligned = self.echo_level is not None
        self.realignments_seen = 0

    def _speaker_clock(self) -> float:
        assert self.echo_canceller is not None
        return self.echo_canceller.reference.clock()

    @property
    def tap(self) -> EchoCanceller | EchoLevelTap | None:
        """What lines the speaker's output up with the microphone (the canceller, or the
        guard's level tap), if anything: its ``reference.clock`` stamps the speaker's blocks."""
        return self.echo_canceller if self.echo_canceller is not None else self.echo_level

    def keep_canceller_of(self, old: EchoFrontEnd) -> None:
        """A settings reload: take over ``old``'s canceller, adapted to this room, and drop
        the one built for the new settings (``old`` no longer closes it)."""
        if old.echo_canceller is None or self.echo_canceller is None:
            return
        self.echo_canceller.close()
        self.echo_canceller = old.echo_canceller
        self.realignments_seen = self.echo_canceller.realignments
        old.echo_canceller = None

    def clean(self, frame: bytes, captured_at_s: float | None) -> tuple[bytes, bytes | None]:
        """One 16 kHz microphone frame: the frame the endpointer is to judge (the canceller's
        output, or the frame itself) and the onset audio of a barge-in the raw guard proved
        on it (else None)."""
        endpointer = self.endpointer
        if self.tap is not None and captured_at_s is None:
            captured_at_s = self.clock() - self.cfg.audio.frame_ms / 1000
        if (level_tap := self.echo_level) is not None:
            level_tap.process(frame, captured_at_s)  # type: ignore[arg-type]
            if level_tap.realignments != self.realignments_seen:
                self.realignments_seen = level_tap.realignments
                endpointer.relearn_echo(level_tap.relined, level_tap.relined_bands)
        raw = frame
        if (canceller := self.echo_canceller) is not None:
            # The cleaned frame's pitch counts only until the canceller is trusted.
            canceller.pitch_wanted = not endpointer.echo_cancelled_well
            frame = canceller.process(frame, captured_at_s)  # type: ignore[arg-type]
            if canceller.realignments != self.realignments_seen:
                self.realignments_seen = canceller.realignments
                endpointer.echo_path_changed()
        endpointer.guarded = not self.cfg.audio.echo_cancelled and not self.playback.is_idle
        raw_onset = None
        if self.raw_guard is not None:
            # What the canceller took of this very frame (its linear levels, if it tells them):
            # a raw frame it took most of is the echo (raw_guard.RAW_CANCELLED_DB).
            linear = None if canceller is None else canceller.linear_levels
            raw_onset = self.raw_guard.hear(raw, captured_at_s, endpointer.guarded, endpointer, linear)  # type: ignore[arg-type]
        return frame, raw_onset

    def judge(self, frame: bytes, level_dbfs: float | None) -> list[EndpointEvent]:
        """The endpointer's events for the frame :meth:`clean` returned, given what the echo
        parts measured about it."""
        aec = self.echo_canceller
        if aec is not None:
            # What can still echo in this very frame (the reference the filter holds), not
            # what the speaker took lately: that runs a device latency ahead of the echo.
            far_end = aec.reference_dbfs
            self.endpointer.earcon_echo = aec.earcon_audible
            self.endpointer.raw_mic_dbfs = aec.raw_dbfs
        elif (tap := self.echo_level) is not None:
            # The guard: lined up with the frame once the lag is known; until then the loudest
            # of the span around it (the stamps may be tens of ms off).
            far_end = tap.frame_reference_dbfs if tap.lag_settled else tap.reference_dbfs
        else:
            far_end = None if self.cfg.audio.echo_cancelled else self.playback.recent_output_dbfs
        bands = None if self.echo_level is None else self.echo_level.frame_bands
        pitch = None if (echo := self.tap) is None else echo.frame_pitch
        linear = None if aec is None else aec.linear_levels
        linear_pitch = None if aec is None else aec.linear_pitch
        linear_high = None if aec is None else aec.linear_high_levels
        return self.endpointer.process(
            frame, far_end, level_dbfs, bands, pitch, linear, linear_pitch, linear_high
        )

    @property
    def suspected_speech_ms(self) -> int:
        """Loud voiced audio towards an onset not yet proved, by the endpointer or by the raw
        guard while it listens (either pauses the answer)."""
        suspected_ms = self.endpointer.suspected_speech_ms
        if self.raw_guard is not None:
            suspected_ms = max(suspected_ms, self.raw_guard.suspected_speech_ms)
        return suspected_ms

    def close(self) -> None:
        if (tap := self.tap) is not None:
            tap.close()
        if self.raw_guard is not None:
            self.raw_guard.close()

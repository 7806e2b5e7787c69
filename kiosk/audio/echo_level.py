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
level of the reference frame heard with it (:attr:`frame_reference_dbfs`). The microphone
frames pass through untouched. Cost while the speaker plays: one reference frame taken and
its level per microphone frame, one rfft pair every 4 frames until the lag is settled; while
idle, nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from kiosk.audio.echo_cancel import PlaybackEchoCanceller
from kiosk.core.endpointing import frame_dbfs

# Frames of this playback stretch remembered (1 s), to relearn the echo once it is lined up.
HISTORY_FRAMES = 50


class _PassThrough:
    """A "filter" that leaves the microphone alone: only the reference and the lag are wanted."""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        return mic


class EchoLevelTap(PlaybackEchoCanceller):
    """What the speaker played, lined up with each microphone frame; no cancelling.

    :meth:`process` returns the frame unchanged; then :attr:`frame_reference_dbfs` is the
    level of the reference lined up with it (-inf when nothing played then, or after the
    tail) and :attr:`reference_dbfs` the loudest over the span the canceller would model.
    When the lag was just lined up (``realignments`` went up), :attr:`relined` holds
    (microphone dBFS, lined-up reference dBFS) of the frames of this playback stretch heard
    before, oldest first: the echo they held, judged as it will be from now on.
    """

    def __init__(
        self,
        playback: object,
        clock: Callable[[], float],
        latency_s: Callable[[], float],
        frame_ms: int,
    ) -> None:
        super().__init__(playback, clock, latency_s, frame_ms, lambda *_: _PassThrough())
        self._heard: deque[tuple[float, float]] = deque(maxlen=HISTORY_FRAMES)  # (mic time, dBFS)
        self.relined: list[tuple[float, float]] = []

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
        super().process(frame, captured_at_s)
        if not self._ref_levels:  # nothing played lately: a new stretch starts afresh
            self._heard.clear()
            return frame
        if self.realignments != realignments:
            self.relined = [(mic, self._level_at(at)) for at, mic in self._heard]
        at = self._mic_next_s - self.frame_ms / 1000  # where _mic_time put this frame
        self._heard.append((at, frame_dbfs(frame)))
        return frame

    def _level_at(self, at_s: float) -> float:
        ref = self.reference.take(at_s + self._lead_s, self.frame_samples)
        return -math.inf if ref is None else frame_dbfs(ref)

"""Cutting a PCM stream into exact fixed-duration frames (webrtcvad wants 10/20/30 ms).

Owns the frame arithmetic shared by the live capture
(:class:`~kiosk.audio.pyaudio_io.PyAudioSource`) and WAV-driven simulation: bytes per frame,
and re-chunking arbitrary buffers into frames.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

SAMPLE_WIDTH_BYTES = 2  # int16 mono everywhere inside kiosk


def frame_bytes(rate_hz: int, frame_ms: int) -> int:
    """Bytes of one mono int16 frame; raises ValueError unless the frame is whole samples."""
    samples, rest = divmod(rate_hz * frame_ms, 1000)
    if rest or samples <= 0:
        raise ValueError(f"{frame_ms} ms at {rate_hz} Hz is not a whole number of samples")
    return samples * SAMPLE_WIDTH_BYTES


class FrameSlicer:
    """Accumulates PCM chunks of any size and yields exact ``frame_ms`` frames.

    Calling contract: ``for frame in slicer.push(chunk): ...``; a partial frame stays inside
    until the next push. :meth:`clear` drops it. Not thread-safe: one producer.
    """

    def __init__(self, rate_hz: int, frame_ms: int) -> None:
        self.frame_size_bytes = frame_bytes(rate_hz, frame_ms)
        self._pending = bytearray()

    def push(self, pcm: bytes) -> Iterator[bytes]:
        self._pending += pcm
        size = self.frame_size_bytes
        whole = len(self._pending) - len(self._pending) % size
        if not whole:
            return iter(())
        frames = [bytes(self._pending[i : i + size]) for i in range(0, whole, size)]
        del self._pending[:whole]
        return iter(frames)

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def clear(self) -> None:
        self._pending.clear()


def iter_frames(pcm: bytes, rate_hz: int, frame_ms: int, *, pad: bool = False) -> Iterator[bytes]:
    """Split a whole buffer into frames; a partial tail is dropped (zero-padded if ``pad``)."""
    size = frame_bytes(rate_hz, frame_ms)
    for start in range(0, len(pcm), size):
        frame = pcm[start : start + size]
        if len(frame) < size:
            if not pad:
                return
            frame = frame + bytes(size - len(frame))
        yield frame


def first_frame_at_or_above(frames: list[bytes], level_dbfs: float) -> int | None:
    """Index of the first of ``frames`` (PCM16) whose RMS level is ``level_dbfs`` or more.

    The one rule by which every microphone ends an idle batch early (a visitor may be
    starting to speak): the PortAudio/libpulse capture thread and the WAV reader alike.

    The RMS comes from ``math.hypot`` over the samples (exact, in double precision; the
    endpointer's ``frame_levels_dbfs`` sums in float32, so the two may differ in the 5th
    significant digit). Not numpy: the capture thread asks once per 60 ms block, and in the
    running kiosk numpy's per-call overhead made that check cost ~0.2 % of a core of the
    thread's ~0.7 % (ad hoc, libpulse on a null sink; hypot: ~0.05 %)."""
    if sys.byteorder != "little":  # memoryview reads native order; PCM16 is little-endian
        from kiosk.core.endpointing import frame_levels_dbfs  # numpy

        levels = frame_levels_dbfs(frames)
        return next((i for i, level in enumerate(levels) if level >= level_dbfs), None)
    amplitude = 32768.0 * 10.0 ** (level_dbfs / 20.0)  # the RMS at the level
    for i, frame in enumerate(frames):
        n = len(frame) // SAMPLE_WIDTH_BYTES
        if not n:  # no whole sample: -inf dBFS, as frame_dbfs says
            if level_dbfs == -math.inf:
                return i
            continue
        samples = memoryview(frame)[: n * SAMPLE_WIDTH_BYTES].cast("h")
        if math.hypot(*samples) >= amplitude * math.sqrt(n):
            return i
    return None

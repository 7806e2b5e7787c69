"""Streaming sample-rate conversion of mono int16 PCM (``bytes`` in, ``bytes`` out).

Owns the one place kiosk calls soxr for live audio: mic rate -> 16 kHz for webrtcvad,
24 kHz answer audio -> speaker rate. Whole-file conversion lives in :mod:`kiosk.audio.wav`.
Channel mixing is not done here: callers hand in mono.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import soxr

log = logging.getLogger(__name__)

# The microphone's resampler (device rate -> 16 kHz): soxr "LQ" hands a frame over ~11 ms
# sooner than "HQ" (mean after the frame's end, 60 ms device blocks: 44.1 kHz 52 -> 42 ms,
# 48 kHz 51 -> 40; bench/lobby_budget.py), which a barge-in waits for, at less CPU. It is flat
# to 6 kHz (-3 dB at 6.5, aliases under -75 dB); webrtcvad looks below 4 kHz.
CAPTURE_QUALITY = "LQ"


class Resampler:
    """Converts a stream of mono int16 PCM from ``in_rate_hz`` to ``out_rate_hz``.

    Calling contract: feed chunks of any size to :meth:`process` and use what it returns
    right away; call :meth:`flush` once at the end of a stream for the samples still held in
    the filter, then :meth:`reset` (or a new instance) for the next stream. soxr releases
    output in blocks, so one call may return nothing and the next a double helping; the
    average ratio is exact. Equal rates pass bytes through untouched with zero delay.
    ``lazy``: soxr is loaded and its stream made by the first chunk, not by the constructor.

    A chunk with an odd number of bytes keeps its last byte for the next call, so a sample
    split across chunks is not lost. Not thread-safe: one instance per stream.
    """

    def __init__(
        self, in_rate_hz: int, out_rate_hz: int, *, quality: str = "HQ", lazy: bool = False
    ) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate_hz} -> {out_rate_hz}")
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._quality = quality
        self._stream: soxr.ResampleStream | None = None
        self._odd_byte = b""
        if not lazy and not self.is_passthrough:
            self._soxr()  # now, not in the first chunk's time (a microphone's first block)

    @property
    def is_passthrough(self) -> bool:
        return self.in_rate_hz == self.out_rate_hz

    def _soxr(self) -> soxr.ResampleStream:
        if self._stream is None:
            # Imported here: soxr's extension (~0.45 MB RSS) is not needed by an idle kiosk
            # whose streams run at its own rates; with ``lazy`` (the echo reference's 24 -> 16
            # kHz, built at start-up) not before something is played through it.
            import soxr

            self._stream = soxr.ResampleStream(
                self.in_rate_hz, self.out_rate_hz, 1, dtype="int16", quality=self._quality
            )
        return self._stream

    def process(self, pcm: bytes) -> bytes:
        """Resample one chunk; returns the output available so far (possibly ``b""``)."""
        if self._odd_byte:
            pcm = self._odd_byte + pcm
            self._odd_byte = b""
        if len(pcm) % 2:
            pcm, self._odd_byte = pcm[:-1], pcm[-1:]
        if self.is_passthrough:
            return bytes(pcm)
        if not pcm:
            return b""
        samples = np.frombuffer(pcm, dtype=np.int16)
        out: np.ndarray = self._soxr().resample_chunk(samples)
        return out.tobytes()

    def delay_samples(self) -> float:
        """Output samples the filter still holds (input taken, output not yet returned)."""
        return 0.0 if self._stream is None else float(self._stream.delay())

    def flush(self) -> bytes:
        """End the stream: return the samples still inside the filter."""
        self._odd_byte = b""
        if self._stream is None:  # nothing went in
            return b""
        out: np.ndarray = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        return out.tobytes()

    def reset(self) -> None:
        """Forget all history (after a flush, or to drop a stream half-way: barge-in)."""
        self._odd_byte = b""
        if self._stream is not None:
            self._stream.clear()

"""The speaker's output on the timeline of when it is heard: the echo canceller's reference
(:mod:`kiosk.audio.echo_cancel`, whose docstring tells how the two sides are lined up).

:meth:`EchoReference.played` runs on the speaker's thread (PortAudio callback, libpulse's
thread), :meth:`EchoReference.take` on the microphone's; one short lock, no I/O.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from kiosk.audio.resample import Resampler

RATE_HZ = 16000
# Played blocks whose stamps fall within this of the previous block's end continue it (the
# speaker callback's jitter).
CONTIGUOUS_S = 0.008
# A gap up to this long is filled with silence; a longer one starts afresh.
FILL_GAP_S = 0.5
# How much played audio is kept (the microphone side asks for the last few hundred ms).
KEEP_S = 2.0


class EchoReference:
    """The speaker's output at 16 kHz on the audible-time axis.

    Args:
        clock: monotonic seconds, the same clock the microphone side stamps with.
        latency_s: how long from now until a block taken now is heard (sink + device).
        source_rate_hz: the playback buffer's rate.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        latency_s: Callable[[], float] = lambda: 0.0,
        source_rate_hz: int = 24000,
    ) -> None:
        self.clock = clock  # replaceable: simulate stamps on the microphone's sample timeline
        self._latency_s = latency_s
        self._resampler = Resampler(source_rate_hz, RATE_HZ, lazy=True)  # idle: nothing plays
        self._lock = threading.Lock()
        # (start time, samples, an earcon sounds in them)
        self._segments: deque[tuple[float, np.ndarray, bool]] = deque()
        self._end_s = -math.inf  # audible time of the sample after the last one kept
        self._in_end_s = -math.inf  # the same, for the source (before the resampler)
        self._last_earcon = False  # the last block played had an earcon in it
        self._restamp = False  # the speaker dropped audio: the next block goes at its stamp
        self.restamps = 0  # blocks placed at their stamp after a drop (the lag may have moved)

    def played(self, pcm: bytes, earcon: bool = False) -> None:
        """The speaker just took ``pcm`` (mono int16 at the source rate) from the buffer;
        ``earcon``: an earcon is mixed into it."""
        start = self.clock() + self._latency_s()
        n_in = len(pcm) // 2
        source_rate = self._resampler.in_rate_hz
        block_s = n_in / source_rate
        with self._lock:  # the resampler too: take() may flush it
            gap = start - self._in_end_s
            restamp, self._restamp = self._restamp, False
            self.restamps += restamp
            if restamp and 0 < gap <= FILL_GAP_S:
                # After a drop the silence heard lasted what the stamps say, not whole blocks:
                # rounded, the rest of the reference stood up to half a block off its echo (a
                # block more whenever the stamps' jitter crossed the half: -22 ms through
                # PulseAudio, tuning mix 074's first answer, which then paused itself).
                pcm = bytes(round(gap * source_rate) * 2) + pcm
                n_in = len(pcm) // 2
                gap = 0.0
            elif 0 < gap <= FILL_GAP_S and block_s > 0 and round(gap / block_s) >= 1:
                # Whole blocks went unplayed (the queue ran dry, the speaker was held): silence
                # was heard meanwhile; it goes through the resampler too, so the stream stays
                # exact. The stamps' own jitter (under half a block) is ignored.
                missing = round(gap / block_s) * n_in
                pcm = bytes(missing * 2) + pcm
                n_in = len(pcm) // 2
                gap = 0.0
            if abs(gap) > max(CONTIGUOUS_S, block_s / 2) or (restamp and gap != 0):
                self._resampler.reset()  # a new stretch of playback: no tail of the old one
                out_start = start
            else:
                start = self._in_end_s
                out_start = self._end_s
            self._in_end_s = start + n_in / source_rate
            self._append(out_start, self._resampler.process(pcm), earcon)
            while self._segments and self._segments[0][0] < start - KEEP_S:
                self._segments.popleft()

    def dropped(self, seconds: float) -> None:
        """The speaker dropped the last ``seconds`` it had taken before they were heard (the
        sound server flushed its queue: a pause, a barge-in): the reference is cut there (not
        before now: the queue's tail may have been silence the reference never had), and the
        next block played starts where its stamp puts it."""
        now = self.clock()
        with self._lock:
            self._restamp = True
            if not math.isfinite(self._in_end_s):
                return
            cut = max(now, self._in_end_s - max(0.0, seconds))
            if cut >= self._in_end_s:
                return
            self._resampler.reset()  # (it held back the last few ms given: dropped too)
            while self._segments and self._segments[-1][0] >= cut:
                self._segments.pop()
            if self._segments:
                seg_start, samples, earcon = self._segments[-1]
                keep = max(0, round((cut - seg_start) * RATE_HZ))
                if keep < samples.size:
                    self._segments[-1] = (seg_start, samples[:keep], earcon)
            self._in_end_s = self._end_s = cut

    def _append(self, out_start: float, pcm: bytes, earcon: bool) -> None:
        samples = np.frombuffer(pcm, dtype=np.int16)
        if samples.size:
            self._segments.append((out_start, samples, earcon))
        self._end_s = out_start + samples.size / RATE_HZ
        self._last_earcon = earcon

    def _flush_if_stopped(self, stop_s: float) -> None:
        """The resampler holds back the last ~7-30 ms it was given (soxr's delay and its
        bursts) until more comes. Asked for audio past what came out while that much is held
        back, the speaker has stopped (the queue ran dry, an answer ended, a hold): what it
        played last is pushed out, followed by the silence it plays now (else that echo,
        a frame or two, met no reference: uncancelled, it paused the answer)."""
        if stop_s > self._end_s and self._in_end_s - self._end_s >= 1 / RATE_HZ:
            tail = self._resampler.flush()
            self._resampler.reset()
            self._append(self._end_s, tail, self._last_earcon)

    def take(self, start_s: float, n: int) -> bytes | None:
        """``n`` samples heard from ``start_s`` on (silence where nothing played), or None
        when nothing at all was played then."""
        return self.take_marked(start_s, n)[0]

    def take_marked(self, start_s: float, n: int) -> tuple[bytes | None, bool]:
        """:meth:`take`, and whether an earcon sounds in those samples."""
        stop_s = start_s + n / RATE_HZ
        out: np.ndarray | None = None
        earcon = False
        with self._lock:
            self._flush_if_stopped(stop_s)
            if start_s >= self._end_s or not self._segments:
                return None, False  # after the last sound (the usual case while idle): no scan
            for seg_start, samples, marked in self._segments:
                seg_stop = seg_start + samples.size / RATE_HZ
                if seg_stop <= start_s or seg_start >= stop_s:
                    continue
                if out is None:
                    out = np.zeros(n, dtype=np.int16)
                a = round((seg_start - start_s) * RATE_HZ)
                lo, hi = max(0, a), min(n, a + samples.size)
                if hi > lo:
                    out[lo:hi] = samples[lo - a : hi - a]
                    earcon = earcon or marked
        return (None, False) if out is None else (out.tobytes(), earcon)

"""The latency a PulseAudio playback stream reports, held steady while the server keeps its
queue full (issue 10 item 4, helper guardpa28).

libpulse interpolates a playback stream's latency (``pa_stream_get_latency`` with
``STREAM_INTERPOLATE_TIMING``) between the server's timing updates. Now and then that estimate
creeps up by tens of milliseconds for seconds at a time while nothing changes: through real
PulseAudio null sinks (``bench/pulse_trace.py``, the daemon itself, tuning echo mixes) 6 of 48
answers reported 60 -> 70 -> 90 -> 110 -> 128 ms and back within a few seconds, more than the
stream's whole 100 ms buffer, where the others held 57-61 ms. The echo reference stamps each
block the speaker takes with now + that latency (:class:`kiosk.audio.echo_cancel.EchoReference`),
so its timeline jumped by 10-30 ms at a time against the echo the guard had lined it up with
once: the lined-up reference then lagged the echo by up to 55 ms, the end of a loud syllable's
echo met the quiet reference after it, and the answer paused itself (3 of those 6 answers,
every self-pause of that run; at -20 dB echo none).

A stream fed by its write callback (kiosk writes exactly what the server asks for) keeps the
server's queue as full as it was: while the server asks for a small part of the queue at a time
(a block or two: 20-30 ms of 100), what is queued ahead of each new block does not change.
:class:`SteadyPlaybackLatency` reports the lower quartile of the stretch's reports so far, and
from ``STEADY_REPORTS`` on holds it (the creep starts as the stream resumes for an answer:
60.4 -> 77.5 ms over its first 0.5 s, tuning mix 079; a median would keep half of it); a
request for half the queue or more (the queue ran low: the stream started, was flushed, or
underran) or a cork starts a new stretch.
"""

from __future__ import annotations

# Reports a stretch's latency is the lower quartile of (one per write request: 0.5 s of 20 ms
# blocks). The first few after the stream opens read low (0, 17, 37, 57 ms on a null sink, then
# 60): a quarter of them is outvoted by then.
STEADY_REPORTS = 25


class SteadyPlaybackLatency:
    """Feed :meth:`request` with each write request's size (on the stream's callback) and
    pass every latency the server reports through :meth:`latency_s`."""

    def __init__(self, reports: int = STEADY_REPORTS) -> None:
        self._reports_wanted = reports
        self._reports: list[float] = []
        self._held_s: float | None = None
        self._steady = False
        self._want_report = False  # one report per request counts (other threads ask too)
        self.reported_s: float | None = None  # the last latency the server reported (diagnostics)

    def request(self, nbytes: int, queue_bytes: int) -> None:
        """The server asks for ``nbytes`` of the ``queue_bytes`` it keeps (tlength)."""
        if 2 * nbytes >= queue_bytes:
            self.restart()  # the queue ran low: it fills again from here
        else:
            self._steady = self._want_report = True

    def restart(self) -> None:
        self._reports.clear()
        self._held_s = None
        self._steady = False

    def latency_s(self, reported_s: float) -> float:
        """The latency to use, given the one the server reports now."""
        self.reported_s = reported_s
        if self._held_s is not None:
            return self._held_s
        if not self._steady:
            return reported_s
        if self._want_report:
            self._want_report = False
            self._reports.append(reported_s)
        ranked = sorted(self._reports)
        low = ranked[len(ranked) // 4] if ranked else reported_s
        if len(ranked) >= self._reports_wanted:
            self._held_s = low
        return low

"""The speaker's latency on the PulseAudio backend holds steady while the server keeps its
queue full (helper guardpa28; kiosk.audio.pulse_latency).

Through real PulseAudio, libpulse's interpolated latency now and then crept up by tens of ms
for seconds mid-answer (60 -> 128 ms on a 100 ms buffer) while the queue did not change; the
echo reference's timeline followed it and the half-duplex guard, lined up with the echo once,
paused the answer on its own echo."""

from __future__ import annotations

from kiosk.audio.pulse_latency import STEADY_REPORTS, SteadyPlaybackLatency


def feed(steady: SteadyPlaybackLatency, nbytes: int, reported_ms: float) -> float:
    steady.request(nbytes, 4800)
    return steady.latency_s(reported_ms / 1000) * 1000


def test_a_creep_after_the_stretch_settled_is_ignored_and_a_refill_starts_afresh() -> None:
    steady = SteadyPlaybackLatency()
    assert feed(steady, 3360, 4.0) == 4.0  # the stream starts: the queue fills
    ramp = [0.0, 17.4, 37.1, 57.0] + [60.0] * STEADY_REPORTS
    got = [feed(steady, 1444, ms) for ms in ramp]
    assert got[:4] == ramp[:4]  # still settling: as reported
    assert got[-1] == 60.0
    assert [feed(steady, 960, ms) for ms in (70.4, 90.9, 110.0, 128.0)] == [60.0] * 4
    assert steady.reported_s == 0.128
    # Other threads asking meanwhile count no report of their own.
    assert feed(steady, 3360, 8.0) == 8.0  # flushed / underran: a new stretch
    assert [feed(steady, 960, 40.0) for _ in range(STEADY_REPORTS)][-1] == 40.0
    assert feed(steady, 960, 95.0) == 40.0


def test_reports_asked_for_between_requests_count_once() -> None:
    steady = SteadyPlaybackLatency(reports=3)
    steady.request(960, 4800)
    for _ in range(10):  # the daemon's thread asks often: one report per request
        steady.latency_s(0.06)
    steady.request(960, 4800)
    steady.latency_s(0.06)
    assert steady.latency_s(0.09) == 0.09  # only 2 reports so far: not held yet
    steady.request(960, 4800)
    assert steady.latency_s(0.06) == 0.06
    assert steady.latency_s(0.2) == 0.06

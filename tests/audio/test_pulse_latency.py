"""The speaker's latency on the PulseAudio backend holds steady while the server keeps its
queue full (helper guardpa28; kiosk.audio.pulse_latency).

Through real PulseAudio, libpulse's interpolated latency now and then crept up by tens of ms
for seconds mid-answer (60 -> 128 ms on a 100 ms buffer) while the queue did not change; the
echo reference's timeline followed it and the half-duplex guard, lined up with the echo once,
paused the answer on its own echo."""

from __future__ import annotations

from kiosk.audio.pulse_latency import STEADY_REPORTS, SteadyPlaybackLatency

QUEUE = 4800  # 100 ms at 24 kHz mono


def feed(steady: SteadyPlaybackLatency, nbytes: int, reported_ms: float) -> float:
    steady.request(nbytes, QUEUE)
    return round(steady.latency_s(reported_ms / 1000) * 1000, 3)


def test_a_creep_is_ignored_and_a_refill_starts_afresh() -> None:
    steady = SteadyPlaybackLatency()
    assert feed(steady, 3360, 4.0) == 4.0  # the stream starts: the queue fills, as reported
    ramp = [0.0, 17.4, 37.1, 57.0] + [60.0] * (STEADY_REPORTS - 4)
    got = [feed(steady, 1444, ms) for ms in ramp]
    assert got[:2] == [0.0, 0.0] and got[-1] == 60.0  # the low start outvoted
    assert [feed(steady, 960, ms) for ms in (70.4, 90.9, 110.0, 128.0)] == [60.0] * 4
    assert steady.reported_s == 0.128
    assert feed(steady, 3360, 8.0) == 8.0  # flushed / underran: a new stretch
    assert [feed(steady, 960, 40.0) for _ in range(STEADY_REPORTS)][-1] == 40.0
    assert feed(steady, 960, 95.0) == 40.0
    steady.restart()  # corked
    assert steady.latency_s(0.07) == 0.07


def test_a_creep_as_the_stream_resumes_is_not_followed() -> None:
    steady = SteadyPlaybackLatency()
    creep = [60.4 + 0.7 * k for k in range(STEADY_REPORTS + 10)]  # tuning mix 079: +17 ms in 0.5 s
    got = [feed(steady, 960, ms) for ms in creep]
    assert max(got) - creep[0] < 6
    assert got[-1] == got[STEADY_REPORTS - 1]  # held


def test_reports_asked_for_between_requests_count_once() -> None:
    steady = SteadyPlaybackLatency(reports=3)
    steady.request(960, QUEUE)
    for _ in range(10):  # the daemon's thread asks often: one report per request
        steady.latency_s(0.06)
    steady.request(960, QUEUE)
    assert steady.latency_s(0.09) == 0.06
    steady.request(960, QUEUE)
    assert steady.latency_s(0.06) == 0.06
    assert steady.latency_s(0.2) == 0.06  # held after 3 reports

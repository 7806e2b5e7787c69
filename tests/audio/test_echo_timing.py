"""The echo canceller's two timelines keep the relation the samples have, as a real sound
server's stamps need (helper speexpa28; through PulseAudio, ``bench/pulse_aec.py``, SpeexDSP
answers paused themselves while the frame-time bench, on an ideal clock, counted none):

- the microphone's frames follow their sample count: stamps 60 ms off over the first frames,
  then noisy, must not move the frames' times while an answer plays (the old timeline, steered
  1 % a frame towards each stamp, was still moving ~1 ms/s seconds later: the echo came to lead
  its reference, which the filter cannot cancel);
- after a pause whose device queue the sink dropped, the reference holds silence from the drop
  on and the answer's next block where its stamp puts it (before: the dropped audio stayed in
  the reference and the next block was put a whole number of blocks after it, 7 ms off here).
"""

from __future__ import annotations

import numpy as np

from kiosk.audio.echo_cancel import (
    REFERENCE_LEAD_MS,
    EchoCanceller,
    EchoReference,
    PlaybackEchoCanceller,
)
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pyaudio_io import PyAudioSink
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio
from tests.audio.rechecking import Taken, rechecking_canceller

RATE = 16000
FRAME = 320


def _ramp(n: int) -> np.ndarray:
    """Samples that say where they are: value i - 15000 at index i (mod 30000)."""
    return (np.arange(n) % 30000 - 15000).astype(np.int16)


def _position(samples: np.ndarray) -> int:
    return int(samples[0]) + 15000


def test_noisy_microphone_stamps_do_not_move_the_frames_off_their_sample_count() -> None:
    now = [0.0]
    reference = EchoReference(lambda: now[0], source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20, Taken, align=False)
    answer = _ramp(RATE * 12)
    answer_at = 2.0  # the speaker's first sample is heard then (its stamps are exact)
    rng = np.random.default_rng(7)
    offsets = []
    for k in range(650):  # 13 s of frames; frame k is captured from k * 20 ms on
        now[0] = k * 0.02
        j = k - round(answer_at / 0.02)
        if 0 <= j and (j + 1) * FRAME <= answer.size:
            reference.played(answer[j * FRAME : (j + 1) * FRAME].tobytes())  # heard now
        error = 0.06 if k < 3 else rng.uniform(-0.003, 0.003)  # start-up error, then jitter
        before = len(canceller._filter.refs)
        canceller.process(bytes(FRAME * 2), now[0] - 0.04 + error)  # the frame before last
        if len(canceller._filter.refs) > before and 3.0 <= now[0] <= 12.5:
            got = _position(np.frombuffer(canceller._filter.refs[-1], np.int16))
            truth = round((now[0] - 0.04 + REFERENCE_LEAD_MS / 1000 - answer_at) * RATE)
            offsets.append((got - truth + 15000) % 30000 - 15000)
    assert len(offsets) > 400
    # the frames' times stay on their count: within the stamps' jitter of the truth (3 ms),
    # and they never move (the old timeline moved 22 ms over these 9.5 s)
    assert max(abs(x) for x in offsets) <= 3 * RATE // 1000, (min(offsets), max(offsets))
    assert max(offsets) - min(offsets) <= 1, (min(offsets), max(offsets))


def test_a_pause_whose_queue_the_sink_dropped_keeps_the_reference_on_its_echo() -> None:
    device = FakeDevice("speaker", inputs=0, outputs=2, default_rate_hz=RATE, rates_hz=(RATE,))
    host = FakePortAudio(devices=[device])
    buffer = PlaybackBuffer(RATE)
    sink = PyAudioSink("", buffer, source_rate_hz=RATE, pyaudio_factory=lambda: host)
    now = [100.0]
    tap = PlaybackEchoCanceller(buffer, lambda: now[0], lambda: sink.unplayed_ms / 1000, 20, Taken)
    reference = tap.reference
    sink.start()
    stream = host.streams[0]
    latency_s = stream.get_output_latency()  # the device plays each block this much later
    queued = [0.0]
    stream.drop_queued = lambda then: then(queued[0])  # type: ignore[attr-defined]
    buffer.write(_ramp(RATE * 3).tobytes(), "answer")

    def callback() -> None:
        stream.callback(None, FRAME, {}, 0)

    for k in range(50):  # 1 s of answer, a block every 20 ms
        now[0] = 100.0 + k * 0.02
        callback()
    last = now[0]
    now[0] = hold_at = last + 0.007  # a suspected barge-in, between two blocks
    queued[0] = last + latency_s + 0.02 - hold_at  # what the device held, unheard
    heard = round((hold_at - latency_s - 100.0) * RATE)  # the sample heard at the drop
    buffer.hold(True)  # the sink drops its device's queue, the buffer takes it back
    for k in range(11):  # the device asks again at once, then every 20 ms: silence
        now[0] = hold_at + k * 0.02
        callback()
    buffer.hold(False)
    now[0] = resume = hold_at + 11 * 0.02
    for k in range(10):
        now[0] = resume + k * 0.02
        callback()
    # silence from the drop on, until the answer's next block is heard
    gap = reference.take(hold_at + 0.001, round((resume + latency_s - hold_at - 0.002) * RATE))
    assert gap is None or not np.frombuffer(gap, np.int16).any()
    # then the answer goes on from the sample heard at the drop, where its stamp puts it
    after = reference.take(resume + latency_s + 0.005, FRAME)
    assert after is not None
    assert _position(np.frombuffer(after, np.int16)) == heard + round(0.005 * RATE)
    tap.close()
    assert buffer._drop_listeners == []


def test_a_later_stretch_stamped_off_is_moved_back_onto_the_lag_the_filter_learned() -> None:
    """Each stretch is placed by its first stamp; 0.3 ms off (5 samples) undid what the filter
    learned. A rechecking canceller measures the lag again and moves the reference back,
    keeping the filter (no restart, no new echo path for the guard)."""
    from kiosk.audio.echo_delay import TARGET_MS, EchoDelayEstimator

    rig = rechecking_canceller(3, 30, RATE)
    canceller, reference, now, answer = rig.canceller, rig.reference, rig.now, rig.answer
    echo_s = 0.02  # the room: the echo 20 ms after the speaker plays
    stretches = [(1.0, 3.0, 0.0), (6.0, 8.0, 0.0003)]  # (from, to, stamp error)
    mic_frames, ref_frames = [], []
    for k in range(500):  # 10 s
        now[0] = k * 0.02
        for begin, end, error in stretches:
            if begin <= now[0] < end:  # the block heard from now on, stamped `error` late
                j = round((now[0]) * RATE)
                pcm = answer[j : j + FRAME].tobytes()
                reference.clock = lambda: now[0] + error
                reference.played(pcm)
                reference.clock = lambda: now[0]
        t = now[0] - 0.04  # the frame before last
        i = round((t - echo_s) * RATE)  # what the speaker played then (silence outside stretches)
        heard = np.zeros(FRAME, np.int16)
        for begin, end, _ in stretches:
            lo, hi = round(begin * RATE), round(end * RATE)
            idx = np.arange(i, i + FRAME)
            mask = (idx >= lo) & (idx < hi)
            heard[mask] = answer[idx[mask]] // 4
        before = len(canceller._filter.refs)
        canceller.process(heard.tobytes(), t)
        if len(canceller._filter.refs) > before:
            mic_frames.append(heard)
            ref_frames.append(np.frombuffer(canceller._filter.refs[-1], np.int16))
    assert canceller._filter.resets == 1  # the first line-up only: the filter keeps what it learned
    # the guard is told the echo path changed at the first line-up, at the end of each stretch
    # (the next is placed by its own stamp) and at the reline (tests/audio/test_aec_distrust.py)
    assert canceller.realignments == 4
    assert canceller.relines == 1
    lag = EchoDelayEstimator(FRAME).estimate(np.concatenate(mic_frames[-16:]), np.concatenate(ref_frames[-16:]))
    assert lag is not None and abs(lag - TARGET_MS) < 0.1, lag

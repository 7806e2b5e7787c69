"""PyAudioSource / PyAudioSink logic against a PortAudio double whose callbacks the test drives.

The real-PortAudio path (PulseAudio null sink) is tests/integration/test_pyaudio_pulse.py.
"""

import os
import threading
import time

import numpy as np
import pytest

from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource, reopen_streams
from kiosk.errors import DeviceError
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio, FakeStream
from tests.audio.helpers import dominant_freq_hz, rms_dbfs, tone

TIMEOUT_S = 5.0 * float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))


def _host(**device: object) -> FakePortAudio:
    spec = {"name": "USB Audio", "inputs": 2, "outputs": 2, "rates_hz": (48000,)}
    spec.update(device)
    return FakePortAudio(devices=[FakeDevice(**spec)])  # type: ignore[arg-type]


def _source(host: FakePortAudio, frames: list[bytes], **kwargs: object) -> PyAudioSource:
    return PyAudioSource(
        "",
        rate_hz=16000,
        frame_ms=20,
        on_frame=frames.append,
        pyaudio_factory=lambda: host,
        **kwargs,  # type: ignore[arg-type]
    )


def _feed(stream: FakeStream, pcm: bytes, channels: int, block_frames: int) -> None:
    step = block_frames * channels * 2
    for start in range(0, len(pcm), step):
        out, flag = stream.callback(pcm[start : start + step], block_frames, {}, 0)
        assert (out, flag) == (None, 0)


def test_source_on_stereo_48k_device_delivers_exact_mono_16k_frames() -> None:
    host = _host(channels=(2,))
    frames: list[bytes] = []
    left = tone(1000, 48000, 1.0, amplitude=0.5)
    stereo = np.column_stack([left, left]).reshape(-1).tobytes()

    with _source(host, frames) as source:
        assert (source.device_rate_hz, source.channels) == (48000, 2)
        stream = host.streams[0]
        assert stream.kwargs["frames_per_buffer"] == 960
        assert stream.kwargs["input"] is True
        _feed(stream, stereo, channels=2, block_frames=480)

    assert {len(f) for f in frames} == {640}
    assert 48 <= len(frames) <= 50  # the resampler holds back a few ms
    captured = np.frombuffer(b"".join(frames), dtype=np.int16)
    assert dominant_freq_hz(captured[1600:], 16000) == pytest.approx(1000, abs=2)
    assert rms_dbfs(captured[1600:]) == pytest.approx(rms_dbfs(left), abs=0.2)
    assert source.frames_delivered == len(frames)


def test_source_at_the_vad_rate_passes_frames_through_unchanged() -> None:
    host = _host(rates_hz=(16000,))
    frames: list[bytes] = []
    pcm = tone(440, 16000, 0.2).tobytes()

    with _source(host, frames) as source:
        assert source.channels == 1
        _feed(host.streams[0], pcm, channels=1, block_frames=160)

    assert b"".join(frames) == pcm


def test_source_with_60_ms_blocks_hands_over_each_callbacks_frames_at_once() -> None:
    host = _host(rates_hz=(16000,))
    batches: list[list[bytes]] = []
    pcm = tone(440, 16000, 0.24).tobytes()

    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, block_ms=60, on_frames=batches.append,
        pyaudio_factory=lambda: host,
    )
    with source:
        assert host.streams[0].kwargs["frames_per_buffer"] == 960
        _feed(host.streams[0], pcm, channels=1, block_frames=960)

    assert [len(b) for b in batches] == [3, 3, 3, 3]
    assert b"".join(f for b in batches for f in b) == pcm
    assert source.frames_delivered == 12


def test_source_needs_exactly_one_frame_callback() -> None:
    with pytest.raises(ValueError, match="exactly one of on_frame and on_frames"):
        PyAudioSource("", rate_hz=16000, frame_ms=20)


def test_source_on_frame_error_is_contained_and_frames_keep_coming() -> None:
    host = _host(rates_hz=(16000,))
    calls: list[bytes] = []

    def on_frame(frame: bytes) -> None:
        calls.append(frame)
        if len(calls) == 1:
            raise RuntimeError("bug in the app")

    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, on_frame=on_frame, pyaudio_factory=lambda: host
    )
    with source:
        _feed(host.streams[0], bytes(640 * 3), channels=1, block_frames=320)

    assert len(calls) == 3


def test_open_refused_by_portaudio_raises_one_line_device_error_and_releases_host() -> None:
    host = _host()
    host.refuse_open = True

    with pytest.raises(DeviceError, match="cannot open input device #0 'USB Audio'") as info:
        _source(host, []).start()

    assert "Device unavailable" in str(info.value)
    assert "\n" not in str(info.value)
    assert host.terminated == 1


def test_fixed_capture_rate_the_device_refuses_raises_device_error() -> None:
    with pytest.raises(DeviceError, match="does not take 16000 Hz"):
        _source(_host(), [], capture_rate_hz=16000).start()


def test_close_is_idempotent_and_releases_stream_and_host() -> None:
    host = _host()
    source = _source(host, [])
    source.start()

    source.close()
    source.close()

    assert host.streams[0].closed
    assert host.terminated == 1
    assert not source.is_running


def test_stream_stopped_by_portaudio_calls_on_error_once_and_reopen_opens_anew() -> None:
    host = _host()
    errors: list[BaseException] = []
    reported = threading.Event()

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        reported.set()

    source = _source(host, [], on_error=on_error, stall_timeout_s=60.0)
    source.start()
    host.streams[0].active = False  # what PortAudio does when the device goes away

    assert reported.wait(TIMEOUT_S)
    assert not source.is_running
    source.reopen()

    assert len(errors) == 1
    assert isinstance(errors[0], DeviceError)
    assert "input device stopped" in str(errors[0])
    assert host.streams[0].closed
    assert host.streams[1].is_active()
    assert source.is_running
    source.close()


def test_stream_without_callbacks_is_reported_stalled() -> None:
    host = _host()
    reported = threading.Event()
    errors: list[BaseException] = []

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        reported.set()

    with _source(host, [], on_error=on_error, stall_timeout_s=0.2, start_timeout_s=0.2):
        assert reported.wait(TIMEOUT_S)

    assert "input device stalled" in str(errors[0])


def _sink(host: FakePortAudio, buffer: PlaybackBuffer, **kwargs: object) -> PyAudioSink:
    return PyAudioSink("", buffer, pyaudio_factory=lambda: host, **kwargs)  # type: ignore[arg-type]


def _render(stream: FakeStream, blocks: int, frame_count: int) -> bytes:
    out = bytearray()
    for _ in range(blocks):
        data, flag = stream.callback(None, frame_count, {}, 0)
        assert flag == 0
        assert data is not None
        out += data
    return bytes(out)


def test_sink_resamples_24k_buffer_to_48k_device_and_counts_played_ms() -> None:
    host = _host(channels=(1,))
    buffer = PlaybackBuffer(24000)
    buffer.write(tone(1000, 24000, 1.0).tobytes(), "item_1")

    with _sink(host, buffer) as sink:
        assert (sink.device_rate_hz, sink.channels) == (48000, 1)
        assert host.streams[0].kwargs["output"] is True
        out = _render(host.streams[0], blocks=40, frame_count=960)  # 800 ms
        held_ms = sink.unplayed_ms - sink.output_latency_ms
        assert sink.output_latency_ms == pytest.approx(30)

    played = np.frombuffer(out, dtype=np.int16)
    assert played.size == 40 * 960
    assert dominant_freq_hz(played[4800:], 48000) == pytest.approx(1000, abs=2)
    # The resampler reads slightly ahead of the device; unplayed_ms accounts for exactly that.
    assert 800 <= buffer.played_ms("item_1") <= 860
    assert buffer.played_ms("item_1") - held_ms == pytest.approx(800, abs=1.5)


def test_sink_duplicates_mono_to_a_stereo_only_device_and_applies_volume() -> None:
    host = _host(channels=(2,), rates_hz=(24000,))
    buffer = PlaybackBuffer(24000)
    pcm = tone(500, 24000, 0.1, amplitude=0.8)
    buffer.write(pcm.tobytes(), "item")

    with _sink(host, buffer, volume=0.5) as sink:
        assert sink.channels == 2
        out = _render(host.streams[0], blocks=1, frame_count=2400)

    frames = np.frombuffer(out, dtype=np.int16).reshape(-1, 2)
    np.testing.assert_array_equal(frames[:, 0], frames[:, 1])
    expected = np.rint(pcm.astype(np.float32) * 0.5).astype(np.int16)
    np.testing.assert_array_equal(frames[:, 0], expected)


def test_sink_after_buffer_flush_plays_silence_from_the_next_block() -> None:
    host = _host(channels=(1,))
    buffer = PlaybackBuffer(24000)
    buffer.write(tone(800, 24000, 2.0).tobytes(), "item")

    with _sink(host, buffer):
        before = _render(host.streams[0], blocks=5, frame_count=960)
        buffer.flush()
        after = _render(host.streams[0], blocks=3, frame_count=960)

    assert rms_dbfs(np.frombuffer(before, dtype=np.int16)) > -15
    # Silence, give or take soxr's 1-LSB rounding noise: none of the tone's tail.
    assert np.abs(np.frombuffer(after, dtype=np.int16)).max() <= 2


def test_sink_source_rate_must_match_the_buffer() -> None:
    with pytest.raises(ValueError, match="differs from the buffer"):
        PyAudioSink("", PlaybackBuffer(24000), source_rate_hz=16000)


def test_reopen_streams_releases_every_portaudio_instance_before_opening_again() -> None:
    host = _host()
    source = _source(host, [])
    sink = _sink(host, PlaybackBuffer(24000))
    source.start()
    sink.start()
    host.events.clear()

    reopen_streams(source, sink)

    # Only with no instance alive does PortAudio re-scan devices (a replugged USB device).
    assert host.events == ["terminate", "terminate", "open input", "open output"]
    assert source.is_running and sink.is_running
    source.close()
    sink.close()


def _feed_until(stream: FakeStream, block: bytes, done: threading.Event) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done.is_set() and time.monotonic() < deadline:
        stream.callback(block, len(block) // 2, {}, 0)
        time.sleep(0.01)


def test_source_hearing_only_exact_zeros_reports_digital_silence_when_asked() -> None:
    host = _host(rates_hz=(16000,), channels=(1,))
    errors: list[BaseException] = []
    reported = threading.Event()

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        reported.set()

    with _source(host, [], on_error=on_error, silence_timeout_s=0.2):
        _feed_until(host.streams[0], bytes(320), reported)

    assert reported.is_set()
    assert "delivers only digital silence" in str(errors[0])


def test_source_hearing_quiet_noise_is_not_digital_silence() -> None:
    host = _host(rates_hz=(16000,), channels=(1,))
    errors: list[BaseException] = []
    quiet = np.zeros(160, dtype=np.int16)
    quiet[::7] = 1  # -80 dBFS: a live mic in a silent room still has this much
    stop = threading.Event()
    timer = threading.Timer(0.6, stop.set)

    with _source(host, [], on_error=errors.append, silence_timeout_s=0.2):
        timer.start()
        _feed_until(host.streams[0], quiet.tobytes(), stop)

    assert errors == []


def _wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_idle_sink_stops_its_stream_and_starts_again_when_audio_is_written() -> None:
    host = _host(rates_hz=(24000,))
    buffer = PlaybackBuffer(24000)
    errors: list[BaseException] = []
    with _sink(
        host, buffer, idle_pause_s=0.05, stall_timeout_s=0.2, on_error=errors.append
    ) as sink:
        stream = host.streams[0]
        assert stream.callback(None, 480, {}, 0)[0] == bytes(960)  # silence, buffer dry
        _wait_until(lambda: not stream.active, "the idle sink never paused")
        assert sink.pauses == 1
        time.sleep(0.5)  # well past the stall timeout: a paused stream is not a dead one
        assert errors == [] and not stream.active

        buffer.write(tone(440, 24000, 0.02).tobytes(), item_id="answer")
        _wait_until(lambda: stream.active, "writing audio did not restart the stream")
        assert stream.starts == 2
        out, _ = stream.callback(None, 480, {}, 0)
        assert out == tone(440, 24000, 0.02).tobytes()
        assert buffer.played_ms("answer") == 20
    assert errors == []


def test_sink_without_idle_pause_keeps_rendering_silence() -> None:
    host = _host(rates_hz=(24000,))
    with _sink(host, PlaybackBuffer(24000), stall_timeout_s=0.2) as sink:
        stream = host.streams[0]
        for _ in range(10):
            stream.callback(None, 480, {}, 0)
            time.sleep(0.02)
        assert stream.active and sink.pauses == 0


def test_source_gathers_quiet_blocks_and_hands_a_loud_one_over_at_once() -> None:
    """handover_blocks > 1 (the kiosk has nothing to react to): quiet blocks are gathered
    into one hand-over; a block with a frame at handover_level_dbfs or louder ends the batch
    there. Nothing is lost or reordered; back at 1 block, every callback hands over."""
    host = _host(rates_hz=(16000,))
    batches: list[list[bytes]] = []
    rng = np.random.default_rng(5)
    quiet = (rng.standard_normal(960 * 12) * 30).astype(np.int16)  # ~ -60 dBFS
    quiet[960 * 5 + 400 : 960 * 5 + 720] = (rng.standard_normal(320) * 3000).astype(np.int16)
    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, block_ms=60, on_frames=batches.append,
        pyaudio_factory=lambda: host,
    )  # fmt: skip
    with source:
        source.handover_blocks = 4
        source.handover_level_dbfs = -40.0
        _feed(host.streams[0], quiet[: 960 * 10].tobytes(), channels=1, block_frames=960)
        source.handover_blocks = 1
        _feed(host.streams[0], quiet[960 * 10 :].tobytes(), channels=1, block_frames=960)

    # blocks 0-3 (quiet), 4-5 (block 5 is loud), 6-9 (quiet), then 10 and 11 one by one
    assert [len(b) for b in batches] == [12, 6, 12, 3, 3]
    assert b"".join(f for b in batches for f in b) == quiet.tobytes()
    assert source.handovers == 5

"""Real PortAudio through a null sink: play with PyAudioSink, hear with PyAudioSource.

Needs the server .ci/pulseaudio.sh starts: PulseAudio (CI), or PipeWire's pulse server,
with default sink ``vsink`` and default source ``vsink.monitor``. Without one these tests
skip, unless ``KIOSK_REQUIRE_PULSEAUDIO=1`` (CI), where they fail. Device-loss tests follow
each server's real behaviour (PulseAudio stalls a moved stream, PipeWire feeds it zeros) and
briefly unload and reload the null sink: do not run them against a desktop session's server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource
from kiosk.errors import DeviceError
from tests.audio.helpers import dominant_freq_hz, rms_dbfs, tone
from tests.integration.pulse import (
    NULL_SINK,
    PULSE_SCRIPT,
    kill_our_recording_and_reopen,
    pactl,
)

pytestmark = [pytest.mark.pulseaudio, pytest.mark.usefixtures("pulseaudio_module")]

TIMEOUT_FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))


_pactl = pactl


class Capture:
    """Frames from a PyAudioSource with arrival times; waits are bounded."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.times_s: list[float] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def on_frame(self, frame: bytes) -> None:
        with self._changed:
            self.frames.append(frame)
            self.times_s.append(time.monotonic())
            self._changed.notify_all()

    def on_error(self, exc: BaseException) -> None:
        with self._changed:
            self.errors.append(exc)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout_s * TIMEOUT_FACTOR):
                pytest.fail(
                    f"timed out after {timeout_s * TIMEOUT_FACTOR:.1f} s waiting for {what}"
                )

    def frame_count(self) -> int:
        with self._lock:
            return len(self.frames)

    def samples(self, start: int = 0) -> np.ndarray:
        with self._lock:
            return np.frombuffer(b"".join(self.frames[start:]), dtype=np.int16)


@pytest.fixture
def capture() -> Capture:
    return Capture()


def _loud_part(samples: np.ndarray, rate_hz: int, frame_ms: int = 20) -> np.ndarray:
    frame = rate_hz * frame_ms // 1000
    frames = samples[: samples.size - samples.size % frame].reshape(-1, frame)
    loud = [f for f in frames if rms_dbfs(f) > -30]
    return np.concatenate(loud) if loud else np.zeros(0, dtype=np.int16)


@pytest.mark.parametrize(
    ("playback_rate_hz", "capture_rate_hz"),
    [(0, 0), (48000, 44100)],
    ids=["negotiated-rates", "resampled-48k-out-44k1-in"],
)
def test_tone_played_to_null_sink_is_captured_at_pace_pitch_and_level(
    capture: Capture, playback_rate_hz: int, capture_rate_hz: int
) -> None:
    buffer = PlaybackBuffer(24000)
    sink = PyAudioSink("", buffer, playback_rate_hz=playback_rate_hz, on_error=capture.on_error)
    source = PyAudioSource(
        "",
        rate_hz=16000,
        frame_ms=20,
        on_frame=capture.on_frame,
        on_error=capture.on_error,
        capture_rate_hz=capture_rate_hz,
    )
    with sink, source:
        if playback_rate_hz:
            assert sink.device_rate_hz == playback_rate_hz
        if capture_rate_hz:
            assert source.device_rate_hz == capture_rate_hz
        capture.wait_for(lambda: len(capture.frames) >= 5, 5.0, "the first captured frames")
        start = capture.frame_count()
        buffer.write(tone(1000, 24000, 1.0, amplitude=0.5).tobytes(), "item_tone")
        capture.wait_for(lambda: len(capture.frames) >= start + 90, 6.0, "1.8 s of frames")
        assert 0 < sink.unplayed_ms < 300  # device latency + what the sink holds
        assert buffer.is_idle
        assert buffer.played_ms("item_tone") == 1000

    assert capture.errors == []
    assert {len(f) for f in capture.frames} == {640}
    times = np.array(capture.times_s[start:])
    frames_per_s = (times.size - 1) / (times[-1] - times[0])
    assert frames_per_s == pytest.approx(50, rel=0.1)  # paced in real time, not bursts
    loud = _loud_part(capture.samples(start), 16000)
    assert loud.size / 16000 == pytest.approx(1.0, abs=0.1)
    assert dominant_freq_hz(loud[1600:-1600], 16000) == pytest.approx(1000, abs=3)
    # A 0.5 sine is -9 dBFS RMS. The null sink is unity gain, but the mono->stereo->mono
    # round trip is the server's mixing law: PulseAudio gives -9, PipeWire +3 dB (-6).
    assert -10.5 <= rms_dbfs(loud[1600:-1600]) <= -4.5


def test_flush_mid_answer_silences_the_speaker_at_once(capture: Capture) -> None:
    buffer = PlaybackBuffer(24000)
    with (
        PyAudioSink("", buffer, on_error=capture.on_error) as sink,
        PyAudioSource("", rate_hz=16000, frame_ms=20, on_frame=capture.on_frame) as source,
    ):
        capture.wait_for(lambda: len(capture.frames) >= 5, 5.0, "the first captured frames")
        buffer.write(tone(700, 24000, 5.0, amplitude=0.5).tobytes(), "item_long")
        capture.wait_for(
            lambda: buffer.played_ms("item_long") >= 600, 5.0, "600 ms of the answer played"
        )
        buffer.flush()
        flushed_at = capture.frame_count()
        played_at_flush_ms = buffer.played_ms("item_long")
        capture.wait_for(lambda: len(capture.frames) >= flushed_at + 25, 3.0, "0.5 s more")
        latency_ms = sink.output_latency_ms + source.input_latency_ms

    after = capture.samples(flushed_at)
    frames_after = after.reshape(-1, 320)
    loud_frames = sum(1 for f in frames_after if rms_dbfs(f) > -40)
    # What was in flight (device buffers both ways) may still arrive; nothing after that.
    assert loud_frames * 20 <= latency_ms + 100
    assert all(rms_dbfs(f) < -60 for f in frames_after[-10:])
    assert buffer.played_ms("item_long") == played_at_flush_ms
    assert 600 <= played_at_flush_ms < 1500


def test_idle_speaker_pauses_and_the_next_answer_is_heard_in_full(capture: Capture) -> None:
    buffer = PlaybackBuffer(24000)
    with (
        PyAudioSink("", buffer, idle_pause_s=0.3, on_error=capture.on_error) as sink,
        PyAudioSource("", rate_hz=16000, frame_ms=20, on_frame=capture.on_frame) as source,
    ):
        capture.wait_for(lambda: sink.pauses == 1, 5.0, "the idle speaker to pause")
        time.sleep(2.5)  # longer than the stall timeout: a paused stream is not a dead one
        start = capture.frame_count()
        buffer.write(tone(800, 24000, 1.0, amplitude=0.5).tobytes(), "item_after_pause")
        capture.wait_for(
            lambda: buffer.played_ms("item_after_pause") == 1000, 5.0, "the answer played"
        )
        capture.wait_for(lambda: sink.pauses == 2, 5.0, "the speaker to pause again")
        assert source.is_running

    assert capture.errors == []
    loud = _loud_part(capture.samples(start), 16000)
    assert loud.size / 16000 == pytest.approx(1.0, abs=0.1)  # nothing cut at the restart
    assert dominant_freq_hz(loud[1600:-1600], 16000) == pytest.approx(800, abs=3)


async def test_async_context_manager_opens_and_close_twice_is_harmless(
    capture: Capture,
) -> None:
    source = PyAudioSource("", rate_hz=16000, frame_ms=10, on_frame=capture.on_frame)
    async with source:
        assert source.is_running
        capture.wait_for(lambda: len(capture.frames) >= 3, 5.0, "frames")

    source.close()
    assert not source.is_running
    assert {len(f) for f in capture.frames} == {320}


def test_unknown_device_name_raises_device_error_listing_pulse_devices() -> None:
    source = PyAudioSource("no-such-microphone", rate_hz=16000, frame_ms=20, on_frame=print)

    with pytest.raises(DeviceError, match="no input device 'no-such-microphone'") as info:
        source.start()

    assert "'default'" in str(info.value)


def _null_sink_module() -> str:
    for line in _pactl("list", "short", "modules").splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == "module-null-sink" and f"sink_name={NULL_SINK}" in line:
            return fields[0]
    raise AssertionError(f"no module-null-sink with sink_name={NULL_SINK}")


@pytest.fixture
def restore_null_sink() -> Iterator[None]:
    yield
    subprocess.run(["bash", PULSE_SCRIPT], capture_output=True, timeout=30 * TIMEOUT_FACTOR)


def _server_name() -> str:
    for line in _pactl("info").splitlines():
        if line.startswith("Server Name:"):
            return line.split(":", 1)[1].strip()
    return ""


def test_source_on_idle_monitor_reports_digital_silence_when_asked(capture: Capture) -> None:
    # Nothing plays into vsink, so its monitor delivers exact zeros: what PipeWire feeds a
    # stream whose microphone went away.
    source = PyAudioSource(
        "",
        rate_hz=16000,
        frame_ms=20,
        on_frame=capture.on_frame,
        on_error=capture.on_error,
        silence_timeout_s=0.5,
    )
    with source:
        capture.wait_for(lambda: bool(capture.errors), 5.0, "on_error for digital silence")
        assert not source.is_running

    assert len(capture.errors) == 1
    assert "delivers only digital silence" in str(capture.errors[0])


def test_null_sink_unloaded_under_running_source_calls_on_error_and_reopen_recovers(
    capture: Capture, restore_null_sink: None
) -> None:
    if _server_name() != "pulseaudio":
        # PipeWire re-links the stream elsewhere and it keeps running (on zeros when no
        # source is left: the digital-silence test covers that).
        pytest.skip("PulseAudio behaviour: the moved stream stalls on auto_null's monitor")
    source = PyAudioSource(
        "",
        rate_hz=16000,
        frame_ms=20,
        on_frame=capture.on_frame,
        on_error=capture.on_error,
        stall_timeout_s=1.0,
    )
    with source:
        capture.wait_for(lambda: len(capture.frames) >= 5, 5.0, "the first captured frames")

        _pactl("unload-module", _null_sink_module())
        capture.wait_for(lambda: bool(capture.errors), 5.0, "on_error after the unload")
        subprocess.run(["bash", PULSE_SCRIPT], check=True, capture_output=True, timeout=30)
        source.reopen()
        resumed_at = capture.frame_count()
        capture.wait_for(lambda: len(capture.frames) >= resumed_at + 25, 5.0, "frames again")
        time.sleep(0.5)  # a second on_error would arrive on the watchdog's next look

    assert len(capture.errors) == 1
    assert isinstance(capture.errors[0], DeviceError)
    # Either report is the loss, once: the moved stream stalls on auto_null's monitor, or (since
    # the batched capture hand-over of 6be9a11) PortAudio's poll fails first and the stream stops.
    assert re.search(r"input device (stalled|stopped)", str(capture.errors[0]))


def test_stream_killed_by_the_server_calls_on_error_once_and_reopen_recovers(
    capture: Capture,
) -> None:
    if shutil.which("pacmd") is None or _server_name() != "pulseaudio":
        pytest.skip("needs PulseAudio itself (pacmd kill-source-output)")
    source = PyAudioSource(
        "", rate_hz=16000, frame_ms=20, on_frame=capture.on_frame, on_error=capture.on_error
    )
    with source:
        kill_our_recording_and_reopen(source, capture)

    assert len(capture.errors) == 1
    assert "input device stopped" in str(capture.errors[0])


def _mapped_alsa_plugins() -> set[str]:
    with open("/proc/self/maps") as maps:
        return {os.path.basename(line.split()[-1]) for line in maps if "libasound_module_" in line}


def test_reopen_unloads_the_probed_alsa_plugins_and_both_streams_play_on(capture: Capture) -> None:
    """reopen_streams (start-up and device recovery) frees alsa-lib's configuration after
    opening: the plugins PortAudio's device scan loaded and no stream uses go (a52 takes
    libavcodec with it); the open streams keep theirs, and a paused speaker starts again."""
    from kiosk.audio.pyaudio_io import reopen_streams

    buffer = PlaybackBuffer(24000)
    sink = PyAudioSink("", buffer, on_error=capture.on_error, idle_pause_s=0.2)
    source = PyAudioSource("", rate_hz=16000, frame_ms=20, on_frame=capture.on_frame,
                           on_error=capture.on_error)  # fmt: skip
    try:
        for _ in range(2):  # start-up, then a recovery: the scan runs again, and the release
            reopen_streams(source, sink)
            in_use = _mapped_alsa_plugins()
            assert "libasound_module_pcm_a52.so" not in in_use
            start = capture.frame_count()
            capture.wait_for(lambda s=start: len(capture.frames) >= s + 10, 5.0, "frames")
        deadline = time.monotonic() + 5 * TIMEOUT_FACTOR
        while sink.pauses == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.pauses >= 1  # nothing to play: stopped, now to start again
        start = capture.frame_count()
        buffer.write(tone(1000, 24000, 0.5, amplitude=0.5).tobytes(), "item_tone")
        capture.wait_for(lambda: len(capture.frames) >= start + 60, 6.0, "1.2 s of frames")
        assert buffer.played_ms("item_tone") == 500
        assert _loud_part(capture.samples(start), 16000).size / 16000 == pytest.approx(0.5, abs=0.1)
    finally:
        source.close()
        sink.close()
    assert capture.errors == []

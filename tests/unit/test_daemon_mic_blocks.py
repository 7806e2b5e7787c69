"""The daemon's microphone block: 60 ms device blocks while idle (fewer wake-ups), one 20 ms
frame per block while a turn or its answer is in progress (a barge-in's deciding frame does not
wait for the rest of its block), asked of a stream that can change on the fly (PulseAudio);
a PortAudio stream keeps the block it opened with. The real stream: test_pulse_capture_wait."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kiosk.audio.pyaudio_io import PyAudioSource
from kiosk.daemon_devices import BUSY_MIC_BLOCK_MS, MIC_BLOCK_MS, DaemonDevices
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio


class FakeSource:
    def __init__(self) -> None:
        self.handover_blocks = 1
        self.handover_level_dbfs = -99.0
        self.blocks_ms: list[int] = []
        self.prompt: list[bool] = []

    def follow_block_ms(self, block_ms: int, *, prompt: bool = False) -> None:
        self.blocks_ms.append(block_ms)
        self.prompt.append(prompt)


def _pipeline(busy: bool) -> Any:
    return SimpleNamespace(
        busy=busy, quiet=not busy, endpointer=SimpleNamespace(onset_level_dbfs=-40.0)
    )


def test_busy_pipeline_asks_for_20_ms_blocks_and_idle_for_60() -> None:
    devices, source = DaemonDevices(), FakeSource()
    devices._source = source
    devices._mic_follow(_pipeline(busy=False))
    devices._mic_follow(_pipeline(busy=True))
    assert (source.handover_blocks, source.blocks_ms) == (1, [MIC_BLOCK_MS, BUSY_MIC_BLOCK_MS])
    devices.pipeline = _pipeline(busy=False)  # the turn ended (StateChanged): at once
    devices._mic_now()
    assert source.blocks_ms[-1] == MIC_BLOCK_MS == 60 and BUSY_MIC_BLOCK_MS == 20
    # Busy: each block handed over as soon as it is whole; idle: at the reader's own pace.
    assert source.prompt == [False, True, False]


class ResizableStream:
    """A stream that changes its block on the fly, as PulseStream does."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self.frames_asked = kwargs, []  # type: ignore[var-annotated]

    def set_block_frames(self, frames: int, *, prompt: bool = False) -> None:
        self.frames_asked.append(frames)

    def start_stream(self) -> None: ...

    def is_active(self) -> bool:
        return True

    def close(self) -> None: ...


def _source(host: FakePortAudio) -> PyAudioSource:
    return PyAudioSource(
        "", rate_hz=16000, frame_ms=20, block_ms=60, on_frames=lambda frames: None,
        pyaudio_factory=lambda: host, stall_timeout_s=60.0,
    )  # fmt: skip


def test_source_asks_a_resizable_stream_once_per_change_and_again_after_a_reopen() -> None:
    host = FakePortAudio(devices=[FakeDevice("mic", 1, 0, 48000, (48000,), (1,))])
    streams: list[ResizableStream] = []

    def open_stream(**kwargs: Any) -> ResizableStream:
        streams.append(ResizableStream(**kwargs))
        return streams[-1]

    host.open = open_stream  # type: ignore[method-assign,assignment]
    with _source(host) as source:
        assert streams[0].kwargs["frames_per_buffer"] == 2880  # opened at 60 ms, 48 kHz
        for ms in (20, 20, 20, 60, 60, 20):
            source.follow_block_ms(ms)
        assert streams[0].frames_asked == [960, 2880, 960]
        source.reopen()
        source.follow_block_ms(20)  # the new stream opened at 60 ms: asked again
        assert streams[1].kwargs["frames_per_buffer"] == 2880 and streams[1].frames_asked == [960]


def test_a_portaudio_stream_keeps_its_block() -> None:
    host = FakePortAudio(devices=[FakeDevice("mic", 1, 0, 48000, (48000,), (1,))])
    with _source(host) as source:
        source.follow_block_ms(20)  # no set_block_frames: nothing to ask, nothing breaks
        assert host.streams[0].kwargs["frames_per_buffer"] == 2880 and source.is_running

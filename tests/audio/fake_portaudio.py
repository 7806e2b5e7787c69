"""A PortAudio host double: devices as data, streams whose callback the test drives.

Shaped like ``pyaudio.PyAudio`` (see ``kiosk.audio.devices.PortAudioHost``) and passed in
through ``pyaudio_factory=``; it keeps PortAudio's rules that matter here: unsupported
formats raise ValueError, an unknown device index raises, a default may be missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Callback = Callable[[bytes | None, int, Any, int], tuple[bytes | None, int]]


@dataclass
class FakeDevice:
    name: str
    inputs: int
    outputs: int
    default_rate_hz: int = 44100
    rates_hz: tuple[int, ...] = (44100, 48000)
    channels: tuple[int, ...] = (1, 2)


@dataclass
class FakeStream:
    kwargs: dict[str, Any]
    active: bool = False
    closed: bool = False

    @property
    def callback(self) -> Callback:
        cb: Callback = self.kwargs["stream_callback"]
        return cb

    starts: int = 0

    def start_stream(self) -> None:
        self.active = True
        self.starts += 1

    def abort_stream(self) -> None:
        self.active = False

    def is_active(self) -> bool:
        return self.active and not self.closed

    def close(self) -> None:
        self.closed = True
        self.active = False

    def get_input_latency(self) -> float:
        return 0.02

    def get_output_latency(self) -> float:
        return 0.03


@dataclass
class FakePortAudio:
    devices: list[FakeDevice]
    default_input: int | None = 0
    default_output: int | None = 0
    refuse_open: bool = False
    streams: list[FakeStream] = field(default_factory=list)
    terminated: int = 0
    events: list[str] = field(default_factory=list)  # "open input", "terminate", ...

    def get_device_count(self) -> int:
        return len(self.devices)

    def get_device_info_by_index(self, device_index: int) -> Mapping[str, Any]:
        d = self.devices[device_index]
        return {
            "index": device_index,
            "name": d.name,
            "maxInputChannels": d.inputs,
            "maxOutputChannels": d.outputs,
            "defaultSampleRate": float(d.default_rate_hz),
        }

    def get_default_input_device_info(self) -> Mapping[str, Any]:
        if self.default_input is None:
            raise OSError("No Default Input Device Available")
        return self.get_device_info_by_index(self.default_input)

    def get_default_output_device_info(self) -> Mapping[str, Any]:
        if self.default_output is None:
            raise OSError("No Default Output Device Available")
        return self.get_device_info_by_index(self.default_output)

    def is_format_supported(self, rate: float, **kwargs: Any) -> bool:
        kind = "input" if "input_device" in kwargs else "output"
        device = self.devices[kwargs[f"{kind}_device"]]
        if int(rate) not in device.rates_hz or kwargs[f"{kind}_channels"] not in device.channels:
            raise ValueError("Invalid sample rate")
        return True

    def open(self, **kwargs: Any) -> FakeStream:
        if self.refuse_open:
            raise OSError("Device unavailable", -9985)
        stream = FakeStream(kwargs)
        self.streams.append(stream)
        self.events.append("open input" if kwargs.get("input") else "open output")
        return stream

    def terminate(self) -> None:
        self.terminated += 1
        self.events.append("terminate")

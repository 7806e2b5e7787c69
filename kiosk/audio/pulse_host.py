"""The PulseAudio host: the server's devices and streams as ``pyaudio.PyAudio`` shows them.

:class:`PulseHost` is a :class:`~kiosk.audio.devices.PortAudioHost` (the slice of
``pyaudio.PyAudio`` kiosk uses) on a :class:`~kiosk.audio.libpulse.PulseConnection`, and
:meth:`PulseHost.open` returns a :class:`~kiosk.audio.pulse_stream.PulseStream`.
:class:`~kiosk.audio.pyaudio_io.PyAudioSource` and :class:`~kiosk.audio.pyaudio_io.PyAudioSink`
take ``pyaudio_factory=open_pulse``. :func:`host_factory` picks the backend from
``audio.backend``.

Devices: index 0 is ``default`` (the server's default source/sink, or ``PULSE_SOURCE`` /
``PULSE_SINK``), then the server's sources, then its sinks, by their PulseAudio names
(``vsink.monitor``, ``echo-cancel-source``); ``pactl list short sources`` shows them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.audio.devices import PortAudioHost, open_pyaudio
from kiosk.audio.libpulse import PulseConnection, PulseDevice
from kiosk.audio.pulse_stream import PulseStream
from kiosk.errors import DeviceError

log = logging.getLogger(__name__)

MAX_RATE_HZ = 192000
_DEFAULT = PulseDevice("default", "the server's default", "both", 2, 48000)


class PulseHost:
    """A connection to the sound server that looks like ``pyaudio.PyAudio`` to kiosk."""

    def __init__(self, connection: PulseConnection) -> None:
        self._connection = connection
        self._devices = [_DEFAULT, *connection.devices()]

    def get_device_count(self) -> int:
        return len(self._devices)

    def get_device_info_by_index(self, device_index: int) -> Mapping[str, Any]:
        d = self._devices[device_index]
        return {
            "index": device_index,
            "name": d.name,
            "maxInputChannels": d.channels if d.kind in ("input", "both") else 0,
            "maxOutputChannels": d.channels if d.kind in ("output", "both") else 0,
            "defaultSampleRate": float(d.rate_hz),
        }

    def get_default_input_device_info(self) -> Mapping[str, Any]:
        return self.get_device_info_by_index(0)

    def get_default_output_device_info(self) -> Mapping[str, Any]:
        return self.get_device_info_by_index(0)

    def is_format_supported(self, rate: float, **kwargs: Any) -> bool:
        """The server converts any rate and channel count; only the limits are checked."""
        kind = "input" if "input_device" in kwargs else "output"
        index = int(kwargs[f"{kind}_device"])
        channels = int(kwargs.get(f"{kind}_channels", 1))
        if not 0 <= index < len(self._devices):
            raise ValueError(f"no device {index}")
        return 0 < rate <= MAX_RATE_HZ and 1 <= channels <= max(2, self._devices[index].channels)

    def open(self, **kwargs: Any) -> PulseStream:
        """A connected, corked stream (``start=False`` as kiosk opens them): ``start_stream``
        uncorks it. Raises OSError when the server refuses, as pyaudio would.

        A recording runs on the host's polled connection (its reader pumps it); playback is
        fed from libpulse's write requests as the server asks, so it gets a threaded one."""
        kind = "input" if kwargs.get("input") else "output"
        device = self._devices[int(kwargs[f"{kind}_device_index"])]
        if kind == "output" and not self._connection.threaded:
            try:
                threaded = PulseConnection()
            except DeviceError as exc:
                raise OSError(str(exc)) from exc
            self._connection.close()
            self._connection = threaded
        return PulseStream(
            self._connection,
            kind,
            None if device is _DEFAULT else device.name,
            rate_hz=int(kwargs["rate"]),
            channels=int(kwargs["channels"]),
            frames_per_buffer=int(kwargs["frames_per_buffer"]),
            callback=kwargs["stream_callback"],
        )

    def terminate(self) -> None:
        self._connection.close()



def open_pulse() -> PortAudioHost:
    """A :class:`PulseHost` on a new connection to the sound server.

    Raises:
        DeviceError: libpulse missing, or no server answers.
    """
    return PulseHost(PulseConnection(threaded=False))


_auto_choice = ""  # what open_auto took last time (logged when it changes)


def open_auto() -> PortAudioHost:
    """PulseAudio directly when a server answers, else PortAudio (ALSA, JACK...)."""
    global _auto_choice
    try:
        host: PortAudioHost = open_pulse()
        choice = "audio through PulseAudio directly (libpulse)"
    except DeviceError as exc:
        host = open_pyaudio()
        choice = f"audio through PortAudio ({exc})"
    if choice != _auto_choice:
        _auto_choice = choice
        log.info("%s", choice)
    return host


def host_factory(backend: str, *device_specs: str) -> Callable[[], PortAudioHost]:
    """What opens the audio host for ``audio.backend``: ``"pulse"``, ``"portaudio"``, or
    ``"auto"`` = PulseAudio directly when a server answers at each (re)open, PortAudio
    otherwise; a configured device name or index is PortAudio's, so with one ``"auto"``
    stays on PortAudio (set ``"pulse"`` to use PulseAudio's names)."""
    if backend == "pulse":
        return open_pulse
    if backend == "auto" and not any(spec.strip() for spec in device_specs):
        return open_auto
    return open_pyaudio

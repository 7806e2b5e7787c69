"""Finding PortAudio devices: listing, picking one from a config string, agreeing on a rate.

Owns the translation from ``audio.input_device`` / ``audio.output_device`` (``""`` = the
system default, ``"3"`` = index 3, anything else = a case-insensitive name substring) to a
:class:`DeviceInfo`, and the sample-rate negotiation. Opening streams is
:mod:`kiosk.audio.pyaudio_io`'s job.

pyaudio is imported lazily (:func:`open_pyaudio`) so kiosk imports and unit-tests without
it. Every function takes an optional ``pa`` (anything shaped like ``pyaudio.PyAudio``, see
:class:`PortAudioHost`); without one it opens and terminates its own.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kiosk.errors import DeviceError

log = logging.getLogger(__name__)

DeviceKind = Literal["input", "output"]

# Tried in order when the config leaves the rate at 0. 16 kHz first: webrtcvad's rate, no
# resampling on the way in; 48 kHz next: what most USB mics and HATs run natively.
CAPTURE_RATES_HZ: tuple[int, ...] = (16000, 48000, 32000, 8000)
# 24 kHz first: the Realtime API's output rate, no resampling on the way out.
PLAYBACK_RATES_HZ: tuple[int, ...] = (24000, 48000, 16000)

PA_INT16 = 8  # pyaudio.paInt16; a literal so this module needs no pyaudio at import


class PortAudioHost(Protocol):
    """The slice of ``pyaudio.PyAudio`` kiosk uses (a test double can stand in)."""

    def get_device_count(self) -> int: ...
    def get_device_info_by_index(self, device_index: int) -> Mapping[str, Any]: ...
    def get_default_input_device_info(self) -> Mapping[str, Any]: ...
    def get_default_output_device_info(self) -> Mapping[str, Any]: ...
    def is_format_supported(self, rate: float, **kwargs: Any) -> bool: ...
    def open(self, **kwargs: Any) -> Any: ...
    def terminate(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_rate_hz: int

    def channels(self, kind: DeviceKind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def describe(self) -> str:
        return (
            f"#{self.index} {self.name!r} (in {self.max_input_channels}, "
            f"out {self.max_output_channels}, {self.default_rate_hz} Hz)"
        )


def open_pyaudio() -> PortAudioHost:
    """A new ``pyaudio.PyAudio`` with ALSA/JACK chatter on stderr silenced.

    Each instance snapshots the device list when created: to see a replugged device,
    terminate every instance and open a new one.

    Raises:
        DeviceError: pyaudio is not installed, or PortAudio fails to initialise.
    """
    try:
        import pyaudio
    except ImportError as exc:
        raise DeviceError(
            "pyaudio is not installed: pip install 'kiosk[audio]' (needs apt portaudio19-dev)"
        ) from exc
    _silence_native_audio_logs()
    try:
        pa: PortAudioHost = pyaudio.PyAudio()
    except OSError as exc:
        raise DeviceError(f"PortAudio failed to initialise: {exc}") from exc
    return pa


@contextmanager
def _host(pa: PortAudioHost | None) -> Iterator[PortAudioHost]:
    if pa is not None:
        yield pa
        return
    own = open_pyaudio()
    try:
        yield own
    finally:
        own.terminate()


def _device_from(info: Mapping[str, Any]) -> DeviceInfo:
    return DeviceInfo(
        index=int(info["index"]),
        name=str(info["name"]),
        max_input_channels=int(info["maxInputChannels"]),
        max_output_channels=int(info["maxOutputChannels"]),
        default_rate_hz=int(info["defaultSampleRate"]),
    )


def list_devices(pa: PortAudioHost | None = None) -> list[DeviceInfo]:
    """Every device PortAudio reports, in index order (empty without a sound server/card)."""
    with _host(pa) as host:
        return [
            _device_from(host.get_device_info_by_index(i)) for i in range(host.get_device_count())
        ]


def find_device(spec: str, kind: DeviceKind, pa: PortAudioHost | None = None) -> DeviceInfo:
    """Pick the device a config string names.

    Args:
        spec: ``""`` = the default device of that kind; all digits = that index; anything
            else = the first device whose name contains it (case-insensitive), an exact
            name winning over a substring.
        kind: ``"input"`` or ``"output"``; the device must have channels of that kind.

    Raises:
        DeviceError: nothing matches; the message names the spec and lists the devices.
    """
    spec = spec.strip()
    with _host(pa) as host:
        devices = list_devices(host)
        candidates = [d for d in devices if d.channels(kind) > 0]
        found: DeviceInfo | None = None
        if not spec:
            try:
                default = (
                    host.get_default_input_device_info()
                    if kind == "input"
                    else host.get_default_output_device_info()
                )
            except (OSError, ValueError):
                default = None
            if default is not None:
                found = _device_from(default)
        elif spec.isdigit():
            found = next((d for d in candidates if d.index == int(spec)), None)
        else:
            wanted = spec.casefold()
            exact = [d for d in candidates if d.name.casefold() == wanted]
            partial = [d for d in candidates if wanted in d.name.casefold()]
            matches = exact or partial
            found = matches[0] if matches else None
    if found is None or found.channels(kind) <= 0:
        what = f"{kind} device {spec!r}" if spec else f"default {kind} device"
        raise DeviceError(f"no {what}; {_listing(candidates, kind)}")
    log.debug("= %s device %r -> %s", kind, spec, found.describe())
    return found


def _listing(devices: Sequence[DeviceInfo], kind: DeviceKind) -> str:
    if not devices:
        return f"no {kind} devices at all (no sound card, or no sound server running?)"
    return f"{kind} devices: " + ", ".join(f"#{d.index} {d.name!r}" for d in devices)


def is_supported(
    device: DeviceInfo, kind: DeviceKind, rate_hz: int, channels: int, pa: PortAudioHost
) -> bool:
    """Whether PortAudio accepts int16 at ``rate_hz`` with ``channels`` on ``device``."""
    if kind == "input":
        args = {
            "input_device": device.index,
            "input_channels": channels,
            "input_format": PA_INT16,
        }
    else:
        args = {
            "output_device": device.index,
            "output_channels": channels,
            "output_format": PA_INT16,
        }
    try:
        return bool(pa.is_format_supported(rate_hz, **args))
    except (ValueError, OSError):  # pyaudio raises ValueError for "not supported"
        return False


def negotiate_channels(
    device: DeviceInfo, kind: DeviceKind, rate_hz: int, pa: PortAudioHost
) -> int:
    """1 if the device takes mono at ``rate_hz``, else 2 (kiosk mixes/duplicates itself)."""
    if is_supported(device, kind, rate_hz, 1, pa):
        return 1
    return min(2, max(1, device.channels(kind)))


def negotiate_rate(
    device: DeviceInfo,
    kind: DeviceKind,
    preferred: Sequence[int],
    pa: PortAudioHost | None = None,
) -> int:
    """The first of ``preferred`` the device accepts (int16), else its default rate."""
    with _host(pa) as host:
        for rate_hz in preferred:
            for channels in (1, 2):
                if channels <= max(1, device.channels(kind)) and is_supported(
                    device, kind, rate_hz, channels, host
                ):
                    return rate_hz
    log.info(
        "%s device %s takes none of %s Hz; using its default %d Hz",
        kind,
        device.describe(),
        list(preferred),
        device.default_rate_hz,
    )
    return device.default_rate_hz


def release_alsa_config() -> bool:
    """Free alsa-lib's configuration and unload the ALSA plugins PortAudio only probed.

    PortAudio lists devices by opening every PCM the ALSA configuration defines, and each
    loads its plugin: with Debian's libasound2-plugins that is a52 (libavcodec and some 80
    codec libraries behind it), jack, oss, speex, upmix, vdownmix, usb_stream. alsa-lib
    keeps every plugin it loaded, and the configuration tree, for the process's life: ~10 MB
    of RSS in a kiosk that records and plays through one of them (measured: a pyaudio
    process with two PulseAudio streams, 47.0 -> 36.4 MB). ``snd_config_update_free_global``
    frees the tree and unloads the plugins no open PCM uses; the open streams keep theirs
    and run on, and the next PortAudio start reads the configuration again. Call it once the
    streams are open. False when libasound is not loaded (nothing to free).
    """
    try:
        asound = ctypes.CDLL("libasound.so.2", mode=os.RTLD_NOLOAD)
        return bool(asound.snd_config_update_free_global() == 0)
    except (OSError, AttributeError):
        return False


_ALSA_ERROR_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_JACK_ERROR_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
# The C libraries keep these pointers: they must live as long as the process.
_native_handlers: list[object] = []


def _silence_native_audio_logs() -> None:
    """Stop libasound and libjack printing probe failures straight to stderr.

    PortAudio probes every ALSA PCM and JACK while initialising; on a kiosk without JACK or
    a sound card that is ~150 lines of noise per PyAudio() in the journal. kiosk reports
    what matters itself, as one DeviceError line.
    """
    if _native_handlers:
        return

    def ignore_alsa(file: bytes, line: int, func: bytes, err: int, fmt: bytes) -> None:
        return None

    def ignore_jack(message: bytes) -> None:
        return None

    alsa_handler = _ALSA_ERROR_HANDLER(ignore_alsa)
    jack_handler = _JACK_ERROR_HANDLER(ignore_jack)
    _native_handlers.extend([alsa_handler, jack_handler])
    try:
        ctypes.CDLL("libasound.so.2").snd_lib_error_set_handler(alsa_handler)
    except (OSError, AttributeError):
        log.debug("libasound not found; ALSA messages stay on stderr")
    try:
        jack = ctypes.CDLL("libjack.so.0")
        jack.jack_set_error_function(jack_handler)
        jack.jack_set_info_function(jack_handler)
    except (OSError, AttributeError):
        pass  # no JACK library: nothing to silence

"""audio.backend: which host opens the devices, the one-line error for a bad value, and
how the PulseAudio host lists devices and formats (issue 11, footprint)."""

from __future__ import annotations

import pytest

from kiosk.audio.devices import open_pyaudio
from kiosk.audio.pulse_host import PulseHost, host_factory, open_auto, open_pulse
from tests.unit.config_loading import config_error, load


def test_backend_defaults_to_auto_and_bad_value_names_the_key_and_choices() -> None:
    assert load().audio.backend == "auto"
    assert load('[audio]\nbackend = "pulse"\n').audio.backend == "pulse"
    err = config_error('[audio]\nbackend = "alsa"\n')
    assert err.key == "audio.backend"
    assert "\n" not in str(err)
    assert "pulse" in err.problem and "portaudio" in err.problem


@pytest.mark.parametrize(
    ("backend", "specs", "expected"),
    [
        ("auto", ("", ""), open_auto),
        ("auto", ("  ", ""), open_auto),
        ("auto", ("USB", ""), open_pyaudio),  # a PortAudio device name: stay on PortAudio
        ("auto", ("", "3"), open_pyaudio),
        ("pulse", ("echo-cancel-source", "echo-cancel-sink"), open_pulse),
        ("portaudio", ("", ""), open_pyaudio),
    ],
)
def test_host_factory_follows_backend_and_device_specs(
    backend: str, specs: tuple[str, str], expected: object
) -> None:
    assert host_factory(backend, *specs) is expected


class _FakeConnection:
    def devices(self) -> list[object]:
        from kiosk.audio.libpulse import PulseDevice

        return [
            PulseDevice("usb_mic", "USB mic", "input", 1, 48000),
            PulseDevice("hdmi", "HDMI", "output", 8, 48000),
        ]


def test_pulse_host_lists_default_then_sources_then_sinks_and_takes_any_rate() -> None:
    from kiosk.audio.devices import find_device, list_devices

    host = PulseHost(_FakeConnection())  # type: ignore[arg-type]
    names = [
        (d.index, d.name, d.max_input_channels, d.max_output_channels) for d in list_devices(host)
    ]
    assert names == [(0, "default", 2, 2), (1, "usb_mic", 1, 0), (2, "hdmi", 0, 8)]
    assert find_device("", "input", host).name == "default"
    assert find_device("usb", "input", host).index == 1
    assert find_device("hdmi", "output", host).index == 2
    assert host.is_format_supported(16000, input_device=1, input_channels=1, input_format=8)
    assert not host.is_format_supported(16000, input_device=1, input_channels=3, input_format=8)
    assert not host.is_format_supported(500000, output_device=2, output_channels=2)

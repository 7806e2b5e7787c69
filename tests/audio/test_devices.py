import pytest

from kiosk.audio.devices import DeviceInfo, find_device, list_devices, negotiate_rate
from kiosk.errors import DeviceError
from tests.audio.fake_portaudio import FakeDevice, FakePortAudio


def _host() -> FakePortAudio:
    return FakePortAudio(
        devices=[
            FakeDevice("HDMI output", inputs=0, outputs=2),
            FakeDevice("USB PnP Sound Device: Audio", inputs=1, outputs=2, rates_hz=(48000,)),
            FakeDevice("ReSpeaker 4 Mic Array", inputs=6, outputs=0, rates_hz=(16000,)),
            FakeDevice("usb", inputs=2, outputs=0, rates_hz=(44100,), channels=(2,)),
        ],
        default_input=1,
        default_output=0,
    )


def test_list_devices_reports_every_device_with_channels_and_rate() -> None:
    devices = list_devices(_host())

    assert devices[2] == DeviceInfo(2, "ReSpeaker 4 Mic Array", 6, 0, 44100)
    assert [d.index for d in devices] == [0, 1, 2, 3]


def test_empty_spec_picks_the_default_device_of_that_kind() -> None:
    host = _host()

    assert find_device("", "input", host).index == 1
    assert find_device("", "output", host).index == 0


def test_digit_spec_picks_that_index() -> None:
    assert find_device("2", "input", _host()).name == "ReSpeaker 4 Mic Array"


def test_name_substring_matches_case_insensitively() -> None:
    assert find_device("respeaker", "input", _host()).index == 2


def test_exact_name_wins_over_an_earlier_substring_match() -> None:
    assert find_device("USB", "input", _host()).index == 3


def test_device_without_channels_of_that_kind_is_not_found() -> None:
    with pytest.raises(DeviceError, match=r"no input device '0'"):
        find_device("0", "input", _host())


def test_unknown_spec_raises_device_error_naming_it_and_listing_devices() -> None:
    with pytest.raises(DeviceError) as info:
        find_device("Jabra", "input", _host())

    message = str(info.value)
    assert "no input device 'Jabra'" in message
    assert "#2 'ReSpeaker 4 Mic Array'" in message
    assert "HDMI" not in message  # output-only devices are not offered for input
    assert "\n" not in message


def test_no_default_and_no_devices_says_no_sound_server() -> None:
    host = FakePortAudio(devices=[], default_input=None)

    with pytest.raises(DeviceError, match="no default input device; no input devices at all"):
        find_device("", "input", host)


def test_negotiate_rate_takes_the_first_preferred_rate_the_device_accepts() -> None:
    host = _host()
    usb = find_device("1", "input", host)

    assert negotiate_rate(usb, "input", [16000, 48000, 32000], host) == 48000


def test_negotiate_rate_accepts_a_stereo_only_device() -> None:
    host = _host()
    stereo_only = find_device("3", "input", host)

    assert negotiate_rate(stereo_only, "input", [16000, 44100], host) == 44100


def test_negotiate_rate_falls_back_to_the_device_default() -> None:
    host = _host()
    respeaker = find_device("2", "input", host)

    assert negotiate_rate(respeaker, "input", [48000, 8000], host) == 44100

"""Validation of the [gpio] and [wake] settings: one line naming the key."""

from __future__ import annotations

import pytest

from kiosk.audio.wakeword import BUNDLED_MODELS
from kiosk.config import WakeSettings, load_config
from kiosk.errors import ConfigError


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ('[gpio]\npin_factory = "banana"', "gpio.pin_factory", "must be one of"),
        ("[gpio]\nled_pin = 40", "gpio.led_pin", "BCM GPIO number 2..27, got 40"),
        ("[gpio]\nbutton_pin = 1", "gpio.button_pin", "BCM GPIO number"),
        ("[gpio]\nbutton_pin = 12", "gpio", "pin(s) [12] used twice"),
        ('[gpio]\nled = "rgb"\nstate_pins = {muted = 5}', "gpio", "pin(s) [5] used twice"),
        ("[gpio]\nstate_pins = {sleeping = 20}", "gpio.state_pins.sleeping", "unknown state"),
        ("[gpio]\nhold_s = 4.0", "gpio.hold_s", "need 0 < hold_s < long_press_s"),
        ("[gpio]\ndebounce_ms = 600", "gpio.debounce_ms", "must be 0..500"),
        ('[wake]\nwakeword_model = "hey_kiosk"', "wake.wakeword_model", "microWakeWord .json"),
        ("[wake]\nwakeword_threshold = 1.0", "wake.wakeword_threshold", "between 0 and 1"),
        ("[wake]\nrefractory_s = -1.0", "wake.refractory_s", "0..60"),
    ],
)
def test_bad_gpio_and_wake_settings_name_the_key(toml: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(toml, require_key=False)
    assert info.value.key == key
    assert problem in info.value.problem
    assert "\n" not in str(info.value)


def test_good_interaction_settings_load() -> None:
    cfg = load_config(
        '[gpio]\nled = "rgb"\nbutton_pin = 17\nmute_switch_pin = 27\nstate_pins = {error = 22}\n'
        'pin_factory = "lgpio"\n[wake]\nmode = "wakeword"\nwakeword_model = "okay_nabu"\n',
        require_key=False,
    )
    assert cfg.gpio.state_pins == {"error": 22}
    assert cfg.wake.mode == "wakeword"


def test_unused_led_pin_may_be_zero() -> None:
    cfg = load_config('[gpio]\nled = "none"\nled_pin = 0\nbutton_pin = 17', require_key=False)
    assert cfg.gpio.led_pin == 0


@pytest.mark.parametrize("model", BUNDLED_MODELS)
def test_every_bundled_wakeword_model_is_accepted_by_config(model: str) -> None:
    assert WakeSettings(wakeword_model=model).wakeword_model == model


def test_custom_wakeword_model_json_path_is_accepted() -> None:
    assert WakeSettings(wakeword_model="/etc/kiosk/hey_kiosk.json").wakeword_model.endswith(".json")

"""Pin factory selection: mock, explicit names, and the no-GPIO path of a laptop or CI."""

from __future__ import annotations

import dataclasses

from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import GpioSettings
from kiosk.hardware.factory import gpio_in_use, open_pin_factory


def test_mock_factory_gives_pwm_capable_mock_pins() -> None:
    factory, description = open_pin_factory(GpioSettings(pin_factory="mock"))
    assert isinstance(factory, MockFactory)
    assert factory.pin_class is MockPWMPin
    assert description.startswith("mock")
    factory.close()


def test_disabled_gpio_gives_none_and_says_so() -> None:
    factory, reason = open_pin_factory(GpioSettings(enabled=False, pin_factory="mock"))
    assert factory is None
    assert "gpio.enabled = false" in reason


def test_nothing_configured_gives_none_and_says_so() -> None:
    settings = GpioSettings(led="none", button_pin=0, pin_factory="mock")
    assert not gpio_in_use(settings)
    factory, reason = open_pin_factory(settings)
    assert factory is None
    assert reason == "no LED, button or switch configured"


def test_named_factory_that_cannot_load_gives_none_with_reason() -> None:
    # pigpio needs its Python module and the pigpiod daemon; neither exists in CI.
    factory, reason = open_pin_factory(GpioSettings(pin_factory="pigpio"))
    if factory is not None:  # pragma: no cover - a machine with pigpiod running
        factory.close()
        return
    assert reason.startswith("no GPIO: pigpio: ")
    assert "\n" not in reason


def test_default_factory_on_a_machine_without_gpio_gives_one_line_reason() -> None:
    # CI and laptops have no GPIO chip; on a real Pi this test is skipped by its own result.
    factory, reason = open_pin_factory(GpioSettings())
    if factory is not None:  # pragma: no cover - running on a board with GPIO
        factory.close()
        return
    assert reason.startswith("no GPIO: lgpio: ")
    assert "rpigpio: " in reason and "native: " in reason
    assert "\n" not in reason


def test_button_only_config_counts_as_in_use() -> None:
    settings = dataclasses.replace(GpioSettings(), led="none", button_pin=17)
    assert gpio_in_use(settings)

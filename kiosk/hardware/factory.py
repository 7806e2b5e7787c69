"""Choose the gpiozero pin factory, or say in one line why there is no GPIO.

On a laptop or in CI there is no GPIO: the daemon must still run, log once that LEDs
and the button are disabled, and ``kiosk check`` must say why. So this never raises for
a missing board; it returns ``(None, reason)`` and the caller uses ``NoLeds`` and no
button. The factory is returned, never installed as ``Device.pin_factory``.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points
from typing import Any

from kiosk.config import GpioSettings

# What gpiozero itself tries, minus pigpio (it needs the pigpiod daemon) in the order
# that works on current Raspberry Pi OS: lgpio first (Pi 5 has no /dev/gpiomem RPi.GPIO).
DEFAULT_ORDER = ("lgpio", "rpigpio", "native")
KNOWN_FACTORIES = ("", "mock", "lgpio", "rpigpio", "pigpio", "native")


def gpio_in_use(settings: GpioSettings) -> bool:
    """Whether the config asks for any pin at all."""
    return settings.enabled and (
        settings.led != "none"
        or settings.button_pin != 0
        or settings.mute_switch_pin != 0
        or bool(settings.state_pins)
    )


def open_pin_factory(settings: GpioSettings) -> tuple[Any | None, str]:
    """Open the configured pin factory.

    Returns:
        ``(factory, description)`` when GPIO is usable, e.g. ``(<LGPIOFactory>, "lgpio")``;
        ``(None, reason)`` otherwise, e.g. ``"no GPIO: lgpio: No module named 'lgpio'; ..."``.
        The caller owns the factory and calls ``factory.close()`` at shutdown.
    """
    if not settings.enabled:
        return None, "GPIO disabled (gpio.enabled = false)"
    if not gpio_in_use(settings):
        return None, "no LED, button or switch configured"
    name = settings.pin_factory.strip().lower()
    if name == "mock":
        from kiosk.hardware.mock_pins import mock_factory  # history bounded: see there

        return mock_factory(), "mock (simulated pins)"
    names = (name,) if name else DEFAULT_ORDER
    problems: list[str] = []
    for candidate in names:
        factory, problem = _try_factory(candidate)
        if factory is not None:
            return factory, candidate
        problems.append(f"{candidate}: {problem}")
    return None, "no GPIO: " + "; ".join(problems)


def _try_factory(name: str) -> tuple[Any | None, str]:
    with warnings.catch_warnings():
        # gpiozero warns on every fallback; we report the reasons once ourselves.
        warnings.simplefilter("ignore")
        group = entry_points(group="gpiozero_pin_factories")
        matches = [ep for ep in group if ep.name == name]
        if not matches:
            return None, "unknown pin factory (known: lgpio, rpigpio, pigpio, native, mock)"
        try:
            return matches[0].load()(), ""
        except Exception as exc:  # ImportError, RuntimeError, OSError, gpiozero's own errors
            return None, _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

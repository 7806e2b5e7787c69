"""Choose the gpiozero pin factory, or say in one line why there is no GPIO.

On a laptop or in CI there is no GPIO: the daemon must still run, log once that LEDs
and the button are disabled, and ``kiosk check`` must say why. So this never raises for
a missing board; it returns ``(None, reason)`` and the caller uses ``NoLeds`` and no
button. The factory is returned, never installed as ``Device.pin_factory``.

gpiozero is imported through :func:`import_gpiozero`, and never with importlib.metadata: see
there (~0.9 MB resident for the daemon's whole life, for an entry-point table it never reads).
"""

from __future__ import annotations

import types
import warnings
from typing import Any

from kiosk.config import GpioSettings
from kiosk.service.memory import import_without_metadata

# What gpiozero itself tries, minus pigpio (it needs the pigpiod daemon) in the order
# that works on current Raspberry Pi OS: lgpio first (Pi 5 has no /dev/gpiomem RPi.GPIO).
DEFAULT_ORDER = ("lgpio", "rpigpio", "native")
KNOWN_FACTORIES = ("", "mock", "lgpio", "rpigpio", "pigpio", "native")
# gpiozero's own ``gpiozero_pin_factories`` entry points (its entry_points.txt), by module
# and class: naming them here spares the daemon importlib.metadata (tests/hardware checks
# the table against the installed gpiozero's).
FACTORY_CLASSES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}


def import_gpiozero(module: str = "gpiozero") -> types.ModuleType:
    """Import a gpiozero module without importing importlib.metadata.

    gpiozero (``devices``, ``pins.mock``) binds ``entry_points`` from importlib_metadata or
    importlib.metadata at import time, and calls it only to look up a pin factory or mock pin
    class given by name. kiosk always passes the factory and the pin class themselves, but the
    import alone keeps importlib.metadata and what it pulls in (email, zipfile...) in memory
    for the daemon's life: ~0.9 MB resident of an idle kiosk on its LEDs (ad hoc, lean3).
    So while gpiozero imports, ``importlib_metadata`` is a stand-in whose ``entry_points``
    imports the real one on its first call (gpiozero keeps working the same if anything ever
    does call it), and is gone again afterwards."""
    return import_without_metadata(
        module, "importlib_metadata", {"entry_points": _entry_points_on_first_use}
    )


def _entry_points_on_first_use(**selection: Any) -> Any:
    from importlib.metadata import entry_points

    return entry_points(**selection)


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
    if name not in FACTORY_CLASSES:
        return None, "unknown pin factory (known: lgpio, rpigpio, pigpio, native, mock)"
    module, class_name = FACTORY_CLASSES[name]
    with warnings.catch_warnings():
        # gpiozero warns on every fallback; we report the reasons once ourselves.
        warnings.simplefilter("ignore")
        try:
            return getattr(import_gpiozero(module), class_name)(), ""
        except Exception as exc:  # ImportError, RuntimeError, OSError, gpiozero's own errors
            return None, _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

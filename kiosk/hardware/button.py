"""The push button and the optional mute switch on GPIO (gpiozero).

Owns the gpiozero ``Button`` devices only. Their callbacks run on gpiozero's thread, so
they do exactly two things: read ``time.monotonic()`` and call ``on_edge(level, now)``.
The app passes an ``on_edge`` that hops onto the event loop with
``loop.call_soon_threadsafe`` and feeds :class:`kiosk.core.button.ButtonGestures`;
debouncing, hold and long press are classified there, not with gpiozero hold threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kiosk.config import GpioSettings
from kiosk.errors import DeviceError

OnEdge = Callable[[bool, float], None]


class GpioButton:
    """A momentary push button: ``on_edge(True, t)`` when pressed, ``(False, t)`` on release."""

    def __init__(
        self,
        settings: GpioSettings,
        pin_factory: Any,
        on_edge: OnEdge,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            settings: uses ``button_pin`` and ``button_active_low`` (to ground with pull-up).
            pin_factory: a gpiozero pin factory.
            on_edge: called from gpiozero's thread; must only hand off (call_soon_threadsafe).
            clock: monotonic seconds, the same clock the app's event loop uses.

        Raises:
            DeviceError: the pin is invalid or busy (one line naming ``gpio.button_pin``).
        """
        self._device = _open_input(
            "gpio.button_pin", settings.button_pin, settings.button_active_low, pin_factory
        )
        self._device.when_pressed = lambda: on_edge(True, clock())
        self._device.when_released = lambda: on_edge(False, clock())

    @property
    def is_pressed(self) -> bool:
        return bool(self._device.is_pressed)

    def close(self) -> None:
        """Release the pin. Idempotent."""
        self._device.close()  # drops the callbacks too


class GpioMuteSwitch:
    """A latching switch to ground: closed = muted. ``on_edge(muted, t)`` on each change."""

    def __init__(
        self,
        settings: GpioSettings,
        pin_factory: Any,
        on_edge: OnEdge,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._device = _open_input(
            "gpio.mute_switch_pin", settings.mute_switch_pin, True, pin_factory
        )
        self._device.when_pressed = lambda: on_edge(True, clock())
        self._device.when_released = lambda: on_edge(False, clock())

    @property
    def muted(self) -> bool:
        """The switch position now (read once at start-up: it may already be closed)."""
        return bool(self._device.is_pressed)

    def close(self) -> None:
        self._device.close()  # drops the callbacks too


def _open_input(key: str, pin: int, active_low: bool, pin_factory: Any) -> Any:
    from gpiozero import Button

    try:
        # bounce_time=None: debouncing lives in the core, where it is tested with a float clock.
        return Button(pin, pull_up=active_low, bounce_time=None, pin_factory=pin_factory)
    except Exception as exc:  # gpiozero raises many types (PinInvalidPin, GPIOPinInUse, ...)
        raise DeviceError(f"{key}: {type(exc).__name__}: {exc}") from exc

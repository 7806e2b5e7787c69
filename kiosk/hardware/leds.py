"""Status LEDs on GPIO (gpiozero): follow ``StateChanged`` and draw the state's pattern.

Owns the gpiozero devices (a PWM LED, or an RGB LED, plus optional plain LEDs per state)
and nothing else: the patterns are pure functions in :mod:`kiosk.hardware.led_patterns`,
and timing comes from the caller. The app subscribes :meth:`GpioLeds.on_event` to the
event stream and calls :meth:`GpioLeds.render` from a ~30 Hz asyncio ticker, so nothing
here blocks, sleeps or starts a thread (gpiozero's own ``blink``/``pulse`` threads are not
used). The pin factory is always passed in, never set process-wide.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kiosk.config import GpioSettings
from kiosk.core.events import KioskEvent, State, StateChanged
from kiosk.errors import DeviceError
from kiosk.hardware.led_patterns import brightness, color, perceived_to_duty

log = logging.getLogger(__name__)


class Leds(Protocol):
    """The seam the app talks to (GpioLeds, or NoLeds when there is no GPIO)."""

    def on_event(self, event: KioskEvent) -> None: ...

    def render(self, now: float) -> None: ...

    def close(self) -> None: ...


class NoLeds:
    """Stands in when GPIO is absent or disabled, so the app needs no special case."""

    def on_event(self, event: KioskEvent) -> None:
        pass

    def render(self, now: float) -> None:
        pass

    def close(self) -> None:
        pass


class GpioLeds:
    """Draw the kiosk state on a single PWM LED or an RGB LED (+ per-state LEDs)."""

    def __init__(self, settings: GpioSettings, pin_factory: Any) -> None:
        """
        Args:
            settings: ``[gpio]`` config (led kind, pins, active_high, brightness, state_pins).
            pin_factory: a gpiozero pin factory (``MockFactory(pin_class=MockPWMPin)`` in tests).

        Raises:
            DeviceError: a pin is invalid, busy, or cannot do PWM; one line naming the key.
        """
        # Imported here so that importing kiosk never requires gpiozero to be usable.
        from gpiozero import LED, PWMLED, RGBLED

        self._settings = settings
        self._state = State.IDLE
        self._since = 0.0
        self._single: Any = None
        self._rgb: Any = None
        self._state_leds: dict[State, Any] = {}
        self._last: object = None
        try:
            if settings.led == "single":
                self._single = _open(
                    "gpio.led_pin",
                    lambda: PWMLED(
                        settings.led_pin,
                        active_high=settings.led_active_high,
                        initial_value=0,
                        pin_factory=pin_factory,
                    ),
                )
            elif settings.led == "rgb":
                r, g, b = settings.rgb_pins
                self._rgb = _open(
                    "gpio.rgb_pins",
                    lambda: RGBLED(
                        r,
                        g,
                        b,
                        active_high=settings.led_active_high,
                        initial_value=(0, 0, 0),
                        pwm=True,
                        pin_factory=pin_factory,
                    ),
                )
            for name, pin in settings.state_pins.items():
                state = _state_named(name)
                self._state_leds[state] = _open(
                    f"gpio.state_pins.{name}",
                    lambda pin=pin: LED(
                        pin, active_high=settings.led_active_high, pin_factory=pin_factory
                    ),
                )
        except BaseException:
            self.close()
            raise
        self.render(0.0)

    @property
    def state(self) -> State:
        return self._state

    def on_event(self, event: KioskEvent) -> None:
        """Event-stream subscriber: remember the new state and when it began."""
        if isinstance(event, StateChanged):
            self._state = event.new
            self._since = event.t_s

    def render(self, now: float) -> None:
        """Write the pins for monotonic time ``now`` (cheap when nothing changed)."""
        t = now - self._since
        max_duty = self._settings.led_brightness
        if self._single is not None:
            duty = perceived_to_duty(brightness(self._state, t), max_duty)
            if duty != self._last:
                self._single.value = duty
                self._last = duty
        elif self._rgb is not None:
            rgb = tuple(perceived_to_duty(c, max_duty) for c in color(self._state, t))
            if rgb != self._last:
                self._rgb.value = rgb
                self._last = rgb
        for state, led in self._state_leds.items():
            want = state is self._state
            if bool(led.value) != want:
                led.value = want

    def close(self) -> None:
        """Turn everything off and release the pins. Idempotent."""
        for dev in (self._single, self._rgb, *self._state_leds.values()):
            if dev is None:
                continue
            try:
                dev.off()
                dev.close()
            except Exception as exc:  # a pin already gone must not stop the others closing
                log.debug("closing %r: %s", dev, exc)
        self._single = None
        self._rgb = None
        self._state_leds = {}


def _state_named(name: str) -> State:
    try:
        return State[name.upper()]
    except KeyError:
        known = ", ".join(s.name.lower() for s in State)
        raise DeviceError(f"gpio.state_pins: unknown state {name!r} (known: {known})") from None


def _open(key: str, build: Any) -> Any:
    """Build a gpiozero device, turning its errors into one-line DeviceErrors."""
    try:
        return build()
    except Exception as exc:  # gpiozero raises many types (PinInvalidPin, PinPWMUnsupported, ...)
        raise DeviceError(f"{key}: {type(exc).__name__}: {exc}") from exc

"""Open all interaction hardware in one call, degrade to "no GPIO" with one log line.

Owns the wiring between gpiozero's threads and the asyncio loop for the button and mute
switch: edges are timestamped on gpiozero's thread, handed over with
``loop.call_soon_threadsafe``, classified by the pure :mod:`kiosk.core.button` machines on
the loop, and their deadlines are scheduled with ``loop.call_at``. The app receives
finished gestures through ``on_gesture`` on the loop thread, and subscribes ``leds.on_event``
to the event stream and calls ``leds.render(loop.time())`` from its ticker.

A laptop or CI has no GPIO: :func:`open_gpio` then returns ``NoLeds`` and no button, logs
the reason once, and puts it in :attr:`GpioHardware.reason` for ``kiosk check``. A bad pin
(busy, invalid) is the same: logged once, the daemon runs without that device.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kiosk.config import GpioSettings
from kiosk.core.button import ButtonGestures, Gesture, MuteSwitchGestures
from kiosk.errors import DeviceError
from kiosk.hardware.button import GpioButton, GpioMuteSwitch
from kiosk.hardware.factory import open_pin_factory
from kiosk.hardware.leds import GpioLeds, Leds, NoLeds

log = logging.getLogger(__name__)

OnGesture = Callable[[Gesture], None]


class LoopGestures:
    """Feed a gesture machine from any thread; run its deadlines on the asyncio loop."""

    def __init__(
        self,
        machine: ButtonGestures | MuteSwitchGestures,
        loop: asyncio.AbstractEventLoop,
        on_gesture: OnGesture,
    ) -> None:
        self._machine = machine
        self._loop = loop
        self._on_gesture = on_gesture
        self._timer: asyncio.TimerHandle | None = None

    def edge_from_thread(self, level: bool, now: float) -> None:
        """gpiozero callback target: hand the timestamped edge to the loop, nothing else."""
        self._loop.call_soon_threadsafe(self._edge, level, now)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _edge(self, level: bool, now: float) -> None:
        self._emit(self._machine.edge(level, now))

    def _deadline(self) -> None:
        self._timer = None
        self._emit(self._machine.on_deadline(self._loop.time()))

    def _emit(self, gestures: list[Gesture]) -> None:
        for g in gestures:
            log.debug("= button %s", g)
            self._on_gesture(g)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._machine.next_deadline()
        if deadline is not None:
            # loop.time() is time.monotonic() for asyncio's default loops: the same clock
            # the gpiozero callbacks stamp edges with.
            self._timer = self._loop.call_at(deadline, self._deadline)


class GpioHardware:
    """What :func:`open_gpio` opened. ``reason`` is "" when GPIO works, else why not."""

    def __init__(self) -> None:
        self.leds: Leds = NoLeds()
        self.button: GpioButton | None = None
        self.mute_switch: GpioMuteSwitch | None = None
        self.reason = ""
        self.factory_name = ""
        self._factory: Any = None
        self._feeds: list[LoopGestures] = []

    @property
    def initially_muted(self) -> bool:
        """The mute switch is closed at start-up (the app should start MUTED)."""
        return self.mute_switch is not None and self.mute_switch.muted

    def close(self) -> None:
        """Turn LEDs off, release pins, cancel timers. Idempotent."""
        for feed in self._feeds:
            feed.close()
        self._feeds = []
        self.leds.close()
        self.leds = NoLeds()
        for dev in (self.button, self.mute_switch):
            if dev is not None:
                dev.close()
        self.button = self.mute_switch = None
        if self._factory is not None:
            self._factory.close()
            self._factory = None


def open_gpio(
    settings: GpioSettings,
    loop: asyncio.AbstractEventLoop,
    on_gesture: OnGesture,
    *,
    pin_factory: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> GpioHardware:
    """Open LEDs, button and mute switch as configured; never raises for missing hardware.

    Args:
        settings: ``[gpio]``.
        loop: the running loop; gestures are delivered on it.
        on_gesture: receives every :data:`~kiosk.core.button.Gesture` (button and switch).
        pin_factory: use this factory (tests: ``MockFactory``) instead of opening one; the
            caller then owns it.
        clock: stamps edges; must be the loop's clock (``time.monotonic``).
    """
    hw = GpioHardware()
    if pin_factory is None:
        pin_factory, description = open_pin_factory(settings)
        if pin_factory is None:
            hw.reason = description
            log.info("LEDs and button disabled: %s", description)
            return hw
        hw._factory = pin_factory
        hw.factory_name = description
    else:
        hw.factory_name = type(pin_factory).__name__
    problems: list[str] = []
    if settings.led != "none" or settings.state_pins:
        try:
            hw.leds = GpioLeds(settings, pin_factory)
        except DeviceError as exc:
            problems.append(f"LEDs disabled: {exc}")
    if settings.button_pin:
        feed = LoopGestures(
            ButtonGestures(settings.hold_s, settings.long_press_s, settings.debounce_ms),
            loop,
            on_gesture,
        )
        try:
            hw.button = GpioButton(settings, pin_factory, feed.edge_from_thread, clock)
            hw._feeds.append(feed)
        except DeviceError as exc:
            problems.append(f"button disabled: {exc}")
    if settings.mute_switch_pin:
        # The switch's start position seeds the debouncer, so the feed exists only after
        # the pin is open; edges in between (none in practice) are dropped.
        feeds: list[LoopGestures] = []

        def forward(muted: bool, now: float) -> None:
            for f in feeds:
                f.edge_from_thread(muted, now)

        try:
            hw.mute_switch = GpioMuteSwitch(settings, pin_factory, forward, clock)
        except DeviceError as exc:
            problems.append(f"mute switch disabled: {exc}")
        else:
            machine = MuteSwitchGestures(settings.debounce_ms, initially_muted=hw.mute_switch.muted)
            feeds.append(LoopGestures(machine, loop, on_gesture))
            hw._feeds += feeds
    for problem in problems:
        log.warning("%s", problem)
    hw.reason = "; ".join(problems)
    log.info(
        "GPIO via %s: led=%s button=%s mute_switch=%s",
        hw.factory_name,
        settings.led if isinstance(hw.leds, GpioLeds) else "none",
        settings.button_pin if hw.button else "none",
        settings.mute_switch_pin if hw.mute_switch else "none",
    )
    return hw

"""open_gpio on a real asyncio loop: gestures arrive on the loop, timers fire by loop.call_at,
and a machine without GPIO (this one, CI) runs on with one log line and a reason."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import GpioSettings
from kiosk.core.button import (
    ButtonPressed,
    ButtonTapped,
    Gesture,
    MuteSwitchChanged,
    MuteToggled,
    PushToTalkEnded,
    PushToTalkStarted,
)
from kiosk.core.events import State, StateChanged
from kiosk.hardware.gpio import open_gpio
from kiosk.hardware.leds import GpioLeds, NoLeds

TIMEOUT_S = 2.0 * float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
FAST = GpioSettings(
    led="single", button_pin=17, mute_switch_pin=27, hold_s=0.15, long_press_s=0.4, debounce_ms=10
)


class SwitchToGround(MockPWMPin):  # type: ignore[misc]
    """A pin wired to a closed switch: the switch holds it low whatever the pull-up says."""

    closed = True

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        if self.closed:
            self.drive_low()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.close()


class Gestures:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Gesture] = asyncio.Queue()

    def __call__(self, g: Gesture) -> None:
        self.queue.put_nowait(g)

    async def next(self) -> Gesture:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT_S)


async def test_tap_arrives_on_the_loop_as_pressed_then_tapped(factory: MockFactory) -> None:
    got = Gestures()
    hw = open_gpio(FAST, asyncio.get_running_loop(), got, pin_factory=factory)
    pin = factory.pin(17)
    pin.drive_low()
    assert isinstance(await got.next(), ButtonPressed)
    await asyncio.sleep(0.03)
    pin.drive_high()
    assert isinstance(await got.next(), ButtonTapped)
    hw.close()


async def test_hold_then_release_gives_push_to_talk_from_loop_timers(factory: MockFactory) -> None:
    got = Gestures()
    hw = open_gpio(FAST, asyncio.get_running_loop(), got, pin_factory=factory)
    pin = factory.pin(17)
    pin.drive_low()
    assert isinstance(await got.next(), ButtonPressed)
    started = await got.next()  # fired by loop.call_at, nothing else touched the pin
    assert isinstance(started, PushToTalkStarted)
    pin.drive_high()
    ended = await got.next()
    assert isinstance(ended, PushToTalkEnded)
    assert ended.held_s >= FAST.hold_s
    hw.close()


async def test_long_hold_toggles_mute_while_still_held(factory: MockFactory) -> None:
    got = Gestures()
    hw = open_gpio(FAST, asyncio.get_running_loop(), got, pin_factory=factory)
    factory.pin(17).drive_low()
    kinds = [type(await got.next()) for _ in range(3)]
    assert kinds == [ButtonPressed, PushToTalkStarted, MuteToggled]
    factory.pin(17).drive_high()
    await asyncio.sleep(0.02)
    assert got.queue.empty()  # the release after a long press emits nothing
    hw.close()


async def test_mute_switch_closed_at_start_is_reported_and_changes_arrive(
    factory: MockFactory,
) -> None:
    switch_pin = factory.pin(27, pin_class=SwitchToGround)  # closed before the daemon starts
    got = Gestures()
    hw = open_gpio(FAST, asyncio.get_running_loop(), got, pin_factory=factory)
    assert hw.initially_muted
    switch_pin.closed = False
    switch_pin.drive_high()
    change = await got.next()
    assert isinstance(change, MuteSwitchChanged) and change.muted is False
    hw.close()


async def test_leds_follow_state_events(factory: MockFactory) -> None:
    hw = open_gpio(FAST, asyncio.get_running_loop(), Gestures(), pin_factory=factory)
    assert isinstance(hw.leds, GpioLeds)
    hw.leds.on_event(
        StateChanged(t_s=1.0, old=State.IDLE, new=State.LISTENING, reason="", turn_id=1)
    )
    hw.leds.render(1.0)
    assert factory.pin(12).state == 1.0
    hw.close()
    assert factory.pin(12).state == 0.0


async def test_busy_led_pin_disables_leds_only_and_says_why(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    taken = LED(12, pin_factory=factory)
    got = Gestures()
    hw = open_gpio(FAST, asyncio.get_running_loop(), got, pin_factory=factory)
    assert isinstance(hw.leds, NoLeds)
    assert hw.reason.startswith("LEDs disabled: gpio.led_pin: ")
    assert any("LEDs disabled" in r.getMessage() for r in caplog.records)
    factory.pin(17).drive_low()
    assert isinstance(await got.next(), ButtonPressed)  # the button still works
    factory.pin(17).drive_high()
    hw.close()
    taken.close()


async def test_no_gpio_machine_runs_without_leds_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.hardware.gpio")
    hw = open_gpio(GpioSettings(button_pin=17), asyncio.get_running_loop(), Gestures())
    if hw.reason == "":  # pragma: no cover - running on a board with GPIO
        hw.close()
        return
    assert isinstance(hw.leds, NoLeds) and hw.button is None
    assert hw.reason.startswith("no GPIO: ")
    lines = [r.getMessage() for r in caplog.records if "disabled" in r.getMessage()]
    assert lines == [f"LEDs and button disabled: {hw.reason}"]
    hw.leds.render(0.0)  # NoLeds accepts the ticker's calls
    hw.close()
    hw.close()

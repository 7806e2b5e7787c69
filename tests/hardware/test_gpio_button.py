"""GpioButton / GpioMuteSwitch on MockFactory, driven into the pure gesture classifier."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import cast

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.config import GpioSettings
from kiosk.core.button import (
    ButtonGestures,
    ButtonPressed,
    ButtonTapped,
    Gesture,
    MuteSwitchChanged,
    MuteSwitchGestures,
    MuteToggled,
    PushToTalkEnded,
    PushToTalkStarted,
)
from kiosk.errors import DeviceError
from kiosk.hardware.button import GpioButton, GpioMuteSwitch

SETTINGS = GpioSettings(led="none", button_pin=17, mute_switch_pin=27)


def near(x: float) -> float:
    """pytest.approx typed as the float field it stands in for (gesture times are sums)."""
    return cast(float, pytest.approx(x))


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Rig:
    """Pin -> GpioButton -> ButtonGestures, with the deadlines the app would schedule."""

    def __init__(self, factory: MockFactory, settings: GpioSettings = SETTINGS) -> None:
        self.clock = FakeClock()
        self.gestures = ButtonGestures(settings.hold_s, settings.long_press_s, settings.debounce_ms)
        self.out: list[Gesture] = []
        self.button = GpioButton(settings, factory, self._on_edge, clock=self.clock)
        self.pin = factory.pin(settings.button_pin)

    def _on_edge(self, pressed: bool, now: float) -> None:
        self.out += self.gestures.edge(pressed, now)

    def advance_to(self, t: float) -> None:
        while (d := self.gestures.next_deadline()) is not None and d <= t:
            self.out += self.gestures.on_deadline(d)
        self.clock.t = t

    def press(self, at: float) -> None:
        self.advance_to(at)
        self.pin.drive_low()

    def release(self, at: float) -> None:
        self.advance_to(at)
        self.pin.drive_high()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


def test_tap_on_pin_gives_pressed_then_tapped(factory: MockFactory) -> None:
    rig = Rig(factory)
    rig.press(1.0)
    assert rig.button.is_pressed
    rig.release(1.2)
    rig.advance_to(5.0)
    assert rig.out == [ButtonPressed(t_s=1.0), ButtonTapped(t_s=1.2, held_s=near(0.2))]


def test_hold_on_pin_gives_push_to_talk(factory: MockFactory) -> None:
    rig = Rig(factory)
    rig.press(0.0)
    rig.release(2.0)
    rig.advance_to(5.0)
    assert rig.out == [
        ButtonPressed(t_s=0.0),
        PushToTalkStarted(t_s=0.5),
        PushToTalkEnded(t_s=2.0, held_s=near(2.0)),
    ]


def test_long_press_on_pin_toggles_mute(factory: MockFactory) -> None:
    rig = Rig(factory)
    rig.press(0.0)
    rig.release(3.5)
    rig.advance_to(5.0)
    assert [type(g) for g in rig.out] == [ButtonPressed, PushToTalkStarted, MuteToggled]


def test_bouncing_contacts_on_pin_give_one_tap(factory: MockFactory) -> None:
    rig = Rig(factory)
    for i, t in enumerate([0.000, 0.003, 0.006, 0.009]):
        rig.advance_to(t)
        (rig.pin.drive_low if i % 2 == 0 else rig.pin.drive_high)()
    rig.advance_to(0.010)
    rig.pin.drive_low()  # settles pressed
    rig.release(0.3)
    rig.advance_to(2.0)
    assert [type(g) for g in rig.out] == [ButtonPressed, ButtonTapped]


def test_active_high_button_to_3v3_reads_pressed_when_pin_high(factory: MockFactory) -> None:
    rig = Rig(factory, dataclasses.replace(SETTINGS, button_active_low=False))
    rig.advance_to(1.0)
    rig.pin.drive_high()
    assert rig.out == [ButtonPressed(t_s=1.0)]


def test_button_close_releases_the_pin(factory: MockFactory) -> None:
    rig = Rig(factory)
    rig.button.close()
    rig.button.close()
    GpioButton(SETTINGS, factory, lambda p, t: None).close()  # the pin can be claimed again


def test_button_on_a_pin_already_in_use_raises_device_error(factory: MockFactory) -> None:
    first = GpioButton(SETTINGS, factory, lambda p, t: None)
    with pytest.raises(DeviceError, match=r"^gpio\.button_pin: "):
        GpioButton(SETTINGS, factory, lambda p, t: None)
    first.close()


def test_mute_switch_closing_reports_muted(factory: MockFactory) -> None:
    clock = FakeClock()
    gestures = MuteSwitchGestures(debounce_ms=30)
    out: list[Gesture] = []
    switch = GpioMuteSwitch(SETTINGS, factory, lambda m, t: out.extend(gestures.edge(m, t)), clock)
    pin = factory.pin(27)
    assert not switch.muted
    clock.t = 2.0
    pin.drive_low()
    assert switch.muted
    clock.t = 9.0
    pin.drive_high()
    assert out == [MuteSwitchChanged(t_s=2.0, muted=True), MuteSwitchChanged(t_s=9.0, muted=False)]
    switch.close()

"""GpioLeds on gpiozero's MockFactory with MockPWMPin: pin values over a float clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import GpioSettings
from kiosk.core.events import State, StateChanged
from kiosk.errors import DeviceError
from kiosk.hardware import led_patterns
from kiosk.hardware.led_patterns import brightness, color, markdown_table, perceived_to_duty
from kiosk.hardware.leds import GpioLeds

SINGLE = GpioSettings(led="single", led_pin=12)
RGB_SETTINGS = GpioSettings(led="rgb", rgb_pins=[5, 6, 13])


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.close()


def enter(leds: GpioLeds, state: State, t_s: float) -> None:
    leds.on_event(StateChanged(t_s=t_s, old=leds.state, new=state, reason="test", turn_id=1))


def sample(leds: GpioLeds, pin: MockPWMPin, start: float, times: list[float]) -> list[float]:
    out = []
    for t in times:
        leds.render(start + t)
        out.append(pin.state)
    return out


def test_every_state_has_a_distinct_single_led_signature() -> None:
    times = [i / 30 for i in range(30 * 4)]  # 4 s at the ticker's 30 Hz
    signatures = {s: tuple(round(brightness(s, t), 3) for t in times) for s in State}
    assert len(set(signatures.values())) == len(State)


def test_every_state_has_a_distinct_rgb_signature() -> None:
    times = [i / 30 for i in range(30 * 4)]
    signatures = {s: tuple(tuple(round(c, 3) for c in color(s, t)) for t in times) for s in State}
    assert len(set(signatures.values())) == len(State)


def test_idle_single_led_is_dim_and_steady(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.IDLE, 100.0)
    values = sample(leds, factory.pin(12), 100.0, [0.0, 0.5, 3.0, 60.0])
    assert values == [pytest.approx(perceived_to_duty(0.10))] * 4
    assert 0 < values[0] < 0.05
    leds.close()


def test_listening_single_led_is_full_on(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.LISTENING, 5.0)
    assert sample(leds, factory.pin(12), 5.0, [0.0, 1.0, 2.0]) == [1.0, 1.0, 1.0]
    leds.close()


def test_thinking_single_led_pulses_once_per_second(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.THINKING, 10.0)
    low0, high, low1 = sample(leds, factory.pin(12), 10.0, [0.0, 0.5, 1.0])
    assert low0 == pytest.approx(low1)
    assert low0 < 0.01
    assert high == pytest.approx(1.0)


def test_speaking_breathes_slower_and_never_goes_dark(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.SPEAKING, 0.0)
    values = sample(leds, factory.pin(12), 0.0, [i / 30 for i in range(30 * 5)])
    assert min(values) == pytest.approx(perceived_to_duty(0.35), abs=1e-3)
    assert max(values) == pytest.approx(1.0, abs=1e-3)
    peaks = [
        i / 30 for i in range(1, len(values) - 1) if values[i - 1] < values[i] >= values[i + 1]
    ]
    assert peaks[0] == pytest.approx(led_patterns.SPEAKING_PERIOD_S / 2, abs=0.04)


def test_muted_single_led_is_off_with_a_short_blink_every_3_s(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.MUTED, 0.0)
    values = sample(leds, factory.pin(12), 0.0, [0.05, 0.5, 2.9, 3.05, 3.5])
    assert values[0] > 0 and values[3] > 0
    assert values[1] == values[2] == values[4] == 0.0


def test_error_single_led_blinks_three_times_then_pauses(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.ERROR, 0.0)
    step = led_patterns.ERROR_BLINK_S
    on_off = sample(leds, factory.pin(12), 0.0, [step * (i + 0.5) for i in range(8)])
    assert on_off == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_pattern_restarts_when_state_is_entered_again(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.THINKING, 0.0)
    leds.render(0.5)
    enter(leds, State.THINKING, 0.5)
    leds.render(0.5)
    assert factory.pin(12).state < 0.01  # back at the start of the pulse


def test_active_low_single_led_inverts_the_pin(factory: MockFactory) -> None:
    leds = GpioLeds(dataclasses.replace(SINGLE, led_active_high=False), factory)
    enter(leds, State.LISTENING, 0.0)
    leds.render(0.0)
    assert factory.pin(12).state == 0.0  # sinking current = fully on
    enter(leds, State.MUTED, 0.0)
    leds.render(1.0)
    assert factory.pin(12).state == 1.0  # off


def test_brightness_setting_caps_the_duty(factory: MockFactory) -> None:
    leds = GpioLeds(dataclasses.replace(SINGLE, led_brightness=0.25), factory)
    enter(leds, State.LISTENING, 0.0)
    leds.render(0.0)
    assert factory.pin(12).state == pytest.approx(0.25)


def test_rgb_muted_is_red_and_listening_is_blue(factory: MockFactory) -> None:
    leds = GpioLeds(RGB_SETTINGS, factory)
    r, g, b = (factory.pin(p) for p in (5, 6, 13))
    enter(leds, State.MUTED, 0.0)
    leds.render(1.0)
    assert r.state > 0.2 and g.state == 0.0 and b.state == 0.0
    enter(leds, State.LISTENING, 2.0)
    leds.render(2.0)
    assert r.state == 0.0 and b.state == 1.0 and 0 < g.state < b.state
    leds.close()


def test_rgb_error_blinks_all_channels_together(factory: MockFactory) -> None:
    leds = GpioLeds(RGB_SETTINGS, factory)
    r, g, b = (factory.pin(p) for p in (5, 6, 13))
    enter(leds, State.ERROR, 0.0)
    leds.render(led_patterns.ERROR_BLINK_S * 0.5)
    assert r.state == 1.0 and g.state > 0 and b.state == 0.0
    leds.render(led_patterns.ERROR_BLINK_S * 1.5)
    assert (r.state, g.state, b.state) == (0.0, 0.0, 0.0)


def test_state_pins_light_only_for_their_state(factory: MockFactory) -> None:
    settings = dataclasses.replace(SINGLE, state_pins={"muted": 20, "error": 21})
    leds = GpioLeds(settings, factory)
    muted_pin, error_pin = factory.pin(20), factory.pin(21)
    enter(leds, State.MUTED, 0.0)
    leds.render(0.0)
    assert (muted_pin.state, error_pin.state) == (1, 0)
    enter(leds, State.ERROR, 1.0)
    leds.render(1.0)
    assert (muted_pin.state, error_pin.state) == (0, 1)
    enter(leds, State.IDLE, 2.0)
    leds.render(2.0)
    assert (muted_pin.state, error_pin.state) == (0, 0)


def test_pin_already_in_use_raises_one_line_device_error_and_releases_pins(
    factory: MockFactory,
) -> None:
    from gpiozero import LED

    taken = LED(20, pin_factory=factory)
    settings = dataclasses.replace(SINGLE, state_pins={"error": 20})
    with pytest.raises(DeviceError, match=r"^gpio\.state_pins\.error: GPIOPinInUse"):
        GpioLeds(settings, factory)
    taken.close()
    GpioLeds(SINGLE, factory).close()  # pin 12 was released when construction failed


def test_non_pwm_pin_for_single_led_raises_device_error() -> None:
    plain = MockFactory()  # MockPin: no PWM
    with pytest.raises(DeviceError, match=r"gpio\.led_pin"):
        GpioLeds(SINGLE, plain)
    plain.close()


def test_close_turns_led_off_and_is_idempotent(factory: MockFactory) -> None:
    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.LISTENING, 0.0)
    leds.render(0.0)
    leds.close()
    leds.close()
    assert factory.pin(12).state == 0.0


def test_other_events_do_not_change_the_pattern(factory: MockFactory) -> None:
    from kiosk.core.events import EarconRequested

    leds = GpioLeds(SINGLE, factory)
    enter(leds, State.LISTENING, 0.0)
    leds.on_event(EarconRequested(name="wake"))
    leds.render(1.0)
    assert factory.pin(12).state == 1.0


def test_markdown_table_lists_every_state() -> None:
    table = markdown_table()
    for s in State:
        assert f"| {s.name} |" in table

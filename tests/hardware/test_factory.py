"""Pin factory selection: mock, explicit names, and the no-GPIO path of a laptop or CI."""

from __future__ import annotations

import dataclasses

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import GpioSettings
from kiosk.hardware.factory import gpio_in_use, open_pin_factory


def test_mock_factory_gives_pwm_capable_mock_pins() -> None:
    factory, description = open_pin_factory(GpioSettings(pin_factory="mock"))
    assert isinstance(factory, MockFactory)
    assert issubclass(factory.pin_class, MockPWMPin)
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


def test_mock_pins_forget_old_states_so_an_animated_led_does_not_grow() -> None:
    # gpiozero's MockPin appends every state change to pin.states forever. The LED ticker
    # writes a new duty ~30 times a second while the kiosk thinks or speaks, so a kiosk on
    # gpio.pin_factory = "mock" (the real-time soak bench) grew ~120 bytes per tick: the
    # soak's RSS slope (2.2 MB per 10 minutes here). Breathing at 30 Hz must leave it bounded.
    import gc
    import tracemalloc

    from kiosk.core.events import State, StateChanged
    from kiosk.hardware.leds import GpioLeds

    for led in ("single", "rgb"):
        settings = GpioSettings(pin_factory="mock", led=led, button_pin=0)
        factory, _ = open_pin_factory(settings)
        assert factory is not None
        leds = GpioLeds(settings, factory)
        leds.on_event(StateChanged(0.0, State.IDLE, State.SPEAKING, "answer", 1))

        def animate(t0: float, seconds: float) -> None:
            for i in range(int(seconds * 30)):
                leds.render(t0 + i / 30)

        animate(0.0, 60)  # a minute: whatever history is kept is full
        # Earlier tests' garbage, collected inside render(), would run its finalizers with
        # leds.py on the stack and count as growth here (seen once in a full run: 119 kB).
        gc.collect()
        tracemalloc.start(8)
        before = tracemalloc.take_snapshot()
        animate(60.0, 600)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        # Only what rendering allocated (other threads of the test process do not count).
        by_leds = [tracemalloc.Filter(True, "*/kiosk/hardware/leds.py", all_frames=True)]
        diff = after.filter_traces(by_leds).compare_to(before.filter_traces(by_leds), "filename")
        grown = sum(d.size_diff for d in diff)
        pins = [p for p in factory.pins.values() if hasattr(p, "states")]
        assert pins and all(len(p.states) <= 1000 for p in pins), [len(p.states) for p in pins]
        assert grown < 64 * 1024, f"{led}: {grown} bytes after 10 minutes of animation"
        leds.close()
        factory.close()


def test_factory_table_is_gpiozeros_own_entry_points() -> None:
    # kiosk names the factories itself instead of reading entry points at run time (no
    # importlib.metadata in the daemon); an upgraded gpiozero that moves one must fail here.
    from importlib.metadata import entry_points

    from kiosk.hardware.factory import FACTORY_CLASSES, KNOWN_FACTORIES

    declared = {ep.name: ep.value for ep in entry_points(group="gpiozero_pin_factories")}
    for name, (module, class_name) in FACTORY_CLASSES.items():
        assert declared[name] == f"{module}:{class_name}"
    assert set(FACTORY_CLASSES) | {"", "mock"} == set(KNOWN_FACTORIES)


def test_a_named_factory_is_made_from_its_module_and_class(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a Pi's lgpio takes (gpiozero.pins.lgpio needs the lgpio module and a GPIO chip),
    # with gpiozero's mock factory in its place.
    from kiosk.hardware import factory as module

    monkeypatch.setitem(module.FACTORY_CLASSES, "lgpio", ("gpiozero.pins.mock", "MockFactory"))
    made, description = open_pin_factory(GpioSettings(pin_factory="lgpio"))
    assert isinstance(made, MockFactory)
    assert description == "lgpio"
    made.close()


def test_unknown_factory_name_says_which_are_known() -> None:
    from kiosk.hardware.factory import _try_factory

    factory, reason = _try_factory("sysfs")
    assert factory is None
    assert reason.startswith("unknown pin factory (known: lgpio")


def test_leds_on_mock_pins_run_without_importlib_metadata() -> None:
    """importlib.metadata and what it imports stay out of the daemon (~0.9 MB resident for
    its whole life): gpiozero imports ``entry_points`` at import time but kiosk never makes
    it look anything up. gpiozero's ``entry_points`` still works if something calls it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import kiosk.cli, kiosk.daemon, kiosk.hardware.gpio, kiosk.net.link\n"
        "from kiosk.config import GpioSettings\n"
        "from kiosk.core.events import State, StateChanged\n"
        "from kiosk.hardware.factory import open_pin_factory\n"
        "from kiosk.hardware.leds import GpioLeds\n"
        "settings = GpioSettings(pin_factory='mock', led='rgb')\n"
        "factory, _ = open_pin_factory(settings)\n"
        "leds = GpioLeds(settings, factory)\n"
        "leds.on_event(StateChanged(0.0, State.IDLE, State.SPEAKING, 'answer', 1))\n"
        "leds.render(0.5)\n"
        "print(sorted(m for m in ('importlib.metadata', 'importlib_metadata', 'email', 'zipfile')"
        " if m in sys.modules))\n"
        "from gpiozero.devices import entry_points\n"
        "print(sorted(ep.name for ep in entry_points(group='gpiozero_pin_factories')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['lgpio', 'mock', 'native', 'pigpio', 'rpigpio']"]

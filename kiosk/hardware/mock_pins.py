"""Simulated pins for ``gpio.pin_factory = "mock"`` whose history is bounded.

gpiozero's ``MockPin`` records every state change in ``pin.states`` (a list, for tests'
``assert_states``) and never forgets one. A kiosk on mock pins (a bench, a demo without a
board) animates its LED for every answer (``kiosk.hardware.leds``: a new PWM duty on each
tick, ~30 Hz, while THINKING or SPEAKING), so that list grew by one ``PinState`` per tick
for as long as the process ran: 122 bytes per tick for a single LED, 250 for an RGB one,
~18 KB per answered turn: the steady RSS growth of the real-time soak (which runs on mock
pins). Real pins (lgpio, RPi.GPIO) keep no history; these keep the last :data:`HISTORY`
changes, enough for any test that asserts a sequence.

Imported only when the mock factory is asked for (gpiozero loads lazily).
"""

from __future__ import annotations

from collections import deque

from kiosk.hardware.factory import import_gpiozero

import_gpiozero("gpiozero.pins.mock")  # first, so without importlib.metadata: see there
from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: E402

HISTORY = 256  # state changes kept per pin (a few seconds of LED animation)


class BoundedMockPWMPin(MockPWMPin):
    """``MockPWMPin`` whose ``states`` keeps only the last :data:`HISTORY` changes."""

    def clear_states(self) -> None:
        super().clear_states()
        self.states = deque(self.states, maxlen=HISTORY)


def mock_factory() -> MockFactory:
    return MockFactory(pin_class=BoundedMockPWMPin)

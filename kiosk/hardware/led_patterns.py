"""What the status LED shows in each state: pure functions of (state, seconds in state).

No gpiozero here: :mod:`kiosk.hardware.leds` samples these at ~30 Hz and writes the
pins, so a test can check any instant with a float.

The conventions follow what people already know from voice devices:

* Google AIY Voice Kit button LED: ready = dark "beacon", listening = solid on,
  thinking = quick pulse, error = three blinks.
* Home Assistant Voice PE / ESPHome voice assistants: listening lit solid, thinking
  pulses, replying animates, muted = red, error = red blinking.
* wyoming-satellite LED examples: the LED follows wake -> streaming -> TTS -> idle.

Levels are *perceived* brightness 0..1; :func:`perceived_to_duty` maps them to PWM duty
(LEDs look far brighter than their duty cycle, so a "dim" 10 % level is 0.6 % duty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kiosk.core.events import State

RGB = tuple[float, float, float]

# Periods chosen so no two animated states look alike at a glance: thinking pulses about
# twice as fast as speaking breathes, and errors blink in bursts of three.
THINKING_PERIOD_S = 1.0
SPEAKING_PERIOD_S = 2.4
MUTED_PERIOD_S = 3.0
MUTED_BLINK_S = 0.12
ERROR_PERIOD_S = 1.6
ERROR_BLINK_S = 0.12  # on 0.12, off 0.12, three times, then dark for the rest of the period
GAMMA = 2.2


@dataclass(frozen=True, slots=True)
class LedPattern:
    """One row of the README table: how a state looks on each kind of LED."""

    state: State
    single: str
    rgb: str


PATTERN_TABLE: tuple[LedPattern, ...] = (
    LedPattern(State.IDLE, "dim steady (10 %)", "dim white, steady"),
    LedPattern(State.LISTENING, "full, steady", "blue, steady"),
    LedPattern(State.THINKING, "quick pulse (1 s)", "blue, quick pulse (1 s)"),
    LedPattern(State.SPEAKING, "slow breathing (2.4 s, 35-100 %)", "cyan, slow breathing (2.4 s)"),
    LedPattern(State.MUTED, "off, one short blink every 3 s", "red, steady"),
    LedPattern(State.ERROR, "three quick blinks, pause (1.6 s)", "orange-red, three blinks, pause"),
)


def _sine(t_s: float, period_s: float, lo: float, hi: float) -> float:
    """Starts at ``lo`` when the state begins and rises smoothly (no jump on entry)."""
    phase = (1 - math.cos(2 * math.pi * t_s / period_s)) / 2
    return lo + (hi - lo) * phase


def _blink3(t_s: float) -> float:
    t = t_s % ERROR_PERIOD_S
    slot = int(t // ERROR_BLINK_S)
    return 1.0 if slot < 6 and slot % 2 == 0 else 0.0


def brightness(state: State, t_s: float) -> float:
    """Perceived brightness 0..1 of a single (PWM) LED ``t_s`` seconds after entering ``state``."""
    t_s = max(t_s, 0.0)
    match state:
        case State.IDLE:
            return 0.10
        case State.LISTENING:
            return 1.0
        case State.THINKING:
            return _sine(t_s, THINKING_PERIOD_S, 0.05, 1.0)
        case State.SPEAKING:
            return _sine(t_s, SPEAKING_PERIOD_S, 0.35, 1.0)
        case State.MUTED:
            # Off, so nobody thinks it listens, but a blink says "powered, muted on purpose".
            return 0.5 if (t_s % MUTED_PERIOD_S) < MUTED_BLINK_S else 0.0
        case State.ERROR:
            return _blink3(t_s)


_WHITE: RGB = (1.0, 1.0, 1.0)
_BLUE: RGB = (0.0, 0.35, 1.0)
_CYAN: RGB = (0.0, 0.8, 0.8)
_RED: RGB = (1.0, 0.0, 0.0)
_ORANGE_RED: RGB = (1.0, 0.25, 0.0)


def _scale(rgb: RGB, level: float) -> RGB:
    return (rgb[0] * level, rgb[1] * level, rgb[2] * level)


def color(state: State, t_s: float) -> RGB:
    """Perceived (r, g, b), each 0..1, of an RGB LED ``t_s`` seconds after entering ``state``."""
    t_s = max(t_s, 0.0)
    match state:
        case State.IDLE:
            return _scale(_WHITE, 0.10)
        case State.LISTENING:
            return _BLUE
        case State.THINKING:
            return _scale(_BLUE, _sine(t_s, THINKING_PERIOD_S, 0.05, 1.0))
        case State.SPEAKING:
            return _scale(_CYAN, _sine(t_s, SPEAKING_PERIOD_S, 0.35, 1.0))
        case State.MUTED:
            return _scale(_RED, 0.6)
        case State.ERROR:
            return _scale(_ORANGE_RED, _blink3(t_s))


def is_animated(state: State) -> bool:
    """Whether the state's look changes over time (a steady state needs no ticker)."""
    return state in (State.THINKING, State.SPEAKING, State.MUTED, State.ERROR)


def perceived_to_duty(level: float, max_duty: float = 1.0) -> float:
    """PWM duty for a perceived level, scaled by the configured maximum brightness."""
    level = min(max(level, 0.0), 1.0)
    return float(level**GAMMA) * max_duty


def markdown_table() -> str:
    """The README table of states and LED patterns (generated, so it cannot drift)."""
    lines = ["| state | single LED | RGB LED |", "|---|---|---|"]
    lines += [f"| {p.state.name} | {p.single} | {p.rgb} |" for p in PATTERN_TABLE]
    return "\n".join(lines)

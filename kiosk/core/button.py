"""Button gestures from timestamped edges: press, tap, push-to-talk, long-press mute.

Pure: no gpiozero, no threads, no clock. The adapter (``kiosk.hardware.button``) only
timestamps edges; this module owns debouncing and classification, so every gesture can
be tested with a float clock instead of real holds.

Calling contract (both classes):

* ``edge(pressed, now)`` for each raw level change the pin reports, in time order;
* ``next_deadline()`` after every call, and ``loop.call_at(deadline, ...)`` the adapter's
  way of calling ``on_deadline(now)`` at (or after) that time. Calling it late is fine:
  gestures carry the time they became true, and a late release is classified correctly
  because ``edge`` first catches up with any deadline that has passed.

Gestures of one press, in order::

    ButtonPressed ─┬─ release before hold_s ────────────────────────────▶ ButtonTapped
                   └─ hold_s ─▶ PushToTalkStarted ─┬─ release ─────────▶ PushToTalkEnded
                                                   └─ long_press_s ───▶ MuteToggled
                                                        (the release after it emits nothing)

``ButtonPressed`` comes on the press edge itself so the app can stop playback at once
("one press always stops whatever the kiosk is saying"). A ``MuteToggled`` while a
push-to-talk turn streams means: drop that turn, the staff member wanted mute.

Debouncing is "accept the leading edge, then lock out for ``debounce_ms``": the first edge
acts immediately (no added latency), chatter inside the window is ignored, and when the
window closes the last raw level is reconciled (a real release that happened inside the
window is not lost).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """The button went down (after debouncing). Stop playback now."""

    t_s: float


@dataclass(frozen=True, slots=True)
class ButtonTapped:
    """Released before ``hold_s``: start a turn now (or, while speaking, stop the answer)."""

    t_s: float
    held_s: float


@dataclass(frozen=True, slots=True)
class PushToTalkStarted:
    """Held past ``hold_s``: stream audio upstream while the button stays down."""

    t_s: float


@dataclass(frozen=True, slots=True)
class PushToTalkEnded:
    """Released after ``hold_s`` and before ``long_press_s``: commit the audio."""

    t_s: float
    held_s: float


@dataclass(frozen=True, slots=True)
class MuteToggled:
    """Held past ``long_press_s``: toggle mute (emitted while still held)."""

    t_s: float


@dataclass(frozen=True, slots=True)
class MuteSwitchChanged:
    """The optional mute switch moved (after debouncing). ``muted`` is the new position."""

    t_s: float
    muted: bool


Gesture = (
    ButtonPressed
    | ButtonTapped
    | PushToTalkStarted
    | PushToTalkEnded
    | MuteToggled
    | MuteSwitchChanged
)


class _Debouncer:
    """Leading-edge debounce with a lock-out window and reconciliation when it closes."""

    __slots__ = ("_accepted", "_lockout_until", "_raw", "_window_s")

    def __init__(self, debounce_ms: float, initial: bool) -> None:
        self._window_s = debounce_ms / 1000.0
        self._accepted = initial
        self._raw = initial
        self._lockout_until: float | None = None

    @property
    def level(self) -> bool:
        return self._accepted

    def next_deadline(self) -> float | None:
        return self._lockout_until

    def raw_edge(self, level: bool, now: float) -> bool | None:
        """Record a raw level; return the new accepted level if it changed now."""
        self._raw = level
        if self._lockout_until is not None and now < self._lockout_until:
            return None
        self._lockout_until = None
        return self._accept(level, now)

    def on_deadline(self, now: float) -> tuple[bool, float] | None:
        """At the end of the lock-out: accept the raw level if it differs.

        Returns ``(level, t_s)`` where ``t_s`` is when the window closed.
        """
        if self._lockout_until is None or now < self._lockout_until:
            return None
        closed_at = self._lockout_until
        self._lockout_until = None
        changed = self._accept(self._raw, closed_at)
        return None if changed is None else (changed, closed_at)

    def _accept(self, level: bool, now: float) -> bool | None:
        if level == self._accepted:
            return None
        self._accepted = level
        if self._window_s > 0:
            self._lockout_until = now + self._window_s
        return level


class _Phase(enum.Enum):
    UP = "up"
    DOWN = "down"  # pressed, not yet hold_s
    TALKING = "talking"  # past hold_s: push-to-talk
    MUTE_DONE = "mute_done"  # past long_press_s: mute toggled, waiting for release


class ButtonGestures:
    """Classify one momentary button's edges into :data:`Gesture` values."""

    def __init__(
        self, hold_s: float = 0.5, long_press_s: float = 3.0, debounce_ms: float = 30
    ) -> None:
        """
        Args:
            hold_s: a press longer than this is push-to-talk.
            long_press_s: a press longer than this toggles mute (must exceed ``hold_s``).
            debounce_ms: edges this soon after an accepted edge are contact chatter.

        Raises:
            ValueError: the timings contradict each other (a caller bug: config validates first).
        """
        if hold_s <= 0 or long_press_s <= hold_s:
            raise ValueError(
                f"need 0 < hold_s < long_press_s, got hold_s={hold_s} long_press_s={long_press_s}"
            )
        if not 0 <= debounce_ms < hold_s * 1000:
            raise ValueError(f"need 0 <= debounce_ms < hold_s, got debounce_ms={debounce_ms}")
        self.hold_s = hold_s
        self.long_press_s = long_press_s
        self._debounce = _Debouncer(debounce_ms, initial=False)
        self._phase = _Phase.UP
        self._pressed_at = 0.0

    @property
    def is_pressed(self) -> bool:
        """The debounced level."""
        return self._debounce.level

    def edge(self, pressed: bool, now: float) -> list[Gesture]:
        """Feed a raw edge (``pressed`` = the button is down now)."""
        out = self._advance(now)
        changed = self._debounce.raw_edge(pressed, now)
        if changed is not None:
            out.extend(self._on_level(changed, now))
        return out

    def next_deadline(self) -> float | None:
        """The earliest time ``on_deadline`` has something to do, or None."""
        candidates = [
            d for d in (self._debounce.next_deadline(), self._gesture_deadline()) if d is not None
        ]
        return min(candidates) if candidates else None

    def on_deadline(self, now: float) -> list[Gesture]:
        """Emit what became true by ``now`` (hold, long press, a settled release)."""
        return self._advance(now)

    def _gesture_deadline(self) -> float | None:
        if self._phase is _Phase.DOWN:
            return self._pressed_at + self.hold_s
        if self._phase is _Phase.TALKING:
            return self._pressed_at + self.long_press_s
        return None

    def _advance(self, now: float) -> list[Gesture]:
        out: list[Gesture] = []
        # Deadlines in time order, so a hold that expired before a settled release counts.
        while True:
            debounce_at = self._debounce.next_deadline()
            gesture_at = self._gesture_deadline()
            due = [d for d in (debounce_at, gesture_at) if d is not None and d <= now]
            if not due:
                return out
            if gesture_at is not None and gesture_at == min(due):
                out.extend(self._on_gesture_deadline(gesture_at))
            else:
                settled = self._debounce.on_deadline(now)
                if settled is not None:
                    out.extend(self._on_level(*settled))

    def _on_gesture_deadline(self, at: float) -> list[Gesture]:
        if self._phase is _Phase.DOWN:
            self._phase = _Phase.TALKING
            return [PushToTalkStarted(t_s=at)]
        self._phase = _Phase.MUTE_DONE
        return [MuteToggled(t_s=at)]

    def _on_level(self, pressed: bool, now: float) -> list[Gesture]:
        if pressed:
            self._phase = _Phase.DOWN
            self._pressed_at = now
            return [ButtonPressed(t_s=now)]
        phase, self._phase = self._phase, _Phase.UP
        held_s = now - self._pressed_at
        if phase is _Phase.DOWN:
            return [ButtonTapped(t_s=now, held_s=held_s)]
        if phase is _Phase.TALKING:
            return [PushToTalkEnded(t_s=now, held_s=held_s)]
        return []  # MUTE_DONE: the long press already acted


class MuteSwitchGestures:
    """Debounce the optional latching mute switch into :class:`MuteSwitchChanged`."""

    def __init__(self, debounce_ms: float = 30, initially_muted: bool = False) -> None:
        if debounce_ms < 0:
            raise ValueError(f"debounce_ms must be >= 0, got {debounce_ms}")
        self._debounce = _Debouncer(debounce_ms, initial=initially_muted)

    @property
    def muted(self) -> bool:
        return self._debounce.level

    def edge(self, muted: bool, now: float) -> list[Gesture]:
        out = self.on_deadline(now)
        changed = self._debounce.raw_edge(muted, now)
        if changed is not None:
            out.append(MuteSwitchChanged(t_s=now, muted=changed))
        return out

    def next_deadline(self) -> float | None:
        return self._debounce.next_deadline()

    def on_deadline(self, now: float) -> list[Gesture]:
        settled = self._debounce.on_deadline(now)
        if settled is None:
            return []
        return [MuteSwitchChanged(t_s=settled[1], muted=settled[0])]

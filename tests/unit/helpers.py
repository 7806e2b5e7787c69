"""Assertion helpers for the pure core's unit tests (turns, realtime, endpointing).

They read as assertions (``assert_effects(effects, FlushPlayback(), ...)``) so a test says
what must happen, not how to dig it out of a list. No event loop, no sockets: the clock is
a float the test advances.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from kiosk.core.events import EarconRequested, KioskEvent, State, StateChanged, TurnStarted
from kiosk.core.realtime import RealtimeSession, ServerEvent
from kiosk.core.turns import Effect, Publish

T = TypeVar("T")


@dataclass(slots=True)
class FakeClock:
    """Monotonic seconds the test advances by hand."""

    now: float = 100.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


# --- turn machine effects ------------------------------------------------------------------------


def commands(effects: Iterable[Effect]) -> list[Effect]:
    """The effects that make the adapter act (everything but ``Publish``), in order."""
    return [e for e in effects if not isinstance(e, Publish)]


def published(effects: Iterable[Effect], kind: type[T] | None = None) -> list[Any]:
    """The kiosk events published, optionally only those of ``kind``."""
    events: list[KioskEvent] = [e.event for e in effects if isinstance(e, Publish)]
    return [e for e in events if kind is None or isinstance(e, kind)]


def earcons(effects: Iterable[Effect]) -> list[str]:
    return [e.name for e in published(effects, EarconRequested)]


def assert_effects(effects: list[Effect], *expected: Effect) -> None:
    """The non-``Publish`` effects are exactly ``expected``, in this order."""
    got = commands(effects)
    assert got == list(expected), (
        f"effects differ:\n  got:      {got}\n  expected: {list(expected)}"
    )


def assert_state_change(effects: list[Effect], old: State, new: State) -> StateChanged:
    """Exactly one ``StateChanged`` was published, from ``old`` to ``new``; returns it."""
    changes = published(effects, StateChanged)
    assert [(c.old, c.new) for c in changes] == [(old, new)], f"state changes: {changes}"
    change: StateChanged = changes[0]
    return change


def assert_no_state_change(effects: list[Effect]) -> None:
    assert published(effects, StateChanged) == [], f"unexpected state change: {effects}"


def assert_turn_started(effects: list[Effect], turn_id: int, trigger: str) -> None:
    started = published(effects, TurnStarted)
    assert [(s.turn_id, s.trigger) for s in started] == [(turn_id, trigger)], (
        f"turns started: {started}"
    )


# --- realtime session ----------------------------------------------------------------------------


def sent(session: RealtimeSession) -> list[dict[str, Any]]:
    """Drain and parse what the session queued for the socket."""
    out: list[dict[str, Any]] = [json.loads(text) for text in session.data_to_send()]
    return out


def assert_sent(session: RealtimeSession, *types: str) -> list[dict[str, Any]]:
    """The session queued exactly client events of these ``type``s, in order; returns them."""
    events = sent(session)
    assert [e.get("type") for e in events] == list(types), f"sent: {events}"
    return events


def feed(session: RealtimeSession, *frames: dict[str, Any] | str) -> list[ServerEvent]:
    """Give the session server frames (dicts are JSON-encoded) and return what it parsed."""
    for frame in frames:
        session.receive_text(frame if isinstance(frame, str) else json.dumps(frame))
    return session.events_received()


def only(events: list[ServerEvent], kind: type[T]) -> T:
    """The single event parsed, which must be a ``kind``."""
    assert len(events) == 1, f"expected one {kind.__name__}, got {events}"
    event = events[0]
    assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
    return event


def assert_window_never_exceeded(grants: list[float], limit: int) -> None:
    """No 60 s window (half-open, any start) holds more than ``limit`` grants."""
    grants = sorted(grants)
    for i, start in enumerate(grants):
        in_window = [t for t in grants[i:] if t < start + 60.0]
        assert len(in_window) <= limit, f"{len(in_window)} connections in the minute from {start}"


class FirstOpinion:
    """webrtcvad's quick vote (``provisional``) and the confirmed one, set by the test."""

    def __init__(self) -> None:
        self.provisional = False
        self.confirmed = False

    def __call__(self, frame: bytes) -> bool:
        return self.confirmed


def level_frame(dbfs: float) -> bytes:
    """A 20 ms frame at 16 kHz (PCM16) whose every sample sits at ``dbfs``: the level the
    endpointer measures, with no voice of its own."""
    return np.full(320, round(32768 * 10 ** (dbfs / 20)), dtype="<i2").tobytes()

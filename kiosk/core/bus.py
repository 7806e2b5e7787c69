"""One stream of kiosk events that LEDs, logs, sounds and metrics subscribe to.

Delivery is synchronous and in order. A subscriber that raises is logged by the
adapter-supplied ``on_error`` and unsubscribed from nothing: one broken LED driver
must not stop the journal from hearing about the turn.
"""

from __future__ import annotations

from collections.abc import Callable

from kiosk.core.events import KioskEvent

Subscriber = Callable[[KioskEvent], None]


class EventStream:
    def __init__(self, on_error: Callable[[Subscriber, BaseException], None] | None = None) -> None:
        self._subscribers: list[Subscriber] = []
        self._on_error = on_error

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: KioskEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # a subscriber's bug must not break the others
                if self._on_error is not None:
                    self._on_error(subscriber, exc)

"""The kiosk side of ``bench/pulse_aec.py``: the daemon itself (:class:`kiosk.daemon.Daemon`,
its PulseAudio microphone and speaker, its pipeline) in this process, with a recorder on its
event stream and its playback buffer. Every event is stamped with ``time.monotonic`` (the
room process stamps the visitor's onset on the same clock)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kiosk.core.events import TurnEnded, TurnStarted
from kiosk.daemon import Daemon


@dataclass
class KioskLog:
    holds: list[tuple[float, bool]] = field(default_factory=list)  # (monotonic, held)
    flushes: list[float] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    answer_writes: list[float] = field(default_factory=list)  # first answer audio of a turn
    ready: float | None = None


def daemon_args() -> argparse.Namespace:
    return argparse.Namespace(
        config=None, input_wav=None, output_wav=None, exit_at_end=False, verbose=False,
        log_level="warning",
    )


class RecordedDaemon(Daemon):
    """The daemon, unchanged, plus a recorder: pauses/resumes and flushes of its playback
    buffer, turns, and when each turn's answer audio first reached the buffer (``on_answer``
    is called then, on the daemon's loop)."""

    def __init__(self, cfg: Any, on_answer: Callable[[int], None], on_turn_end: Callable[[int], None]) -> None:
        super().__init__(cfg, daemon_args())
        self.record = KioskLog()
        self._on_answer = on_answer
        self._on_turn_end = on_turn_end

    def _build_pipeline(self, cfg: Any, bus: Any, playback: Any, loop: Any) -> Any:
        pipeline = super()._build_pipeline(cfg, bus, playback, loop)
        if not getattr(playback, "_pulse27_wrapped", False):
            self._wrap(playback, bus)
        return pipeline

    def _wrap(self, playback: Any, bus: Any) -> None:
        rec = self.record
        hold, flush, write = playback.hold, playback.flush, playback.write
        answered: set[Any] = set()

        def held(on: bool) -> Any:
            if on != playback.held:
                rec.holds.append((time.monotonic(), on))
            return hold(on)

        def flushed(*a: Any, **kw: Any) -> Any:
            if not playback.is_idle:
                rec.flushes.append(time.monotonic())
            return flush(*a, **kw)

        def written(pcm: bytes, item_id: Any = None, **kw: Any) -> Any:
            if item_id is not None and (len(rec.turns), item_id) not in answered and rec.turns:
                answered.add((len(rec.turns), item_id))
                rec.answer_writes.append(time.monotonic())
                self._on_answer(len(rec.turns))
            return write(pcm, item_id, **kw)

        playback.hold, playback.flush, playback.write = held, flushed, written
        playback._pulse27_wrapped = True

        def on_event(event: Any) -> None:
            if isinstance(event, TurnStarted):
                rec.turns.append({"id": event.turn_id, "start": time.monotonic(), "trigger": str(event.trigger)})
            elif isinstance(event, TurnEnded):
                for t in rec.turns:
                    if t["id"] == event.summary.turn_id and "end" not in t:
                        t.update(end=time.monotonic(), outcome=str(event.summary.outcome))
                        self._on_turn_end(len(rec.turns))

        bus.subscribe(on_event)

    def stop(self) -> None:
        self._request_stop()

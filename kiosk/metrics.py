"""Metrics for node_exporter's textfile collector: no listening socket on the kiosk.

A bus subscriber that rewrites one ``.prom`` file (``service.metrics_textfile``) atomically
(temporary file + rename, as the collector's documentation asks) when the state changes or a
turn ends — a few writes a minute at most, none while idle. Counters start at 0 when the
daemon starts, as Prometheus counters do; ``rate()`` and ``increase()`` handle the resets.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from kiosk.core.events import (
    ErrorReported,
    KioskEvent,
    State,
    StateChanged,
    TurnEnded,
    TurnSummary,
)
from kiosk.prices import Prices, estimated_usd
from kiosk.turnlog import KINDS, turn_kind

log = logging.getLogger(__name__)

# Seconds from the visitor's end of speech to the first answer audio.
LATENCY_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")[:120]


class TextfileMetrics:
    """Keeps the counters and writes them to ``path`` on every change worth a scrape."""

    def __init__(
        self,
        path: Path | str,
        prices: Prices,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.prices = prices
        self.wallclock = wallclock
        self.state = State.IDLE
        self.outcomes: dict[str, int] = {}
        self.kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.latency_counts = [0] * len(LATENCY_BUCKETS_S)
        self.latency_sum_s = 0.0
        self.latency_n = 0
        self.upstream_audio_s = 0.0
        self.tokens = {"in": 0, "out": 0}
        self.usd_today = 0.0
        self._today = ""
        self.last_error = ""
        self.last_error_at = 0.0
        self._refused: set[int] = set()
        self._failed = False

    def __call__(self, event: KioskEvent) -> None:
        match event:
            case StateChanged(new=new):
                self.state = new
            case ErrorReported(message=message, code=code, turn_id=turn_id):
                if code == "budget_exhausted":
                    self._refused = {turn_id}  # only the turn in progress can be refused
                self.last_error = code or message
                self.last_error_at = self.wallclock()
            case TurnEnded(summary=s):
                self._count_turn(s)
            case _:
                return
        self.write()

    def _count_turn(self, s: TurnSummary) -> None:
        self.outcomes[s.outcome] = self.outcomes.get(s.outcome, 0) + 1
        kind = turn_kind(s, s.turn_id in self._refused)
        self.kinds[kind] += 1
        if s.response_latency_ms is not None:
            seconds = s.response_latency_ms / 1000
            self.latency_sum_s += seconds
            self.latency_n += 1
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    self.latency_counts[i] += 1
        self.upstream_audio_s += s.upstream_audio_s
        self.tokens["in"] += s.usage.input_total
        self.tokens["out"] += s.usage.output_total
        today = datetime.fromtimestamp(self.wallclock()).strftime("%Y-%m-%d")
        if today != self._today:
            self._today, self.usd_today = today, 0.0
        self.usd_today += estimated_usd(s.usage, self.prices)

    def render(self) -> str:
        lines = [
            "# HELP kiosk_state 1 for the turn-taking state the kiosk is in.",
            "# TYPE kiosk_state gauge",
        ]
        lines += [f'kiosk_state{{state="{s.value}"}} {int(s is self.state)}' for s in State]
        lines += [
            "# HELP kiosk_turns_total Finished turns by outcome.",
            "# TYPE kiosk_turns_total counter",
        ]
        lines += [
            f'kiosk_turns_total{{outcome="{_label(o)}"}} {n}'
            for o, n in sorted(self.outcomes.items())
        ]
        lines += [
            "# HELP kiosk_turn_kinds_total Finished turns by kind: grounded (cited), "
            "ungrounded, dont_know, error, refused (budget), other.",
            "# TYPE kiosk_turn_kinds_total counter",
        ]
        lines += [f'kiosk_turn_kinds_total{{kind="{k}"}} {n}' for k, n in self.kinds.items()]
        lines += [
            "# HELP kiosk_response_latency_seconds End of speech to first answer audio.",
            "# TYPE kiosk_response_latency_seconds histogram",
        ]
        # latency_counts are cumulative already: a turn counts in every bucket it fits under.
        for bound, n in zip(LATENCY_BUCKETS_S, self.latency_counts, strict=True):
            lines.append(f'kiosk_response_latency_seconds_bucket{{le="{bound:g}"}} {n}')
        lines += [
            f'kiosk_response_latency_seconds_bucket{{le="+Inf"}} {self.latency_n}',
            f"kiosk_response_latency_seconds_sum {self.latency_sum_s:.3f}",
            f"kiosk_response_latency_seconds_count {self.latency_n}",
            "# HELP kiosk_upstream_audio_seconds_total Audio streamed to the Realtime API.",
            "# TYPE kiosk_upstream_audio_seconds_total counter",
            f"kiosk_upstream_audio_seconds_total {self.upstream_audio_s:.3f}",
            "# HELP kiosk_tokens_total Billed tokens by direction.",
            "# TYPE kiosk_tokens_total counter",
            f'kiosk_tokens_total{{direction="in"}} {self.tokens["in"]}',
            f'kiosk_tokens_total{{direction="out"}} {self.tokens["out"]}',
            "# HELP kiosk_cost_usd_today Estimated USD spent today (since start if started today).",
            "# TYPE kiosk_cost_usd_today gauge",
            f"kiosk_cost_usd_today {self.usd_today:.6f}",
            "# HELP kiosk_last_error_timestamp_seconds When the last error was reported (0: none).",
            "# TYPE kiosk_last_error_timestamp_seconds gauge",
            f'kiosk_last_error_timestamp_seconds{{error="{_label(self.last_error)}"}} '
            f"{self.last_error_at:.0f}",
        ]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(self.render(), encoding="utf-8")
            os.replace(tmp, self.path)  # the collector never reads a half-written file
        except OSError as exc:
            if not self._failed:
                log.error("metrics textfile %s: %s; metrics are not written", self.path, exc)
            self._failed = True
            tmp.unlink(missing_ok=True)
        else:
            self._failed = False

"""Token accounting: what each turn cost, running totals that survive restarts, and caps.

Owns the SQLite ledger in the state directory (``<state_dir>/cost.sqlite``), the price
arithmetic (USD per 1M tokens from :class:`~kiosk.config.CostSettings`) and the daily /
monthly token caps that stop new turns politely. It does not decide *what* to say when the
budget is spent (the app plays the offline clip) and never reads a clock: callers pass wall
clock seconds (``time.time()``) because caps follow calendar days, not uptime.

Days and months are calendar periods in ``tz`` (default: the kiosk's local time zone), so a
lobby kiosk's "daily cap" resets at local midnight.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Literal

from kiosk.config import CostSettings
from kiosk.core.events import KioskEvent, TurnEnded, Usage, UsageReported
from kiosk.prices import estimated_usd, resolve_prices

log = logging.getLogger(__name__)

Period = Literal["day", "month"]

LEDGER_FILE = "cost.sqlite"
# Warn once per period when this share of a cap is used (style guide: WARNING for a nearly
# spent budget).
WARN_FRACTION = 0.8
MAX_OPEN_TURNS = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL,
    at_wallclock REAL NOT NULL,
    day TEXT NOT NULL,            -- YYYY-MM-DD in the ledger's time zone
    month TEXT NOT NULL,          -- YYYY-MM
    input_text INTEGER NOT NULL,
    input_audio INTEGER NOT NULL,
    input_cached INTEGER NOT NULL,
    output_text INTEGER NOT NULL,
    output_audio INTEGER NOT NULL,
    upstream_audio_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_day ON usage(day);
CREATE INDEX IF NOT EXISTS usage_month ON usage(month);
"""

_SUMS = (
    "COALESCE(SUM(input_text),0), COALESCE(SUM(input_audio),0), COALESCE(SUM(input_cached),0), "
    "COALESCE(SUM(output_text),0), COALESCE(SUM(output_audio),0)"
)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """May a new turn start? ``reason`` is one line for the log when not (or when close)."""

    ok: bool
    reason: str = ""
    day_tokens: int = 0
    month_tokens: int = 0


def tokens(usage: Usage) -> int:
    """Billed tokens of ``usage`` (cached input is part of the input counts, not extra)."""
    return usage.input_total + usage.output_total


def _clean(usage: Usage) -> Usage:
    # Counts come from the network: a negative or absurd value must not corrupt the totals.
    def ok(n: int) -> int:
        return n if isinstance(n, int) and 0 <= n < 10**9 else 0

    return Usage(
        ok(usage.input_text),
        ok(usage.input_audio),
        ok(usage.input_cached),
        ok(usage.output_text),
        ok(usage.output_audio),
    )


# SQLite's default page cache is 2 MB per connection, filled as the file grows: for a
# write-mostly ledger that is idle RSS creeping up over the first days for nothing.
SMALL_CACHE_KIB = -256


class CostLedger:
    """Per-response token counts in SQLite, with totals per calendar day and month.

    If the file cannot be opened or is not a database, the ledger moves it aside
    (``cost.sqlite.corrupt``), logs one ERROR and starts a new one; if the directory is not
    writable it keeps counting in memory. Accounting trouble must never stop the kiosk
    answering. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: Path,
        cost: CostSettings,
        *,
        tz: tzinfo | None = None,
        model: str = "gpt-realtime",
    ) -> None:
        self.path = path
        self.cost = cost
        self.prices = resolve_prices(model, cost)
        self._tz = tz
        self._warned: set[str] = set()
        self._db = self._open(path)

    def _open(self, path: Path) -> sqlite3.Connection:
        try:
            return self._connect(str(path))
        except sqlite3.DatabaseError as exc:  # includes "file is not a database"
            aside = path.with_name(path.name + ".corrupt")
            try:
                path.replace(aside)
                log.error(
                    "cost ledger %s unreadable (%s); moved to %s, starting afresh", path, exc, aside
                )
                return self._connect(str(path))
            except (OSError, sqlite3.Error) as exc2:
                log.error("cost ledger %s unusable (%s); counting in memory only", path, exc2)
        except OSError as exc:
            log.error("cost ledger %s unusable (%s); counting in memory only", path, exc)
        return self._connect(":memory:")

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(target, isolation_level=None)
        try:
            # WAL + NORMAL: a power cut may lose the last turn's row, never the file.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA cache_size={SMALL_CACHE_KIB}")
            db.executescript(_SCHEMA)
            db.execute("SELECT COUNT(*) FROM usage").fetchone()
        except sqlite3.Error:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CostLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _keys(self, now_wallclock: float) -> tuple[str, str]:
        when = datetime.fromtimestamp(now_wallclock, tz=self._tz)
        return when.strftime("%Y-%m-%d"), when.strftime("%Y-%m")

    def record(
        self, turn_id: int, usage: Usage, now_wallclock: float, *, upstream_audio_s: float = 0.0
    ) -> None:
        """Add one response's usage (a turn with a tool call has two or three)."""
        usage = _clean(usage)
        day, month = self._keys(now_wallclock)
        upstream = upstream_audio_s if 0.0 <= upstream_audio_s < 1e6 else 0.0
        try:
            self._db.execute(
                "INSERT INTO usage (turn_id, at_wallclock, day, month, input_text, input_audio, "
                "input_cached, output_text, output_audio, upstream_audio_s) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    turn_id,
                    now_wallclock,
                    day,
                    month,
                    usage.input_text,
                    usage.input_audio,
                    usage.input_cached,
                    usage.output_text,
                    usage.output_audio,
                    upstream,
                ),
            )
        except sqlite3.Error as exc:  # disk full, file deleted under us...
            log.error("cost ledger: could not record turn %d (%s)", turn_id, exc)

    def add_upstream_audio(self, turn_id: int, seconds: float, now_wallclock: float) -> None:
        """Record the seconds of audio sent upstream for a turn (no tokens)."""
        self.record(turn_id, Usage(), now_wallclock, upstream_audio_s=seconds)

    def totals(self, period: Period, now_wallclock: float) -> Usage:
        """Summed usage of the calendar day or month containing ``now_wallclock``."""
        day, month = self._keys(now_wallclock)
        column, key = ("day", day) if period == "day" else ("month", month)
        try:
            row = self._db.execute(
                f"SELECT {_SUMS} FROM usage WHERE {column} = ?", (key,)
            ).fetchone()
        except sqlite3.Error as exc:
            log.error("cost ledger: cannot read totals (%s)", exc)
            return Usage()
        return Usage(*(int(v) for v in row))

    def turn_usage(self, turn_id: int) -> Usage:
        """Summed usage of every response recorded for ``turn_id``."""
        row = self._db.execute(
            f"SELECT {_SUMS} FROM usage WHERE turn_id = ?", (turn_id,)
        ).fetchone()
        return Usage(*(int(v) for v in row))

    def upstream_audio_s(self, period: Period, now_wallclock: float) -> float:
        day, month = self._keys(now_wallclock)
        column, key = ("day", day) if period == "day" else ("month", month)
        row = self._db.execute(
            f"SELECT COALESCE(SUM(upstream_audio_s),0) FROM usage WHERE {column} = ?", (key,)
        ).fetchone()
        return float(row[0])

    def estimated_usd(self, usage: Usage) -> float:
        return estimated_usd(usage, self.prices)

    def budget_left(self, now_wallclock: float) -> BudgetStatus:
        """Whether a new turn may start under the daily and monthly token caps (0 = no cap).

        Logs one WARNING per period when a cap is 80 % used, and one ERROR when it is spent.
        """
        day_tokens = tokens(self.totals("day", now_wallclock))
        month_tokens = tokens(self.totals("month", now_wallclock))
        day, month = self._keys(now_wallclock)
        checks = (
            ("daily", day, day_tokens, self.cost.daily_token_cap),
            ("monthly", month, month_tokens, self.cost.monthly_token_cap),
        )
        for label, key, used, cap in checks:
            if cap <= 0:
                continue
            if used >= cap:
                reason = f"{label} token cap reached ({used}/{cap}); new turns are paused"
                self._once(f"spent:{label}:{key}", logging.ERROR, reason)
                return BudgetStatus(False, reason, day_tokens, month_tokens)
            if used >= WARN_FRACTION * cap:
                self._once(
                    f"warn:{label}:{key}",
                    logging.WARNING,
                    f"{label} token cap {100 * used / cap:.0f} % used ({used}/{cap})",
                )
        return BudgetStatus(True, "", day_tokens, month_tokens)

    def _once(self, key: str, level: int, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.log(level, "cost: %s", message)


class CostLedgerSubscriber:
    """Event-stream subscriber: records :class:`UsageReported`, logs each finished turn.

    ``clock`` is the wall clock (``time.time`` in the app, a float in tests).
    Subscribe with ``stream.subscribe(CostLedgerSubscriber(ledger, time.time))``.
    """

    def __init__(self, ledger: CostLedger, clock: Callable[[], float]) -> None:
        self.ledger = ledger
        self._clock = clock
        self._turns: dict[int, Usage] = {}

    @property
    def open_turns(self) -> int:
        """Turns with usage seen but no TurnEnded yet (bounded by MAX_OPEN_TURNS)."""
        return len(self._turns)

    def __call__(self, event: KioskEvent) -> None:
        match event:
            case UsageReported(turn_id=turn_id, usage=usage):
                self.ledger.record(turn_id, usage, self._clock())
                self._turns[turn_id] = self._turns.get(turn_id, Usage()) + _clean(usage)
                if len(self._turns) > MAX_OPEN_TURNS:
                    # Usage of a turn that already ended (a late response.done after barge-in)
                    # is recorded but never gets its turn line: forget the oldest.
                    del self._turns[min(self._turns)]
            case TurnEnded(summary=summary):
                usage = self._turns.pop(summary.turn_id, Usage())
                if summary.upstream_audio_s > 0:
                    self.ledger.add_upstream_audio(
                        summary.turn_id, summary.upstream_audio_s, self._clock()
                    )
                now = self._clock()
                today = self.ledger.totals("day", now)
                log.info(
                    "turn %d tokens: in text=%d audio=%d cached=%d, out text=%d audio=%d; "
                    "upstream %.1f s; est $%.4f; today %d tokens, est $%.2f",
                    summary.turn_id,
                    usage.input_text,
                    usage.input_audio,
                    usage.input_cached,
                    usage.output_text,
                    usage.output_audio,
                    summary.upstream_audio_s,
                    self.ledger.estimated_usd(usage),
                    tokens(today),
                    self.ledger.estimated_usd(today),
                )
            case _:
                pass


def open_ledger(
    state_dir: Path | str, cost: CostSettings, model: str = "gpt-realtime"
) -> CostLedger:
    """The ledger at ``<state_dir>/cost.sqlite`` (created on first use), priced for ``model``."""
    return CostLedger(Path(state_dir) / LEDGER_FILE, cost, model=model)

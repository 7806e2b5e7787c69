"""The turn log: one SQLite row per finished turn, for `kiosk report` and nothing else.

A bus subscriber. What a librarian or the front desk needs to improve the knowledge base is
which questions got no grounded answer; what the budget owner needs is turns, tokens and cost
per day. So each row keeps the outcome, a *kind* (grounded, ungrounded, don't know, error,
refused by budget, other), the transcripts (capped, control characters removed), upstream
seconds, tokens and the USD estimate. No audio is stored. Rows older than
``service.turn_log_days`` are deleted (0 = keep no turn log at all).

Accounting trouble never stops the kiosk: an unusable file logs one line and the kiosk keeps
answering without a turn log.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from kiosk.core.events import ErrorReported, KioskEvent, TurnEnded, TurnSummary
from kiosk.cost import SMALL_CACHE_KIB
from kiosk.prices import Prices, estimated_usd

log = logging.getLogger(__name__)

TURN_LOG_FILE = "turns.sqlite"
MAX_TEXT_CHARS = 500  # a question is a sentence or two; a transcript bomb is not kept

KINDS = ("grounded", "ungrounded", "dont_know", "error", "refused", "other")
ANSWERED_OUTCOMES = frozenset({"answered", "interrupted", "stopped_by_button", "too_long"})
ERROR_OUTCOMES = frozenset({"error", "no_answer", "no_audio", "stalled"})

# What the model says when the knowledge base has no answer (the default instructions ask it
# to say so). English and Japanese, the kiosk's two languages.
_DONT_KNOW = re.compile(
    r"\b(?:i\s+(?:do\s+not|don'?t|can'?t|cannot)\s+(?:know|find|say|tell)|not\s+sure|"
    r"no\s+information|(?:couldn'?t|could\s+not)\s+find|isn'?t\s+in\s+(?:the|my)|"
    r"not\s+in\s+(?:the|my)\s+(?:knowledge|documents?))\b"
    r"|わかりません|分かりません|わからない|分からない|見つかりません|見当たりません|"
    r"情報がありません|情報はありません|存じません",
    re.IGNORECASE,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    at_wallclock REAL NOT NULL,
    day TEXT NOT NULL,              -- YYYY-MM-DD in the log's time zone
    turn_id INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    outcome TEXT NOT NULL,
    kind TEXT NOT NULL,             -- one of KINDS
    question TEXT NOT NULL,         -- what the recogniser heard (capped)
    answer TEXT NOT NULL,           -- what the kiosk said (capped)
    citations INTEGER NOT NULL,
    upstream_audio_s REAL NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    usd REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_day ON turns(day);
"""


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` without control characters (newlines become spaces), at most ``limit`` chars."""
    out = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text[: limit * 2]
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co")
    )
    return " ".join(out.split())[:limit]


def turn_kind(summary: TurnSummary, refused: bool = False) -> str:
    """Which column of the report a finished turn counts in."""
    if refused:
        return "refused"
    if summary.outcome in ERROR_OUTCOMES:
        return "error"
    if summary.outcome not in ANSWERED_OUTCOMES:
        return "other"  # cancelled (muted), empty (no speech), shutdown, continued
    if summary.citations:
        return "grounded"
    if _DONT_KNOW.search(summary.answer_transcript):
        return "dont_know"
    return "ungrounded"


class TurnLog:
    """The SQLite file of turn rows (``<state_dir>/turns.sqlite``). Use as a context manager."""

    def __init__(self, path: Path, retention_days: int, *, tz: tzinfo | None = None) -> None:
        self.path = path
        self.retention_days = retention_days
        self._tz = tz
        self._pruned_day = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA cache_size={SMALL_CACHE_KIB}")  # write-mostly, as the ledger
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TurnLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def day_of(self, wallclock: float) -> str:
        return datetime.fromtimestamp(wallclock, tz=self._tz).strftime("%Y-%m-%d")

    def add(self, summary: TurnSummary, kind: str, usd: float, now_wallclock: float) -> None:
        day = self.day_of(now_wallclock)
        self._db.execute(
            "INSERT INTO turns (at_wallclock, day, turn_id, trigger, outcome, kind, question,"
            " answer, citations, upstream_audio_s, tokens_in, tokens_out, usd)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                now_wallclock,
                day,
                summary.turn_id,
                clean_text(summary.trigger, 32),
                clean_text(summary.outcome, 32),
                kind,
                clean_text(summary.transcript),
                clean_text(summary.answer_transcript),
                len(summary.citations),
                float(summary.upstream_audio_s),
                max(0, summary.usage.input_total),
                max(0, summary.usage.output_total),
                max(0.0, usd),
            ),
        )
        if day != self._pruned_day:
            self.prune(now_wallclock)
            self._pruned_day = day

    def prune(self, now_wallclock: float) -> int:
        """Delete rows older than the retention; returns how many went."""
        cutoff = datetime.fromtimestamp(now_wallclock, tz=self._tz) - timedelta(
            days=self.retention_days
        )
        cur = self._db.execute("DELETE FROM turns WHERE day < ?", (cutoff.strftime("%Y-%m-%d"),))
        return cur.rowcount

    def rows(self, since_day: str = "") -> list[sqlite3.Row]:
        self._db.row_factory = sqlite3.Row
        try:
            return list(
                self._db.execute(
                    "SELECT * FROM turns WHERE day >= ? ORDER BY at_wallclock, id", (since_day,)
                )
            )
        finally:
            self._db.row_factory = None


class TurnLogSubscriber:
    """Writes one row per :class:`TurnEnded`; a budget refusal (``ErrorReported`` with code
    ``budget_exhausted``) before it marks that turn as refused."""

    def __init__(self, turn_log: TurnLog, prices: Prices, wallclock: Callable[[], float]) -> None:
        self.turn_log = turn_log
        self.prices = prices
        self.wallclock = wallclock
        self._refused: set[int] = set()
        self._failed = False

    def __call__(self, event: KioskEvent) -> None:
        match event:
            case ErrorReported(code="budget_exhausted", turn_id=turn_id):
                self._refused.add(turn_id)
                if len(self._refused) > 64:  # a turn that never ended must not pile up
                    self._refused.discard(min(self._refused))
            case TurnEnded(summary=s):
                refused = s.turn_id in self._refused
                self._refused.discard(s.turn_id)
                try:
                    self.turn_log.add(
                        s,
                        turn_kind(s, refused),
                        estimated_usd(s.usage, self.prices),
                        self.wallclock(),
                    )
                except sqlite3.Error as exc:
                    if not self._failed:
                        log.error(
                            "turn log %s: %s; turns are not recorded", self.turn_log.path, exc
                        )
                    self._failed = True
            case _:
                pass


def open_turn_log(state_dir: Path | str, retention_days: int) -> TurnLog:
    return TurnLog(Path(state_dir) / TURN_LOG_FILE, retention_days)

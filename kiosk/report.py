"""`kiosk report`: per-day turns and cost, and the questions the knowledge base could not answer.

Reads the turn log the daemon keeps (``<state_dir>/turns.sqlite``, see :mod:`kiosk.turnlog`).
The second part is the list a librarian or the front desk works through: questions with no
grounded answer (answered without a source, "don't know", or failed), grouped by similarity so
that ten ways of asking for the cafeteria's hours are one line with a count, most frequent
first.

Similarity is character n-gram overlap (trigrams; bigrams for text without spaces such as
Japanese) of the normalised question: cheap, language-agnostic and good enough to merge
rephrasings that share their key words; it does not pretend to understand meaning.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sqlite3
import sys
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from kiosk.turnlog import KINDS, TURN_LOG_FILE, TurnLog

UNANSWERED_KINDS = ("ungrounded", "dont_know", "error")
SIMILAR = 0.45  # Jaccard overlap of n-gram sets above which two questions are one group
MAX_GROUPS = 50


@dataclass(slots=True)
class DayTotals:
    day: str
    turns: int = 0
    grounded: int = 0
    ungrounded: int = 0
    dont_know: int = 0
    errors: int = 0
    refused: int = 0
    upstream_audio_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0


@dataclass(slots=True)
class QuestionGroup:
    question: str  # the most recent wording
    count: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    last_day: str = ""
    examples: list[str] = field(default_factory=list)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def _grams(text: str) -> frozenset[str]:
    norm = _normalise(text)
    n = 3 if " " in norm else 2  # no spaces: Japanese-like text, where words are ~2 chars
    padded = f" {norm} "
    return frozenset(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def day_totals(rows: list[sqlite3.Row]) -> list[DayTotals]:
    days: dict[str, DayTotals] = {}
    for r in rows:
        d = days.setdefault(r["day"], DayTotals(r["day"]))
        d.turns += 1
        kind = r["kind"]
        if kind == "error":
            d.errors += 1
        elif kind in ("grounded", "ungrounded", "dont_know", "refused"):
            setattr(d, kind, getattr(d, kind) + 1)
        d.upstream_audio_s = round(d.upstream_audio_s + r["upstream_audio_s"], 3)
        d.tokens_in += r["tokens_in"]
        d.tokens_out += r["tokens_out"]
        d.usd = round(d.usd + r["usd"], 6)
    return [days[k] for k in sorted(days)]


def unanswered_groups(rows: list[sqlite3.Row]) -> list[QuestionGroup]:
    """Questions without a grounded answer, grouped by similarity, most frequent first."""
    groups: list[tuple[frozenset[str], QuestionGroup]] = []
    for r in rows:  # oldest first: a group's question ends up as its latest wording
        question = r["question"].strip()
        if r["kind"] not in UNANSWERED_KINDS or not question:
            continue
        grams = _grams(question)
        best = max(groups, key=lambda g: _jaccard(g[0], grams), default=None)
        if best is not None and _jaccard(best[0], grams) >= SIMILAR:
            group = best[1]
        else:
            group = QuestionGroup(question)
            groups.append((grams, group))
        group.count += 1
        group.kinds[r["kind"]] = group.kinds.get(r["kind"], 0) + 1
        group.last_day = r["day"]
        if question not in group.examples and len(group.examples) < 3:
            group.examples.append(question)
        group.question = question
    ordered = sorted((g for _, g in groups), key=lambda g: (-g.count, g.question))
    return ordered[:MAX_GROUPS]


def build_report(turn_log: TurnLog, since: str = "") -> dict[str, Any]:
    rows = turn_log.rows(since)
    days = day_totals(rows)
    return {
        "since": since or (days[0].day if days else ""),
        "days": [asdict(d) for d in days],
        "unanswered": [asdict(g) for g in unanswered_groups(rows)],
    }


def _text(report: dict[str, Any]) -> str:
    out = io.StringIO()
    head = (
        "day",
        "turns",
        "grounded",
        "ungrounded",
        "dont_know",
        "errors",
        "refused",
        "upstream_s",
        "tokens_in",
        "tokens_out",
        "usd",
    )
    out.write(
        "{:<10} {:>5} {:>8} {:>10} {:>9} {:>6} {:>7} {:>10} {:>9} {:>10} {:>8}\n".format(*head)
    )
    for d in report["days"]:
        out.write(
            f"{d['day']:<10} {d['turns']:>5} {d['grounded']:>8} {d['ungrounded']:>10} "
            f"{d['dont_know']:>9} {d['errors']:>6} {d['refused']:>7} "
            f"{d['upstream_audio_s']:>10.1f} {d['tokens_in']:>9} {d['tokens_out']:>10} "
            f"{d['usd']:>8.2f}\n"
        )
    if not report["days"]:
        out.write("(no turns recorded)\n")
    out.write("\nquestions without a grounded answer (most frequent first):\n")
    for g in report["unanswered"]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g["kinds"].items()))
        out.write(f"{g['count']:>4}x  {g['question']}  ({kinds}; last {g['last_day']})\n")
    if not report["unanswered"]:
        out.write("   (none)\n")
    return out.getvalue()


def _csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    fields = list(DayTotals.__dataclass_fields__)
    writer.writerow(fields)
    for d in report["days"]:
        writer.writerow([d[f] for f in fields])
    writer.writerow([])
    writer.writerow(["count", "question", "kinds", "last_day"])
    for g in report["unanswered"]:
        kinds = ";".join(f"{k}={n}" for k, n in sorted(g["kinds"].items()))
        writer.writerow([g["count"], g["question"], kinds, g["last_day"]])
    return out.getvalue()


def cmd_report(args: argparse.Namespace) -> int:
    from kiosk.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, load_settings
    from kiosk.errors import ConfigError

    since = ""
    if args.since:
        try:
            since = date.fromisoformat(args.since).isoformat()
        except ValueError:
            print(
                f"kiosk report: --since: expected YYYY-MM-DD, got {args.since!r}", file=sys.stderr
            )
            return EXIT_USAGE
    state_dir = args.state_dir
    if state_dir is None:
        try:
            state_dir = load_settings(args, require_key=False).service.state_dir
        except ConfigError as exc:
            print(f"kiosk: {exc}", file=sys.stderr)
            return EXIT_USAGE
    path = Path(state_dir) / TURN_LOG_FILE
    if not path.is_file():
        print(
            f"kiosk report: no turn log at {path} (the daemon writes it; "
            "service.turn_log_days = 0 turns it off)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    try:
        with TurnLog(path, retention_days=0) as turn_log:
            report = build_report(turn_log, since)
    except sqlite3.Error as exc:
        print(f"kiosk report: {path}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif args.csv:
        sys.stdout.write(_csv(report))
    else:
        sys.stdout.write(_text(report))
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report",
        parents=[common],
        help="turns, grounding and cost per day; the questions that had no grounded answer",
        description="Per day: turns, answered with citations (grounded), answered without "
        "grounding, 'don't know' answers, errors, refusals by budget, upstream audio seconds, "
        "tokens and estimated USD; then the questions without a grounded answer, grouped by "
        f"similarity, most frequent first. Kinds: {', '.join(KINDS)}. Reads "
        f"<service.state_dir>/{TURN_LOG_FILE}. Exit codes: 0 ok, 1 no turn log or unreadable, "
        "2 bad usage or configuration.",
    )
    p.add_argument("--since", metavar="DATE", help="first day to include (YYYY-MM-DD)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--csv", action="store_true", help="CSV: the day table, then the questions")
    p.add_argument("--state-dir", metavar="DIR", help="override service.state_dir")
    p.set_defaults(func=cmd_report)

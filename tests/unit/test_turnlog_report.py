"""Turn log (real SQLite), `kiosk report` (in-process CLI) and the node_exporter textfile."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import CostSettings
from kiosk.core.bus import EventStream
from kiosk.core.events import (
    Citation,
    ErrorReported,
    State,
    StateChanged,
    TurnEnded,
    TurnSummary,
    Usage,
)
from kiosk.metrics import TextfileMetrics
from kiosk.prices import resolve_prices
from kiosk.turnlog import TURN_LOG_FILE, TurnLog, TurnLogSubscriber, clean_text, turn_kind

PRICES = resolve_prices("gpt-realtime", CostSettings())


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def summary(turn_id: int = 1, **kw: object) -> TurnSummary:
    base: dict[str, object] = dict(
        turn_id=turn_id,
        started_t_s=0.0,
        ended_t_s=3.0,
        trigger="vad",
        outcome="answered",
        user_speech_s=1.5,
        upstream_audio_s=1.8,
        response_latency_ms=700.0,
        transcript="where is the restroom",
        answer_transcript="Second floor, left.",
        citations=(Citation("faq#1", "Restrooms"),),
        usage=Usage(input_audio=100, output_audio=300),
    )
    base.update(kw)
    return TurnSummary(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "refused", "kind"),
    [
        ({}, False, "grounded"),
        ({"citations": ()}, False, "ungrounded"),
        ({"citations": (), "answer_transcript": "Sorry, I don't know that."}, False, "dont_know"),
        (
            {"citations": (), "answer_transcript": "申し訳ありません、わかりません。"},
            False,
            "dont_know",
        ),
        ({"outcome": "error", "citations": ()}, False, "error"),
        ({"outcome": "stalled"}, False, "error"),
        ({"outcome": "error", "citations": ()}, True, "refused"),
        ({"outcome": "empty"}, False, "other"),
        ({"outcome": "interrupted"}, False, "grounded"),
    ],
)
def test_turn_kind(kw: dict[str, object], refused: bool, kind: str) -> None:
    assert turn_kind(summary(**kw), refused) == kind


def test_clean_text_strips_control_characters_and_caps() -> None:
    assert clean_text("a\x1b[31mb\nc\u202ed", 100) == "a [31mb cd"
    assert len(clean_text("x" * 10_000)) == 500


def fill(path: Path, turns: list[tuple[str, TurnSummary, bool]]) -> None:
    clock = {"now": 0.0}
    with TurnLog(path, retention_days=3650, tz=UTC) as log:
        bus = EventStream()
        bus.subscribe(TurnLogSubscriber(log, PRICES, lambda: clock["now"]))
        for when, s, refused in turns:
            clock["now"] = at(when)
            if refused:
                bus.publish(ErrorReported(0.0, "daily cap spent", "budget_exhausted", s.turn_id))
            bus.publish(TurnEnded(s))


CAFETERIA = [
    "when does the cafeteria open",
    "When does the cafeteria open?",
    "what time does the cafeteria open",
]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    turns: list[tuple[str, TurnSummary, bool]] = [
        ("2026-11-30T09:00:00", summary(1), False),
        ("2026-11-30T09:05:00", summary(2, outcome="error", citations=()), True),
        (
            "2026-12-01T10:00:00",
            summary(3, transcript=CAFETERIA[0], citations=(), answer_transcript="I don't know."),
            False,
        ),
        ("2026-12-01T10:01:00", summary(4, transcript=CAFETERIA[1], citations=()), False),
        (
            "2026-12-01T11:00:00",
            summary(
                5,
                transcript="Is there wifi for guests",
                citations=(),
                answer_transcript="I could not find that.",
            ),
            False,
        ),
        (
            "2026-12-01T12:00:00",
            summary(6, transcript=CAFETERIA[2], citations=(), outcome="stalled"),
            False,
        ),
        ("2026-12-01T13:00:00", summary(7, transcript="駐車場はありますか", citations=()), False),
    ]
    fill(tmp_path / TURN_LOG_FILE, turns)
    return tmp_path


def test_report_json_counts_per_day_and_groups_unanswered_questions(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--state-dir", str(state_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    day1, day2 = report["days"]
    assert (day1["day"], day1["turns"], day1["grounded"], day1["refused"]) == (
        "2026-11-30",
        2,
        1,
        1,
    )
    assert (day2["turns"], day2["ungrounded"], day2["dont_know"], day2["errors"]) == (5, 2, 2, 1)
    assert day1["usd"] == pytest.approx(2 * (100 * 32 + 300 * 64) / 1e6)
    groups = report["unanswered"]
    assert groups[0]["count"] == 3 and groups[0]["question"] == CAFETERIA[2]
    assert groups[0]["kinds"] == {"dont_know": 1, "error": 1, "ungrounded": 1}
    assert {g["question"] for g in groups[1:]} == {"Is there wifi for guests", "駐車場はありますか"}
    assert "where is the restroom" not in json.dumps(groups)  # grounded answers are not listed


def test_report_since_text_and_csv(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--state-dir", str(state_dir), "--since", "2026-12-01"]) == 0
    text = capsys.readouterr().out
    assert "2026-11-30" not in text and "2026-12-01" in text
    assert "   3x  what time does the cafeteria open" in text
    assert main(["report", "--state-dir", str(state_dir), "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("day,turns,grounded,ungrounded,dont_know,errors,refused")
    assert lines[1].startswith("2026-11-30,2,1,0,0,0,1,")


def test_report_usage_errors_and_missing_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--state-dir", str(tmp_path), "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["report", "--state-dir", str(tmp_path)]) == 1
    assert "no turn log" in capsys.readouterr().err


def test_retention_deletes_old_rows(tmp_path: Path) -> None:
    path = tmp_path / TURN_LOG_FILE
    with TurnLog(path, retention_days=30, tz=UTC) as log:
        log.add(summary(1), "grounded", 0.0, at("2026-01-01T12:00:00"))
        log.add(summary(2), "grounded", 0.0, at("2026-03-01T12:00:00"))  # a new day prunes
        assert [r["turn_id"] for r in log.rows()] == [2]


def test_no_audio_and_bounded_text_stored(tmp_path: Path) -> None:
    path = tmp_path / TURN_LOG_FILE
    with TurnLog(path, retention_days=30, tz=UTC) as log:
        log.add(summary(1, transcript="q" * 100_000 + "\x1b]0;pwned\x07"), "ungrounded", 0.0, 0.0)
    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(turns)")}
    (question,) = db.execute("SELECT question FROM turns").fetchone()
    db.close()
    assert not any("audio" in c and c != "upstream_audio_s" for c in columns)
    assert len(question) == 500 and "\x1b" not in question


def test_metrics_textfile_is_rewritten_atomically_with_state_turns_and_histogram(
    tmp_path: Path,
) -> None:
    prom = tmp_path / "kiosk.prom"
    metrics = TextfileMetrics(prom, PRICES, wallclock=lambda: at("2026-12-01T10:00:00"))
    bus = EventStream()
    bus.subscribe(metrics)
    bus.publish(
        StateChanged(t_s=1.0, old=State.IDLE, new=State.LISTENING, reason="speech", turn_id=1)
    )
    text = prom.read_text()
    assert 'kiosk_state{state="listening"} 1' in text
    assert 'kiosk_state{state="idle"} 0' in text
    bus.publish(TurnEnded(summary(1, response_latency_ms=700.0)))
    bus.publish(TurnEnded(summary(2, response_latency_ms=1800.0, citations=())))
    bus.publish(ErrorReported(5.0, "upstream unreachable\nFAKE 1", "timeout", 3))
    text = prom.read_text()
    assert 'kiosk_turns_total{outcome="answered"} 2' in text
    assert 'kiosk_turn_kinds_total{kind="grounded"} 1' in text
    assert 'kiosk_turn_kinds_total{kind="ungrounded"} 1' in text
    assert 'kiosk_response_latency_seconds_bucket{le="0.5"} 0' in text
    assert 'kiosk_response_latency_seconds_bucket{le="0.75"} 1' in text
    assert 'kiosk_response_latency_seconds_bucket{le="2"} 2' in text
    assert 'kiosk_response_latency_seconds_bucket{le="+Inf"} 2' in text
    assert "kiosk_upstream_audio_seconds_total 3.600" in text
    assert f"kiosk_cost_usd_today {2 * (100 * 32 + 300 * 64) / 1e6:.6f}" in text
    assert 'kiosk_last_error_timestamp_seconds{error="timeout"}' in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk.prom"]  # no temp file left


def test_metrics_unwritable_directory_logs_once_and_keeps_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = TextfileMetrics(tmp_path / "missing" / "kiosk.prom", PRICES)
    metrics(StateChanged(t_s=1.0, old=State.IDLE, new=State.LISTENING, reason="speech", turn_id=1))
    metrics(StateChanged(t_s=2.0, old=State.LISTENING, new=State.IDLE, reason="done", turn_id=1))
    assert caplog.text.count("metrics textfile") == 1

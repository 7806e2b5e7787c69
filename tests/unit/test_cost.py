"""kiosk.cost: the SQLite token ledger (real SQLite in tmp_path), prices and caps."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.config import CostSettings
from kiosk.core.bus import EventStream
from kiosk.core.events import TurnEnded, TurnSummary, Usage, UsageReported
from kiosk.cost import (
    MAX_OPEN_TURNS,
    CostLedger,
    CostLedgerSubscriber,
    estimated_usd,
    open_ledger,
    tokens,
)
from kiosk.prices import resolve_prices

PRICES = CostSettings()
LIST = resolve_prices("gpt-realtime", PRICES)  # the table's gpt-realtime prices


def wallclock(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


DAY1 = wallclock("2026-03-31T10:00:00")
DAY1_LATE = wallclock("2026-03-31T23:59:59")
DAY2 = wallclock("2026-04-01T00:00:01")
DAY3 = wallclock("2026-04-02T12:00:00")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[CostLedger]:
    with CostLedger(tmp_path / "cost.sqlite", PRICES, tz=UTC) as led:
        yield led


def test_estimated_usd_uses_per_million_prices() -> None:
    usage = Usage(
        input_text=1_000_000, input_audio=1_000_000, output_text=1_000_000, output_audio=1_000_000
    )
    assert estimated_usd(usage, LIST) == pytest.approx(4.0 + 32.0 + 16.0 + 64.0)


def test_cached_input_is_charged_at_cached_price_taken_from_text_first() -> None:
    usage = Usage(input_text=1_000_000, input_audio=1_000_000, input_cached=1_500_000)
    # 1M cached from text, 0.5M from audio: 0.5M audio at full price, 1.5M at cached price.
    assert estimated_usd(usage, LIST) == pytest.approx(0.5 * 32.0 + 1.5 * 0.4)


def test_cached_larger_than_input_is_clamped() -> None:
    usage = Usage(input_text=10, input_cached=1_000_000)
    assert estimated_usd(usage, LIST) == pytest.approx(10 * 0.4e-6)


def test_tokens_counts_input_and_output_but_not_cached_twice() -> None:
    assert tokens(Usage(1, 2, 3, 4, 5)) == 1 + 2 + 4 + 5


def test_record_then_totals_sum_the_day_and_month(ledger: CostLedger) -> None:
    ledger.record(1, Usage(10, 100, 5, 20, 200), DAY1)
    ledger.record(1, Usage(1, 0, 0, 2, 0), DAY1_LATE)
    ledger.record(2, Usage(3, 30, 0, 4, 40), DAY2)
    assert ledger.totals("day", DAY1) == Usage(11, 100, 5, 22, 200)
    assert ledger.totals("day", DAY2) == Usage(3, 30, 0, 4, 40)
    assert ledger.totals("month", DAY1) == Usage(11, 100, 5, 22, 200)  # March
    assert ledger.totals("month", DAY3) == Usage(3, 30, 0, 4, 40)  # April
    assert ledger.turn_usage(1) == Usage(11, 100, 5, 22, 200)


def test_totals_survive_reopening_the_file(tmp_path: Path) -> None:
    with CostLedger(tmp_path / "cost.sqlite", PRICES, tz=UTC) as first:
        first.record(7, Usage(output_audio=500), DAY1)
    with CostLedger(tmp_path / "cost.sqlite", PRICES, tz=UTC) as again:
        assert again.totals("day", DAY1) == Usage(output_audio=500)


def test_open_ledger_creates_state_dir_and_file(tmp_path: Path) -> None:
    led = open_ledger(tmp_path / "state" / "kiosk", PRICES)
    led.record(1, Usage(input_audio=5), DAY1)
    led.close()
    assert (tmp_path / "state" / "kiosk" / "cost.sqlite").is_file()


def test_negative_or_absurd_counts_from_the_wire_are_recorded_as_zero(ledger: CostLedger) -> None:
    ledger.record(1, Usage(-5, 10**12, 3, 4, 5), DAY1, upstream_audio_s=-1.0)
    assert ledger.totals("day", DAY1) == Usage(0, 0, 3, 4, 5)
    assert ledger.upstream_audio_s("day", DAY1) == 0.0


def test_upstream_audio_seconds_accumulate(ledger: CostLedger) -> None:
    ledger.add_upstream_audio(1, 2.5, DAY1)
    ledger.add_upstream_audio(2, 1.5, DAY1)
    assert ledger.upstream_audio_s("day", DAY1) == pytest.approx(4.0)
    assert ledger.totals("day", DAY1) == Usage()


def test_no_caps_means_always_ok(ledger: CostLedger) -> None:
    ledger.record(1, Usage(output_audio=10**8), DAY1)
    assert ledger.budget_left(DAY1).ok


def test_daily_cap_spent_stops_new_turns_until_next_day(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prices = replace(PRICES, daily_token_cap=1000)
    with CostLedger(tmp_path / "c.sqlite", prices, tz=UTC) as led:
        led.record(1, Usage(input_audio=600, output_audio=400), DAY1)
        with caplog.at_level(logging.ERROR, logger="kiosk.cost"):
            status = led.budget_left(DAY1_LATE)
            led.budget_left(DAY1_LATE)
        assert not status.ok
        assert status.reason == "daily token cap reached (1000/1000); new turns are paused"
        assert status.day_tokens == 1000
        assert (
            sum("daily token cap reached" in r.message for r in caplog.records) == 1
        )  # logged once
        assert led.budget_left(DAY2).ok


def test_monthly_cap_spans_days_and_resets_with_the_month(tmp_path: Path) -> None:
    prices = replace(PRICES, monthly_token_cap=100)
    with CostLedger(tmp_path / "c.sqlite", prices, tz=UTC) as led:
        led.record(1, Usage(output_text=60), wallclock("2026-03-02T10:00:00"))
        led.record(2, Usage(output_text=40), wallclock("2026-03-20T10:00:00"))
        status = led.budget_left(DAY1)
        assert not status.ok and "monthly" in status.reason
        assert led.budget_left(DAY2).ok


def test_eighty_percent_of_cap_warns_once_and_still_allows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prices = replace(PRICES, daily_token_cap=1000)
    with CostLedger(tmp_path / "c.sqlite", prices, tz=UTC) as led:
        led.record(1, Usage(output_audio=850), DAY1)
        with caplog.at_level(logging.WARNING, logger="kiosk.cost"):
            assert led.budget_left(DAY1).ok
            assert led.budget_left(DAY1).ok
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert "85 % used" in caplog.records[0].message


def test_corrupt_ledger_file_is_moved_aside_and_counting_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cost.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with (
        caplog.at_level(logging.ERROR, logger="kiosk.cost"),
        CostLedger(path, PRICES, tz=UTC) as led,
    ):
        led.record(1, Usage(input_audio=5), DAY1)
        assert led.totals("day", DAY1) == Usage(input_audio=5)
    assert (tmp_path / "cost.sqlite.corrupt").read_bytes().startswith(b"this is not")
    assert any("moved to" in r.message for r in caplog.records)


def test_unwritable_state_dir_counts_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        caplog.at_level(logging.ERROR, logger="kiosk.cost"),
        CostLedger(blocker / "cost.sqlite", PRICES) as led,
    ):
        led.record(1, Usage(output_text=3), DAY1)
        assert led.totals("day", DAY1) == Usage(output_text=3)
    assert any("in memory" in r.message for r in caplog.records)


def test_subscriber_records_usage_events_and_logs_turn_line(
    ledger: CostLedger, caplog: pytest.LogCaptureFixture
) -> None:
    stream = EventStream()
    stream.subscribe(CostLedgerSubscriber(ledger, lambda: DAY1))
    stream.publish(UsageReported(3, Usage(input_text=100, output_text=10)))
    stream.publish(UsageReported(3, Usage(input_audio=50, output_audio=200)))
    with caplog.at_level(logging.INFO, logger="kiosk.cost"):
        stream.publish(TurnEnded(TurnSummary(3, 0.0, 5.0, "vad", "answered", upstream_audio_s=2.0)))
    assert ledger.turn_usage(3) == Usage(100, 50, 0, 10, 200)
    assert ledger.upstream_audio_s("day", DAY1) == pytest.approx(2.0)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        "turn 3 tokens: in text=100 audio=50 cached=0, out text=10 audio=200; upstream 2.0 s"
    )
    assert "today 360 tokens" in line


def test_subscriber_forgets_usage_of_turns_that_never_end(ledger: CostLedger) -> None:
    subscriber = CostLedgerSubscriber(ledger, lambda: DAY1)
    for turn_id in range(1, 200):
        subscriber(UsageReported(turn_id, Usage(output_text=1)))
    assert ledger.totals("day", DAY1) == Usage(output_text=199)  # every response still counted
    assert subscriber.open_turns == MAX_OPEN_TURNS


counts = st.integers(min_value=0, max_value=10**6)
usages = st.builds(Usage, counts, counts, counts, counts, counts)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(st.tuples(usages, st.floats(min_value=0, max_value=90 * 86400)), max_size=30)
)
def test_totals_equal_the_sum_of_records_in_each_calendar_day_and_month(
    tmp_path: Path, records: list[tuple[Usage, float]]
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.sqlite"  # a fresh ledger per example
    with CostLedger(path, PRICES, tz=UTC) as led:
        for i, (usage, offset) in enumerate(records):
            led.record(i, usage, DAY1 + offset)
        for _, offset in records:
            when = datetime.fromtimestamp(DAY1 + offset, tz=UTC)
            same_day = [
                u
                for u, o in records
                if datetime.fromtimestamp(DAY1 + o, tz=UTC).date() == when.date()
            ]
            same_month = [
                u
                for u, o in records
                if datetime.fromtimestamp(DAY1 + o, tz=UTC).strftime("%Y-%m")
                == when.strftime("%Y-%m")
            ]
            assert led.totals("day", DAY1 + offset) == sum(same_day, Usage())
            assert led.totals("month", DAY1 + offset) == sum(same_month, Usage())


def test_model_table_prices_known_models_and_dated_snapshots() -> None:
    from kiosk.prices import model_prices

    mini, known = model_prices("gpt-realtime-2.1-mini")
    assert known and (mini.price_audio_in, mini.price_audio_out) == (10.0, 20.0)
    full, known = model_prices("gpt-realtime-2025-08-28")
    assert known and (full.price_audio_in, full.price_audio_out) == (32.0, 64.0)


def test_unknown_model_is_priced_high_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.prices"):
        prices = resolve_prices("my-azure-deployment", CostSettings())
    assert prices.price_audio_out == max(
        p.price_audio_out for p in __import__("kiosk.prices").prices.MODEL_PRICES.values()
    )
    assert "my-azure-deployment" in caplog.text and "cost.price_model" in caplog.text


def test_price_overrides_replace_single_table_figures() -> None:
    prices = resolve_prices("gpt-realtime-2.1-mini", replace(PRICES, price_audio_out=25.0))
    assert (prices.price_audio_in, prices.price_audio_out) == (10.0, 25.0)


def test_ledger_prices_follow_its_model(tmp_path: Path) -> None:
    usage = Usage(input_audio=1_000_000, output_audio=1_000_000)
    with CostLedger(tmp_path / "c.sqlite", PRICES, tz=UTC, model="gpt-realtime-2.1-mini") as led:
        assert led.estimated_usd(usage) == pytest.approx(30.0)

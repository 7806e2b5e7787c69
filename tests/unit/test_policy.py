"""kiosk.net.policy: the connection budget, backoff and failure rules, with a float clock."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import ConnectionSettings
from kiosk.core.realtime import RateLimitsUpdated, RealtimeSession, SessionOptions
from kiosk.errors import BudgetExhausted
from kiosk.net.policy import (
    ConnectPolicy,
    Hold,
    ResponseGate,
    failure_kind_for_status,
    parse_retry_after,
)
from tests.unit.helpers import assert_window_never_exceeded

SETTINGS = ConnectionSettings()


# --- ConnectPolicy ---------------------------------------------------------------------------


def policy(**overrides: Any) -> ConnectPolicy:
    return ConnectPolicy(replace(SETTINGS, **overrides), random.Random(42), now=0.0)


def test_fresh_policy_connects_at_once() -> None:
    p = policy()
    assert p.next_attempt_at(0.0) == 0.0
    assert p.can_attempt(0.0)


def test_auth_failure_holds_error_with_a_clear_reason_and_no_retry() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "auth")
    assert p.next_attempt_at(1.0) is None
    assert p.next_attempt_at(3599.0) is None
    assert p.hold is Hold.AUTH
    assert "401/403" in p.reason and "API key" in p.reason and "60 min" in p.reason
    with pytest.raises(BudgetExhausted):
        p.record_attempt(3599.0)


def test_auth_hold_allows_one_probe_an_hour_and_refusal_resumes_the_hold() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "auth")
    assert p.next_attempt_at(3600.0) == 3600.0
    p.record_attempt(3600.0)
    p.record_failure(3600.0, "auth")
    assert p.next_attempt_at(3601.0) is None
    assert p.next_attempt_at(7199.0) is None
    assert p.next_attempt_at(7200.0) == 7200.0


def test_auth_probe_that_gets_through_ends_the_hold() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "auth")
    p.record_attempt(3600.0)
    p.record_success(3600.0)
    assert p.hold is Hold.NONE and p.reason == ""


def test_release_after_auth_hold_allows_connecting_again() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "auth")
    p.release(5.0)
    assert p.next_attempt_at(5.0) == 5.0
    assert p.hold is Hold.NONE and p.reason == ""


def test_rate_limited_waits_at_least_the_retry_hint() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "rate_limited", retry_after_s=20.0)
    at = p.next_attempt_at(0.0)
    assert at is not None and 20.0 <= at <= 21.0  # hint + first jittered backoff (<= 1 s)
    assert "429" in p.reason


def test_rate_limited_without_hint_backs_off() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "rate_limited", retry_after_s=None)
    at = p.next_attempt_at(0.0)
    assert at is not None and 0.0 <= at <= 1.0


def test_absurd_retry_hint_is_capped_at_an_hour() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "rate_limited", retry_after_s=1e12)
    at = p.next_attempt_at(0.0)
    assert at is not None and at <= 3601.0


@pytest.mark.parametrize("kind", ["server", "network"])
def test_server_and_network_failures_retry_with_growing_backoff(kind: str) -> None:
    p = policy(backoff_initial_s=1.0, backoff_max_s=1000.0, max_new_per_minute=600)
    now = 0.0
    waits = []
    for _ in range(8):
        at = p.next_attempt_at(now)
        assert at is not None
        now = at
        p.record_attempt(now)
        p.record_failure(now, kind)  # type: ignore[arg-type]
        waits.append(p.backoff.ceiling_s())
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    assert p.hold is Hold.NONE


def test_three_quick_deaths_hold_error_with_a_clear_reason() -> None:
    p = policy()
    now = 0.0
    for _ in range(3):
        at = p.next_attempt_at(now)
        assert at is not None
        now = at
        p.record_attempt(now)
        p.record_success(now)
        now += 1.0
        p.record_closed(now, lived_s=1.0)
    assert p.next_attempt_at(now) is None
    assert p.hold is Hold.QUICK_DEATHS
    assert "3 connections in a row died" in p.reason


def quick_deaths(p: ConnectPolicy, now: float, count: int) -> float:
    for _ in range(count):
        at = p.next_attempt_at(now)
        assert at is not None
        now = at
        p.record_attempt(now)
        p.record_success(now)
        now += 1.0
        p.record_closed(now, lived_s=1.0)
    return now


def test_quick_death_hold_allows_a_probe_after_cooldown_and_a_quick_probe_death_resumes_it() -> (
    None
):
    p = policy()
    now = quick_deaths(p, 0.0, 3)
    assert p.next_attempt_at(now + 899.0) is None
    now = quick_deaths(p, now + 900.0, 1)  # the probe dies quickly too
    assert p.hold is Hold.QUICK_DEATHS
    assert p.next_attempt_at(now + 1.0) is None


def test_quick_death_hold_ends_when_a_probe_link_lives_or_answers() -> None:
    p = policy()
    now = quick_deaths(p, 0.0, 3) + 900.0
    p.record_attempt(now)
    p.record_success(now)
    assert p.hold is Hold.QUICK_DEATHS  # a handshake alone proves nothing here
    p.record_answered(now + 2.0)
    assert p.hold is Hold.NONE and p.quick_deaths == 0
    now = quick_deaths(p, now + 10.0, 2)
    assert p.hold is Hold.NONE  # the count started again from zero
    p.record_attempt(now + 100.0)
    p.record_closed(now + 200.0, lived_s=100.0)
    assert p.quick_deaths == 0


def test_a_long_lived_link_between_quick_deaths_resets_the_count() -> None:
    p = policy()
    for t, lived in ((0.0, 1.0), (100.0, 1.0), (200.0, 600.0), (900.0, 1.0), (1000.0, 1.0)):
        p.record_attempt(t)
        p.record_closed(t + lived, lived_s=lived)
    assert p.hold is Hold.NONE
    assert p.quick_deaths == 2


def test_expected_close_is_never_a_quick_death() -> None:
    p = policy()
    for t in range(0, 500, 100):
        p.record_attempt(float(t))
        p.record_closed(float(t) + 0.5, lived_s=0.5, expected=True)
    assert p.hold is Hold.NONE and p.quick_deaths == 0


def test_stable_link_resets_backoff() -> None:
    p = policy()
    for t in (0.0, 100.0, 200.0):
        p.record_attempt(t)
        p.record_failure(t, "network")
    assert p.backoff.attempts == 3
    p.record_attempt(300.0)
    p.record_success(300.0)
    p.record_closed(400.0, lived_s=100.0)
    assert p.backoff.attempts == 0
    assert p.next_attempt_at(400.0) == 400.0


def test_record_attempt_before_backoff_elapsed_raises() -> None:
    p = policy()
    p.record_attempt(0.0)
    p.record_failure(0.0, "rate_limited", retry_after_s=10.0)
    with pytest.raises(BudgetExhausted, match="backing off"):
        p.record_attempt(5.0)


def test_record_attempt_past_budget_raises_and_names_the_limit() -> None:
    p = policy(max_new_per_minute=2)
    p.record_attempt(0.0)
    p.record_attempt(0.0)
    with pytest.raises(BudgetExhausted, match="2/min"):
        p.record_attempt(1.0)
    assert p.next_attempt_at(1.0) == pytest.approx(60.0)


def test_should_rollover_after_session_max() -> None:
    p = policy(session_max_s=1500.0)
    assert not p.should_rollover(1499.0, session_started=0.0)
    assert p.should_rollover(1500.0, session_started=0.0)


@dataclass(frozen=True)
class Limit:
    name: str
    remaining: float
    reset_seconds: float
    limit: int = 100


def test_rate_limit_with_nothing_remaining_blocks_responses_until_reset() -> None:
    p = policy()
    p.apply_rate_limits(10.0, [Limit("requests", 5, 1.0), Limit("tokens", 0, 7.5)])
    gate = p.response_gate(11.0)
    assert not gate.ok and gate.until == pytest.approx(17.5)
    assert "tokens" in gate.reason
    assert p.response_gate(17.5).ok


def test_rate_limits_from_the_session_tuples_block_responses() -> None:
    session = RealtimeSession("ga", SessionOptions(instructions="x"))
    session.receive_text(
        '{"type":"rate_limits.updated","rate_limits":[{"name":"requests","limit":100,'
        '"remaining":0,"reset_seconds":2.5},{"name":"tokens","limit":9,"remaining":9,"reset_seconds":1}]}'
    )
    (event,) = session.events_received()
    assert isinstance(event, RateLimitsUpdated)
    p = policy()
    p.apply_rate_limits(0.0, event.limits)
    assert p.response_gate(2.0) == ResponseGate(
        False, 2.5, "requests rate limit reached; resets in 2.5 s"
    )
    assert p.response_gate(2.5).ok


def test_rate_limits_with_remaining_or_garbage_change_nothing() -> None:
    p = policy()
    p.apply_rate_limits(
        0.0,
        [
            Limit("requests", 3, 60.0),
            Limit("tokens", math.nan, 5.0),
            Limit("x", 0, -1.0),
            Limit("y", 0, math.inf),
        ],
    )
    assert p.response_gate(0.0).ok


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "auth"),
        (403, "auth"),
        (429, "rate_limited"),
        (500, "server"),
        (502, "server"),
        (503, "server"),
        (504, "server"),
        (404, "server"),
        (400, "server"),
    ],
)
def test_handshake_status_maps_to_failure_kind(status: int, kind: str) -> None:
    assert failure_kind_for_status(status) == kind


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
    ],
)
def test_retry_after_header_parses_seconds_and_http_dates(
    header: str | None, expected: float | None
) -> None:
    now = 1445412420.0  # 07:27:00 GMT that day
    assert parse_retry_after(header, now) == (
        pytest.approx(expected) if expected is not None else None
    )


# --- the property the deployment cares about -------------------------------------------------

Event = tuple[str, float, float]  # (what, dt_s, param)

events = st.one_of(
    st.tuples(st.just("auth"), st.floats(0, 30), st.just(0.0)),
    st.tuples(st.sampled_from(["server", "network"]), st.floats(0, 30), st.just(0.0)),
    st.tuples(st.just("rate_limited"), st.floats(0, 30), st.floats(-5, 120)),
    st.tuples(st.just("closed"), st.floats(0, 30), st.floats(0, 600)),
    st.tuples(st.just("release"), st.floats(0, 30), st.just(0.0)),
    st.tuples(st.just("try_early"), st.floats(0, 30), st.just(0.0)),
)


@settings(max_examples=500, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=8),
    seed=st.integers(min_value=0, max_value=2**32),
    script=st.lists(events, max_size=150),
)
def test_policy_following_adapter_never_exceeds_budget_under_any_fault_sequence(
    limit: int, seed: int, script: list[Event]
) -> None:
    """An adapter that obeys next_attempt_at never opens more than the budget per minute,
    whatever mix of failures, quick deaths, releases and early attempts happens."""
    p = ConnectPolicy(
        replace(SETTINGS, max_new_per_minute=limit, backoff_initial_s=0.1), random.Random(seed)
    )
    now, opened = 0.0, []
    for what, dt, param in script:
        now += dt
        if what == "release":
            p.release(now)
            continue
        if what == "try_early":
            # A buggy or impatient caller: the policy must refuse rather than let it through.
            try:
                p.record_attempt(now)
                opened.append(now)
            except BudgetExhausted:
                pass
            continue
        at = p.next_attempt_at(now)
        if at is None:
            assert p.reason  # holding ERROR always says why
            continue
        assert at >= now
        now = at
        p.record_attempt(now)
        opened.append(now)
        if what == "closed":
            p.record_success(now)
            now += param
            p.record_closed(now, lived_s=param)
        else:
            p.record_failure(now, what, retry_after_s=param)  # type: ignore[arg-type]
    assert_window_never_exceeded(opened, limit)

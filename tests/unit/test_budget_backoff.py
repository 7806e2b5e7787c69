"""kiosk.net.policy's ConnectionBudget (about 6 new websockets a minute) and Backoff (full
jitter), with a float clock. Split from test_policy.py, which keeps the connect rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.net.policy import Backoff, ConnectionBudget
from tests.unit.helpers import assert_window_never_exceeded

# --- ConnectionBudget ------------------------------------------------------------------------


def test_budget_grants_max_then_refuses_within_the_minute() -> None:
    budget = ConnectionBudget(6, now=0.0)
    assert [budget.try_acquire(0.0) for _ in range(6)] == [True] * 6
    assert budget.try_acquire(0.0) is False
    assert budget.try_acquire(59.9) is False


def test_budget_slot_returns_exactly_sixty_seconds_after_its_grant() -> None:
    budget = ConnectionBudget(2, now=0.0)
    assert budget.try_acquire(0.0)
    assert budget.try_acquire(10.0)
    assert budget.wait_s(30.0) == pytest.approx(30.0)
    assert budget.available_at(30.0) == pytest.approx(60.0)
    assert budget.try_acquire(60.0)
    assert not budget.try_acquire(69.0)
    assert budget.try_acquire(70.0)


def test_budget_refill_does_not_allow_a_second_burst_in_the_same_minute() -> None:
    # A classic token bucket would let 6 through at t=0 and another 5 by t=50.
    budget = ConnectionBudget(6, now=0.0)
    grants = [
        t for t in (0.0,) * 6 + tuple(float(s) for s in range(1, 60)) if budget.try_acquire(t)
    ]
    assert len(grants) == 6


@pytest.mark.parametrize("first", [1.2753041581068405, 0.1, 1e-9, 12345.678901234])
def test_budget_acquire_at_available_at_succeeds_despite_float_round_off(first: float) -> None:
    budget = ConnectionBudget(2, now=0.0)
    assert budget.try_acquire(first)
    assert budget.try_acquire(first + 1.7785935010079275)
    later = first + 3.1
    at = budget.available_at(later)
    assert at > later
    assert budget.try_acquire(at)


def test_budget_clock_going_backwards_gives_no_extra_slots() -> None:
    budget = ConnectionBudget(1, now=100.0)
    assert budget.try_acquire(100.0)
    assert not budget.try_acquire(40.0)  # a clock jump back must not look like "a minute later"
    assert not budget.try_acquire(159.0)
    assert budget.try_acquire(160.0)


def test_budget_used_counts_only_the_last_minute() -> None:
    budget = ConnectionBudget(3, now=0.0)
    budget.try_acquire(0.0)
    budget.try_acquire(30.0)
    assert budget.used(59.0) == 2
    assert budget.used(61.0) == 1


def test_budget_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="max_per_minute"):
        ConnectionBudget(0, now=0.0)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=10),
    steps=st.lists(st.floats(min_value=0.0, max_value=30.0, allow_nan=False), max_size=200),
)
def test_budget_never_exceeds_limit_in_any_minute_for_any_request_times(
    limit: int, steps: list[float]
) -> None:
    budget = ConnectionBudget(limit, now=0.0)
    now, grants = 0.0, []
    for step in steps:
        now += step
        if budget.try_acquire(now):
            grants.append(now)
    assert_window_never_exceeded(grants, limit)


# --- Backoff ---------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_up_to_max() -> None:
    backoff = Backoff(1.0, 10.0, random.Random(1))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling_s())
        backoff.next_delay()
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_delays_stay_within_full_jitter_bounds() -> None:
    backoff = Backoff(0.5, 30.0, random.Random(7))
    for n in range(50):
        ceiling = min(30.0, 0.5 * 2**n)
        assert 0.0 <= backoff.next_delay() <= ceiling


def test_backoff_reset_starts_again_from_initial() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(3))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling_s() == 1.0


def test_backoff_after_thousands_of_failures_does_not_overflow() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(3))
    backoff.attempts = 5000
    assert 0.0 <= backoff.next_delay() <= 60.0


def test_backoff_jitter_is_spread_not_constant() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(11))
    backoff.attempts = 10
    delays = {round(backoff.next_delay(), 3) for _ in range(20)}
    assert len(delays) > 15


def test_backoff_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0, random.Random())
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0, random.Random())

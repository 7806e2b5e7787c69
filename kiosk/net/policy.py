"""When may kiosk open a new Realtime websocket? Pure decisions, no I/O.

This module owns the *rules* of the connection manager (issue 7): the new-connections
budget, exponential backoff with jitter, how each handshake or link failure is classified,
when to stop retrying and hold ERROR, when to roll a session over and when the server's
``rate_limits.updated`` says to hold off. It does not own sockets, tasks or timers: the
adapter (``kiosk.net.connection``) asks :meth:`ConnectPolicy.next_attempt_at`, sleeps until
then, connects, and reports back with ``record_*``.

Time is monotonic seconds passed in as ``now``; randomness comes from an injected
``random.Random``, so a test replays any fault storm exactly.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from kiosk.config import ConnectionSettings
from kiosk.errors import BudgetExhausted

log = logging.getLogger(__name__)

FailureKind = Literal["auth", "rate_limited", "server", "network"]

WINDOW_S = 60.0
# After giving up, one probe connection is allowed this long later (when someone speaks):
# an unattended kiosk heals by itself once the key or quota is fixed, and one attempt per
# quarter hour is no retry storm. Auth failures wait longer: a wrong key stays wrong.
QUICK_DEATH_COOLDOWN_S = 900.0
AUTH_COOLDOWN_S = 3600.0
# A link that dies sooner than this after its handshake "died quickly": a proxy or server
# policy that accepts the upgrade and then drops us, a revoked key on a middle tier...
QUICK_DEATH_S = 5.0


class ConnectionBudget:
    """At most ``max_per_minute`` new connections in *any* 60 s window.

    A classic token bucket (capacity N, refill N/60 per second) lets up to 2N-1 connections
    through in one sliding minute (a full bucket, then the refill). The deployment's limit is
    per minute, and exceeding it turns a flaky link into a lockout, so this keeps the
    timestamps of the last N grants instead: a sliding-window bucket whose "token" for a grant
    comes back exactly 60 s after that grant. Memory is O(N).
    """

    def __init__(self, max_per_minute: int, now: float) -> None:
        if max_per_minute < 1:
            raise ValueError(f"max_per_minute must be >= 1, got {max_per_minute}")
        self.max_per_minute = max_per_minute
        self._grants: deque[float] = deque(maxlen=max_per_minute)
        self._last_now = now

    def _check_clock(self, now: float) -> float:
        # A monotonic clock never goes back; if a caller's does, treat it as standing still
        # rather than handing out tokens from the future.
        self._last_now = max(self._last_now, now)
        return self._last_now

    def available_at(self, now: float) -> float:
        """The earliest time a connection may be opened (>= ``now``)."""
        now = self._check_clock(now)
        if len(self._grants) < self.max_per_minute:
            return now
        # Exactly "oldest grant + window", not now + (that - now): float round-off in the
        # subtraction once let a caller that slept until this instant be refused.
        return max(now, self._grants[0] + WINDOW_S)

    def wait_s(self, now: float) -> float:
        """Seconds until :meth:`try_acquire` would succeed (0.0 = now)."""
        return self.available_at(now) - self._check_clock(now)

    def try_acquire(self, now: float) -> bool:
        """Take one connection slot if the window allows; True when taken."""
        if self.available_at(now) > self._last_now:
            return False
        self._grants.append(self._last_now)
        return True

    def used(self, now: float) -> int:
        """Connections granted in the window ending at ``now``."""
        now = self._check_clock(now)
        return sum(1 for t in self._grants if t > now - WINDOW_S)


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
    Jitter"): the n-th delay is uniform in [0, min(max_s, initial_s * 2**n)].

    Full jitter spreads a fleet of kiosks that lost the same access point; the connection
    budget, not the backoff, is what guarantees the rate limit.
    """

    def __init__(self, initial_s: float, max_s: float, rng: random.Random) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s}, {max_s}")
        self.initial_s = initial_s
        self.max_s = max_s
        self._rng = rng
        self.attempts = 0

    def ceiling_s(self) -> float:
        """Upper bound of the next delay."""
        # min() before the power would overflow after ~1000 failures: cap the exponent.
        exponent = min(self.attempts, 63)
        return min(self.max_s, self.initial_s * math.pow(2.0, exponent))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling_s())
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


class RateLimit(Protocol):
    """One entry of ``rate_limits.updated`` (the realtime session's parsed type fits)."""

    @property
    def name(self) -> str: ...

    @property
    def remaining(self) -> float: ...

    @property
    def reset_seconds(self) -> float: ...


# ``kiosk.core.realtime.RateLimitsUpdated.limits`` entries: (name, limit, remaining, reset_seconds)
RateLimitTuple = tuple[str, int, int, float]
RateLimitEntry = RateLimit | RateLimitTuple


class Hold(enum.Enum):
    """Why :meth:`ConnectPolicy.next_attempt_at` says "do not retry" (None)."""

    NONE = "none"
    AUTH = "auth"  # 401/403: a key or policy problem; retrying cannot fix it
    QUICK_DEATHS = "quick_deaths"  # links keep dying within seconds of the handshake


@dataclass(frozen=True, slots=True)
class ResponseGate:
    """Whether a new ``response.create`` may be sent now (``rate_limits.updated``)."""

    ok: bool
    until: float  # monotonic time the limit resets (== now when ok)
    reason: str = ""


class ConnectPolicy:
    """Connection budget + backoff + failure classification, for one kiosk.

    Calling contract for the adapter::

        at = policy.next_attempt_at(now)
        if at is None: hold ERROR, log policy.reason once, wait for release()/a new config
        else: sleep until at, then
            policy.record_attempt(now)          # consumes a budget slot
            ... handshake ...
            policy.record_success(now)           # or record_failure(now, kind, retry_after_s)
            ... link in use ...
            policy.record_answered(now)          # a turn was answered over it (optional)
            policy.record_closed(now, lived_s)   # any close, ours or theirs

    Holding ERROR works like a circuit breaker: after a cooldown (15 min after quick deaths,
    1 h after 401/403) one probe attempt is allowed; if it fails the same way the hold
    resumes, if it works everything is reset. ``release()`` (a new config) ends it at once.

    ``next_attempt_at`` never returns a time at which the budget would refuse, so an adapter
    that follows it can never exceed ``max_new_per_minute``; ``record_attempt`` raises
    :class:`BudgetExhausted` if the contract is broken anyway.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        rng: random.Random,
        now: float = 0.0,
        *,
        quick_death_s: float = QUICK_DEATH_S,
        quick_death_cooldown_s: float = QUICK_DEATH_COOLDOWN_S,
        auth_cooldown_s: float = AUTH_COOLDOWN_S,
    ) -> None:
        self.settings = settings
        self.budget = ConnectionBudget(settings.max_new_per_minute, now)
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, rng)
        self.quick_death_s = quick_death_s
        self.quick_death_cooldown_s = quick_death_cooldown_s
        self.auth_cooldown_s = auth_cooldown_s
        self.hold = Hold.NONE
        self.hold_until = now  # while holding: when the next probe attempt is allowed
        self.reason = ""  # one line for the log / ERROR state when holding or waiting
        self.quick_deaths = 0
        self.attempts = 0
        self.failures = 0
        self._not_before = now
        self._responses_blocked_until = now
        self._rate_limit_reason = ""

    # --- asking --------------------------------------------------------------------------

    def next_attempt_at(self, now: float) -> float | None:
        """Earliest monotonic time for the next connection attempt; None = hold ERROR.

        The result is >= ``now``; when it equals ``now`` connect at once. While holding,
        None until the cooldown is over, then the time of the probe attempt.
        """
        if self.hold is not Hold.NONE and now < self.hold_until:
            return None
        return max(now, self._not_before, self.budget.available_at(now))

    def can_attempt(self, now: float) -> bool:
        at = self.next_attempt_at(now)
        return at is not None and at <= now

    def should_rollover(self, now: float, session_started: float) -> bool:
        """True when the session is old enough to be replaced before the next turn.

        Call between turns only: rolling over mid-answer would cut the answer. The server
        ends sessions at 30 min (Azure) / 60 min (OpenAI); ``session_max_s`` sits below.
        """
        return now - session_started >= self.settings.session_max_s

    def response_gate(self, now: float) -> ResponseGate:
        """May a new response be requested now, given the last ``rate_limits.updated``?"""
        if now >= self._responses_blocked_until:
            return ResponseGate(True, now)
        return ResponseGate(False, self._responses_blocked_until, self._rate_limit_reason)

    # --- reporting -----------------------------------------------------------------------

    def record_attempt(self, now: float) -> None:
        """A connection attempt starts now: consumes one slot of the budget.

        Raises:
            BudgetExhausted: the caller did not wait for :meth:`next_attempt_at` (a bug), or
                the policy is holding ERROR.
        """
        if self.hold is not Hold.NONE and now < self.hold_until:
            raise BudgetExhausted(f"not connecting: {self.reason}")
        if now < self._not_before:
            raise BudgetExhausted(f"backing off for {self._not_before - now:.1f} s more")
        if not self.budget.try_acquire(now):
            raise BudgetExhausted(
                f"connection budget spent ({self.budget.max_per_minute}/min); "
                f"next slot in {self.budget.wait_s(now):.1f} s"
            )
        self.attempts += 1

    def record_success(self, now: float) -> None:
        """The handshake succeeded. Backoff is *not* reset yet: only a link that stays up
        (see :meth:`record_closed`) proves the fault is gone. A successful handshake does
        end an auth hold (the probe got through: the key works again)."""
        if self.hold is Hold.AUTH:
            self._end_hold("the endpoint accepted the credentials again")
        self.reason = ""

    def record_answered(self, now: float) -> None:
        """A turn was answered over the current link: it is healthy, whatever its age."""
        if self.hold is not Hold.NONE:
            self._end_hold("a turn was answered")
        self.quick_deaths = 0
        self.backoff.reset()

    def record_failure(
        self, now: float, kind: FailureKind, retry_after_s: float | None = None
    ) -> None:
        """The attempt failed before the link was usable.

        Args:
            kind: ``auth`` (401/403: hold ERROR, no retry), ``rate_limited`` (429: back off at
                least ``retry_after_s``), ``server`` (5xx) or ``network`` (DNS, refused,
                timeout, TLS): back off and retry.
            retry_after_s: the server's hint (Retry-After header), if any.
        """
        self.failures += 1
        if kind == "auth":
            self._start_hold(
                now,
                Hold.AUTH,
                self.auth_cooldown_s,
                "the Realtime endpoint refused the credentials (401/403): check the API key, "
                "deployment and endpoint",
            )
            return
        delay = self.backoff.next_delay()
        if kind == "rate_limited":
            hint = retry_after_s if retry_after_s is not None and retry_after_s > 0 else 0.0
            # The hint is a floor: a fleet all honouring the same Retry-After would stampede
            # again in lockstep, so the jittered backoff is added on top.
            delay = min(hint, 3600.0) + delay
            self.reason = f"rate limited (429); retrying in {delay:.1f} s"
        else:
            self.reason = f"{kind} failure; retrying in {delay:.1f} s"
        self._not_before = max(self._not_before, now + delay)
        log.warning("connection: %s", self.reason)

    def record_closed(self, now: float, lived_s: float, *, expected: bool = False) -> None:
        """An established link closed after ``lived_s`` seconds.

        Args:
            expected: we closed it ourselves (idle close, rollover, shutdown): never a fault.
        """
        if expected or lived_s >= self.quick_death_s:
            if self.hold is Hold.QUICK_DEATHS and not expected:
                self._end_hold(f"a link lived {lived_s:.0f} s")
            self.quick_deaths = 0
            self.backoff.reset()
            self._not_before = now if expected else max(self._not_before, now)
            return
        self.quick_deaths += 1
        if self.hold is not Hold.NONE or self.quick_deaths >= self.settings.max_quick_failures:
            self._start_hold(
                now,
                Hold.QUICK_DEATHS,
                self.quick_death_cooldown_s,
                f"{self.quick_deaths} connections in a row died within {self.quick_death_s:.0f} s "
                "of connecting (bad key, quota or server policy?)",
            )
            return
        delay = self.backoff.next_delay()
        self._not_before = max(self._not_before, now + delay)
        self.reason = f"link died after {lived_s:.1f} s; retrying in {delay:.1f} s"
        log.warning("connection: %s", self.reason)

    def apply_rate_limits(self, now: float, limits: Iterable[RateLimitEntry]) -> None:
        """Honour ``rate_limits.updated``: a limit with nothing remaining blocks new responses
        (see :meth:`response_gate`) until it resets. Bad numbers (negative, NaN) are ignored.

        Args:
            limits: ``RateLimitsUpdated.limits`` tuples ``(name, limit, remaining,
                reset_seconds)`` or objects with ``name``/``remaining``/``reset_seconds``.
        """
        for entry in limits:
            name: str
            remaining_raw: object
            reset_raw: object
            if isinstance(entry, tuple):
                if len(entry) != 4:
                    continue
                name, _limit, remaining_raw, reset_raw = entry
            else:
                name, remaining_raw, reset_raw = entry.name, entry.remaining, entry.reset_seconds
            remaining = _finite(remaining_raw)
            reset_s = _finite(reset_raw)
            if remaining is None or reset_s is None or remaining > 0 or reset_s <= 0:
                continue
            until = now + min(reset_s, 3600.0)
            if until > self._responses_blocked_until:
                self._responses_blocked_until = until
                self._rate_limit_reason = (
                    f"{str(name)[:40]} rate limit reached; resets in {reset_s:.1f} s"
                )
                log.warning("connection: %s", self._rate_limit_reason)

    def _start_hold(self, now: float, hold: Hold, cooldown_s: float, why: str) -> None:
        self.hold = hold
        self.hold_until = now + cooldown_s
        self.reason = (
            f"{why}; not retrying for {cooldown_s / 60:.0f} min or until the config changes"
        )
        log.error("connection: %s", self.reason)

    def _end_hold(self, why: str) -> None:
        log.info("connection: leaving %s hold: %s", self.hold.value, why)
        self.hold = Hold.NONE
        self.reason = ""
        self.quick_deaths = 0
        self.backoff.reset()

    def release(self, now: float) -> None:
        """Leave a hold (new config or key, an operator's restart): start afresh."""
        if self.hold is not Hold.NONE:
            log.info("connection: retrying after hold (%s)", self.hold.value)
        self.hold = Hold.NONE
        self.hold_until = now
        self.reason = ""
        self.quick_deaths = 0
        self.backoff.reset()
        self._not_before = now


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def failure_kind_for_status(status: int) -> FailureKind:
    """Classify an HTTP status that refused the websocket upgrade."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if 500 <= status <= 599:
        return "server"
    # 404 (wrong deployment / path), 400 (bad api-version) ... will not fix themselves either,
    # but a misrouted proxy sometimes does; treat as a server fault with backoff, and let the
    # quick-failure rule and the log line carry the diagnosis.
    return "server"


def parse_retry_after(value: str | None, now_wallclock: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent
    or unreadable. Negative results are clamped to 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        # Imported here: the email package (~0.4 MB resident) for a rare header form.
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_wallclock
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)

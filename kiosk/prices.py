"""Realtime model prices (USD per 1M tokens): one table, one lookup.

Each ``response.done`` bills the whole conversation so far as input, and audio tokens cost
several times text tokens, so the per-turn USD figure in the journal line and in the simulate
report has to use the price of the model that actually answered. ``cost.price_*`` keys in the
config override single figures (0 = take it from this table).

Prices are list prices as published for the GA Realtime models (2026); check yours. A model
this table does not know is priced as the most expensive one it does know, with one warning:
an estimate that errs high is the cheap mistake for a budget cap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from kiosk.core.events import Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per 1M tokens; the same names as ``cost.price_*`` in the config."""

    price_audio_in: float
    price_audio_out: float
    price_text_in: float
    price_text_out: float
    price_cached_in: float


_FULL = Prices(32.0, 64.0, 4.0, 16.0, 0.40)
_MINI = Prices(10.0, 20.0, 0.60, 2.40, 0.30)

MODEL_PRICES: dict[str, Prices] = {
    "gpt-realtime": _FULL,
    "gpt-realtime-1.5": _FULL,
    "gpt-realtime-2": _FULL,
    "gpt-realtime-2.1": _FULL,
    "gpt-realtime-mini": _MINI,
    "gpt-realtime-2.1-mini": _MINI,
    # Shut down by OpenAI; kept so an old ledger or an Azure deployment still prices sanely.
    "gpt-4o-realtime-preview": Prices(40.0, 80.0, 5.0, 20.0, 2.50),
    "gpt-4o-mini-realtime-preview": _MINI,
}

# Dated snapshots ("gpt-realtime-2025-08-28") price as their family.
_MOST_EXPENSIVE = max(MODEL_PRICES.values(), key=lambda p: p.price_audio_out)

PRICE_KEYS = (
    "price_audio_in",
    "price_audio_out",
    "price_text_in",
    "price_text_out",
    "price_cached_in",
)


def model_prices(model: str) -> tuple[Prices, bool]:
    """Prices of ``model`` and whether the table knows it (longest known prefix wins)."""
    name = model.strip().lower()
    if name in MODEL_PRICES:
        return MODEL_PRICES[name], True
    for known in sorted(MODEL_PRICES, key=len, reverse=True):
        if name.startswith(known + "-"):
            return MODEL_PRICES[known], True
    return _MOST_EXPENSIVE, False


def resolve_prices(model: str, overrides: object) -> Prices:
    """The table's prices for ``model`` with every non-zero ``cost.price_*`` of ``overrides``.

    ``overrides`` is a :class:`~kiosk.config.CostSettings` (anything with the price attributes).
    """
    base, known = model_prices(model)
    chosen = {k: float(getattr(overrides, k, 0.0) or 0.0) for k in PRICE_KEYS}
    if not known and not all(chosen.values()):
        log.warning(
            "cost: no price table for model %r; estimating with the most expensive known model "
            "(set cost.price_model or cost.price_* to fix)",
            model[:80],
        )
    return replace(base, **{k: v for k, v in chosen.items() if v > 0})


def estimated_usd(usage: Usage, prices: Prices) -> float:
    """Estimated price of ``usage`` in USD.

    The API reports cached input as one number inside the text+audio input counts. It is
    taken off the cheaper text input first, so the estimate errs high, never low: a budget
    that under-counts is the expensive mistake.
    """
    cached = max(0, min(usage.input_cached, usage.input_total))
    cached_from_text = min(cached, usage.input_text)
    cached_from_audio = cached - cached_from_text
    per_token = 1e-6
    return per_token * (
        (usage.input_text - cached_from_text) * prices.price_text_in
        + (usage.input_audio - cached_from_audio) * prices.price_audio_in
        + cached * prices.price_cached_in
        + usage.output_text * prices.price_text_out
        + usage.output_audio * prices.price_audio_out
    )

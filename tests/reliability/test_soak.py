"""A short soak in CI: ten simulated minutes of lobby audio (the hour-long one is
``bench/bench_soak.py``). Nothing leaks, noise opens no turns, only speech goes upstream.
It runs in a fresh interpreter: resident memory is measured for the whole process."""

from __future__ import annotations

from .soak import soak_in_fresh_process

MB = 1024 * 1024


def test_ten_simulated_minutes_leak_nothing_and_stream_only_speech() -> None:
    result = soak_in_fresh_process(600.0, seed=5)
    assert result.simulated_s >= 600.0
    assert result.spoken >= 10
    assert result.turns == result.spoken  # lobby noise and silence opened no turn
    assert result.outcomes == {"answered": result.turns}
    assert result.rss_growth_bytes < 5 * MB
    assert result.fd_growth <= 0
    assert result.task_growth <= 0
    assert result.upstream_s <= result.upstream_allowed_s
    assert abs(result.server_audio_s - result.upstream_s) < 0.01 * result.upstream_s + 0.1
    tokens = result.tokens.input_total + result.tokens.output_total
    assert tokens > 0 and result.ledger_tokens_today == tokens  # the cost ledger saw every response
    assert result.max_connections_per_minute <= 6
    assert result.validation_errors == []

"""Soak: simulated hours of lobby audio (speech, silence, noise) through the real pipeline
and the fake Realtime server at accelerated time. Goals from issue 7: RSS growth < 5 MB,
no leaked fds or tasks, upstream audio <= 1.15 x speech (+ the pre-roll of each turn)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.reliability.soak import soak


def run(quick: bool) -> list[dict[str, Any]]:
    hours = 0.25 if quick else 2.0
    r = asyncio.run(soak(hours * 3600.0))
    per_turn_extra = (r.upstream_s - r.speech_s) / r.turns if r.turns else 0.0
    note = f"{r.simulated_s / 3600:.2f} simulated h in {r.wall_s:.0f} s wall, {r.turns} turns"
    return [
        {
            "name": "rss_growth_mb",
            "value": round(r.rss_growth_bytes / 2**20, 2),
            "goal": "< 5",
            "note": note,
        },
        {"name": "fd_growth", "value": r.fd_growth, "goal": "<= 0", "note": "after idle close"},
        {
            "name": "task_growth",
            "value": r.task_growth,
            "goal": "<= 0",
            "note": "asyncio.all_tasks()",
        },
        {
            "name": "upstream_over_speech",
            "value": round(r.upstream_ratio, 3),
            "goal": "<= 1.15 (+pre-roll)",
            "note": f"{r.upstream_s:.0f} s sent for {r.speech_s:.0f} s voiced; "
            f"+{per_turn_extra:.2f} s/turn (pre-roll {r.preroll_s:.1f} s); "
            f"bound {r.upstream_allowed_s:.0f} s",
        },
        {
            "name": "outcomes",
            "value": r.outcomes,
            "goal": "all answered",
            "note": f"{r.spoken} utterances fed",
        },
        {
            "name": "connections_max_per_min",
            "value": r.max_connections_per_minute,
            "goal": "<= 6",
            "note": f"{r.connections} connections (idle close + reconnect)",
        },
        {
            "name": "retained_turn_summaries",
            "value": r.retained_summaries,
            "goal": "bounded",
            "note": "KioskPipeline.summaries grows one per turn",
        },
        {
            "name": "tokens",
            "value": r.tokens.input_total + r.tokens.output_total,
            "goal": "= ledger",
            "note": f"ledger today: {r.ledger_tokens_today}",
        },
        {
            "name": "simulated_speedup",
            "value": round(r.simulated_s / r.wall_s),
            "goal": "",
            "note": "x real time",
        },
    ]

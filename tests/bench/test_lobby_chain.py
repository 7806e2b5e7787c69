"""lobby_chain's pause rules and chain on hand-made frame traces: a rule pauses after its
number of loud first-opinion frames, relaxes only where the canceller is trusted, and a
pause before the visitor's onset counts as a self-pause."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import lobby_chain as chain


def frame(level: float, *, trusted: bool = True, first: bool = True) -> dict:
    return {"level": level, "bar": -45.0, "first": first, "confirmed": False, "trusted": trusted,
            "guarded": True, "in_speech": False}


def run(levels: list[float], onset_s: float | None, trusted: bool = True) -> dict:
    return {"mix": "m", "kind": "bargein", "echo_db": -12.0, "mode": "speex-warm",
            "frames": [frame(x, trusted=trusted) for x in levels], "holds": [], "flushes": [],
            "onset_s": onset_s, "answer_start": 0, "delay_s": None, "self": []}


def test_a_rule_pauses_after_its_frames_and_only_relaxes_where_the_canceller_is_trusted():
    r = run([-60, -40, -40, -40, -60], None)
    assert chain.pauses(r, 3, 2, 0.0) == [3]
    assert chain.pauses(r, 1, 1, 0.0) == [1, 2, 3]
    assert chain.pauses(run([-60, -40, -40, -40], None, trusted=False), 1, 1, 0.0) == [3]
    assert chain.pauses(run([-60, -47, -47, -47], None), 3, 2, -3.0) == [3]
    assert chain.pauses(run([-60, -47, -47, -47], None), 3, 2, 0.0) == []


def test_a_pause_before_the_onset_is_a_self_pause_and_the_chain_is_timed_from_the_onset():
    early = run([-40, -40, -40] + [-60] * 10, 0.2)  # loud residual before the visitor
    late = run([-60] * 10 + [-40] * 4, 0.19)  # the visitor: over the bar from frame 10
    late["holds"] = [(12, True)]
    out = chain.score([early, late])
    shipped = out["rules"][0]
    assert shipped["runs_with_a_self_pause"] == ["m speex-warm -12 dB"]
    row = out["chain_warm_minus12"][1]
    assert row["first_frame_over_bar_ms"] == 30 and row["paused_after_frame_ms"] == 70
    assert row["speaker_silent_ms"] == 90

"""bench/fast37_compare.py: a variant's replay against main's, per trace: barge-ins made faster
or slower, self-pauses changed, the -12 dB later-answer p95; and what paused each barge-in."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import fast37_compare as fc  # noqa: E402


def _run(mix, silent, selfs=(), kind="bargein", echo_db=-12.0, mode="speex-later"):
    summary = {"mix": mix, "kind": kind, "echo_db": echo_db, "mode": mode,
               "speaker_silent_ms": silent, "self_pauses_s": list(selfs), "warm_suspect": 0}
    return (summary, [], 10.0, f"/t/{mix}.pkl")


def test_faster_slower_and_self_pauses_are_counted_per_trace():
    base = [_run("a", 200), _run("b", 100), _run("c", None, kind="echo"), _run("d", 120, echo_db=-6.0)]
    var = [_run("a", 120), _run("b", 140), _run("c", None, (5.2,), kind="echo"), _run("d", 120, echo_db=-6.0)]
    got = fc.compare(base, var)
    assert (got["faster"], got["slower"]) == (1, 1)
    assert [c["trace"] for c in got["self_pause_changes"]] == ["/t/c.pkl"]
    assert got["later_12db_n"] == 2 and got["later_12db_mean"] == [150.0, 130.0]


def test_what_paused_the_answer():
    frames = [{"sus": 40, "dt": True, "path": "cons"}, {"sus": 40, "dt": False}, {"sus": 0, "rsus": 40}]
    assert [fc.paused_by(frames, k) for k in range(3)] == ["dt-cons", "first-opinion", "raw-guard"]
    assert fc.paused_by(frames, None) is None
    assert fc.pause_frame({"speaker_silent_ms": 160}, 11.24) == 568  # (as lobby_aec_replay counts)

"""rig47: rule A's evaluation (bench/rig47_rule.py) on made-up rows, without a sound server: which abs
rows are glitched (gaps after the start-up only), the paired shift over mixes clean on both pipes, the
self-pause count and where a mid-row gap fell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def _row(pipe: str, mix: str, delay: float | None, **room: Any) -> dict[str, Any]:
    base = {"answer_message_s": 10.0, "onset_s": 12.0, "last_loud_s": 15.0, "pacat_underruns": [],
            "parec_overruns": [], "pacat_latency_at_onset_ms": 23.0 if pipe == "abs20" else 53.0,
            "pacat_latency_ms_per_s": [(0, 25.0), (1, 25.0), (2, 24.0), (3, 23.0)]}  # fmt: skip
    base.update(room)
    return {"mix": mix, "kind": "bargein", "echo_db": -12.0, "room_pipe": pipe, "delay_s": delay,
            "missed": delay is None, "self": [], "warm_self": 0, "holds": [], "loaded": False, "steal_cores": 0.002,
            "room": base}  # fmt: skip


def test_rule_a_on_made_up_rows(tmp_path: Path) -> None:
    import rig47_rule

    mixes = [f"heldout-bargein-{i:03d}" for i in range(24)]
    abs_rows = [_row("abs20", m, 0.07) for m in mixes]
    base_rows = [_row("80", m, 0.10) for m in mixes]
    # a start-up gap only: clean; a gap inside the visitor's onset window: glitched
    abs_rows[0]["room"]["abs_start_gaps"] = [(1.0, 0.0, 12.0)]
    abs_rows[1]["room"]["abs_gaps"] = [(2.0, 12.1, 9.7)]
    abs_rows[1]["room"]["pacat_underruns"] = [(2.0, 12.1)]
    base_rows[2]["self"] = ["pause at 12.60s"]
    base_rows[2]["delay_s"] = 0.0
    files = []
    for pipe, rows in (("abs20", abs_rows), ("80", base_rows)):
        p = tmp_path / f"rig47-heldout-R-bargein-s2481-{pipe}-2026-12-07.json"
        p.write_text(json.dumps({"rows": rows}))
        files.append(str(p))
    out, table = tmp_path / "eval.json", tmp_path / "rows.txt"
    assert rig47_rule.main(["--out", str(out), "--rows", str(table), *files]) == 0
    got = json.loads(out.read_text())
    a = got["rule_A"]
    assert a["A1"]["abs20_glitched_of_rows"] == [1, 24] and a["A1"]["abs20_m12_bargein_clean_of_rows"] == [23, 24]
    assert a["A2"]["n_clean_both"] == 23 and a["A2"]["median_shift_ms"] == pytest.approx(-30.0)
    assert a["A3"]["clean_self_abs20_80"] == [0, 1] and a["A3"]["met"]
    gap = got["per_pipe"]["abs20"]["mid_gaps"][0]
    assert gap["in_answer"] and gap["in_onset_window"] and gap["ms"] == 9.7
    assert got["per_pipe"]["abs20"]["start_gaps"] == 1 and got["per_pipe"]["abs20"]["latency_drift_ms"]["median"] == -1.0
    assert "GLITCHED" in table.read_text()


def test_rig_pauses_name_later_and_warm_up_times() -> None:
    from rig47_rule import rig_pauses

    row = {"self": ["pause at 12.60s"], "warm_self": 1, "holds": [[4.2, True], [4.5, False], [12.6, True]]}
    assert rig_pauses(row) == [("later", 12.6), ("warm-up", 4.2)]

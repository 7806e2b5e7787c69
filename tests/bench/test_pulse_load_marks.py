"""The AEC bench marks a row run beside other CPU work (bench/pulse_aec.py ``load_marks``).

Stop 39's spurious self-pauses came in rig rows run while another job took the second core; a row now
says how many cores something other than the rig kept busy, and whether the load average was high."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def test_other_busy_cores_is_the_machines_busy_time_less_the_rigs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulse_aec

    monkeypatch.setattr(pulse_aec.os, "getloadavg", lambda: (0.4, 0.4, 0.4))
    # 20 s row: the machine was busy 30 core-seconds, the rig itself used 10 -> one other core busy
    marks = pulse_aec.load_marks(100.0, 130.0, own_cpu_s=10.0, wall_s=20.0)
    assert marks == {"load1_end": 0.4, "other_busy_cores": 1.0, "loaded": True}
    quiet = pulse_aec.load_marks(100.0, 112.0, own_cpu_s=10.0, wall_s=20.0)
    assert quiet == {"load1_end": 0.4, "other_busy_cores": 0.1, "loaded": False}


def test_a_row_at_a_high_load_average_is_marked_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulse_aec

    monkeypatch.setattr(pulse_aec.os, "getloadavg", lambda: (2.7, 1.0, 0.5))
    marks = pulse_aec.load_marks(0.0, 5.0, own_cpu_s=6.0, wall_s=10.0)
    assert marks["loaded"] and marks["other_busy_cores"] == 0.0  # never negative


def test_busy_seconds_grow_while_this_process_spins() -> None:
    import time

    import pulse_aec

    before = pulse_aec.busy_s()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert pulse_aec.busy_s() - before >= 0.25


def test_loaded_rows_are_listed_in_the_summary() -> None:
    import pulse_aec

    def row(mix: str, loaded: bool) -> dict:
        return {"mix": mix, "mode": "guard", "echo_db": -12.0, "kind": "echo", "self": [], "room": {},
                "pulse_cpu_s": 0.1, "kiosk_cpu_s": 0.1, "wall_s": 10.0, "loaded": loaded}

    summary = pulse_aec.summarize([row("a", False), row("b", True)])
    assert summary["guard"]["loaded_rows"] == ["b"]

"""The real-process bench harness (bench/rig.py, bench_footprint's table, bench_visitor's
detectors) on small synthetic inputs: fast, no kiosk is started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def test_tree_meter_sees_a_childs_cpu_wakeups_memory_and_threads() -> None:
    import rig

    code = (
        "import subprocess, sys, time\n"
        "sleeper = 'import time\\nwhile True: time.sleep(0.01)'\n"
        "child = subprocess.Popen([sys.executable, '-c', sleeper])\n"
        "x = bytearray(30 * 2**20)\n"
        "t = time.monotonic()\n"
        "while time.monotonic() - t < 30: sum(range(10000))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        meter = rig.TreeMeter(proc.pid, period_s=0.1).start()
        time.sleep(1.5)
        meter.stop()
    finally:
        tree = rig.descendants(proc.pid)
        rig.stop(proc)
        for pid in tree[1:]:  # the sleeper would outlive its parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    w = meter.window(0.0, time.monotonic())
    assert w["processes"] == 2  # the tree, not just the top process
    assert w["cpu_pct"] > 5  # a busy loop (on a shared machine: far from 100 %)
    assert w["wakeups_per_s"] > 10  # the child sleeps and wakes every 10 ms
    assert w["main_rss_mb"] > 30 and w["main_hwm_mb"] >= w["main_rss_mb"]
    assert w["main_anon_mb"] > 30 and w["threads"] >= 2 and w["fds"] >= 3


def test_pink_noise_is_at_the_asked_level() -> None:
    import rig

    x = rig.pink_noise(2.0, dbfs=-54.0).astype(np.float64)
    assert 20 * np.log10(np.sqrt(np.mean(x**2)) / 32768) == pytest.approx(-54.0, abs=0.2)


def test_visitor_detectors_find_speech_ends_and_answer_starts() -> None:
    import bench_visitor as bv

    rate = 16000
    times = np.arange(6 * rate) / rate
    mic = np.zeros(6 * rate, dtype=np.int16)
    mic[rate : 2 * rate] = 3000  # speech 1.0-2.0 s
    mic[4 * rate : int(4.5 * rate)] = 3000  # speech 4.0-4.5 s
    ends = bv.speech_ends(mic, times)
    assert ends == pytest.approx([2.0, 4.5], abs=0.021)
    spk = np.zeros(6 * rate, dtype=np.int16)
    spk[int(2.5 * rate) : int(2.8 * rate)] = 500  # an earcon: too short to be an answer
    spk[int(3.0 * rate) : int(5.5 * rate)] = 500  # the answer
    assert bv.answer_starts(spk, times) == pytest.approx([3.0], abs=1e-3)


def test_footprint_table_has_ratios_goals_and_reports_a_missing_peer() -> None:
    import bench_footprint as bf

    def fig(cpu: float, rss: float) -> dict[str, float]:
        memory = {"main_rss_mb": rss, "main_anon_mb": 30.0, "main_hwm_mb": rss, "rss_mb": rss}
        return {"cpu_pct": cpu, "wakeups_per_s": 17.0, "threads": 2, "fds": 10, "processes": 1, **memory}

    m = {
        "figures": {
            "bare loop": fig(0.1, 15),
            "kiosk wav": fig(0.15, 48),
            "kiosk pulse": fig(0.5, 68),
        },
        "ready_s": [0.6, 0.7, 0.8],
        "errors": {},
        "peer": "missing: cannot install wyoming-satellite",
        "window_s": 120.0,
    }
    rows = {r["name"]: r for r in bf.rows_from(m)}
    assert rows["kiosk wav cpu / bare loop"]["value"] == 1.5
    assert rows["kiosk wav cpu / bare loop"]["goal"] == "<= 2"
    assert rows["kiosk pulse rss MB"]["value"] == 68.0
    assert rows["wyoming-satellite cpu / kiosk wav"]["value"] == "missing"
    assert "cannot install" in rows["wyoming-satellite cpu / kiosk wav"]["note"]
    assert rows["start -> READY=1 s (median)"]["value"] == 0.7


def test_memory_map_splits_rss_into_anonymous_and_file_backed_mappings() -> None:
    import os

    import bench_footprint as bf

    m = bf.memory_map(os.getpid())
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    assert m["rss_mb"] == pytest.approx(int(status["VmRSS"].split()[0]) / 1024, rel=0.1)
    assert m["anon_mb"] + m["file_mb"] == pytest.approx(m["rss_mb"], abs=0.2)
    assert m["libraries_mapped"] > 0 and any("python" in name for name in m["largest_mb"])
    assert all("libasound_module_" in name for name in m["alsa_plugins"])

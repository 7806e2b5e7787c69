"""The bench harness itself (bench/run.py): fast, no real bench is run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _harness():
    spec = importlib.util.spec_from_file_location("bench_run_under_test", ROOT / "bench" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bench"
    d.mkdir()
    (d / "bench_toy.py").write_text(
        "def run(quick):\n"
        "    return {'rows': [\n"
        "        {'name': 'cpu_ratio', 'value': 1.5, 'goal': '<= 2', 'note': 'paced'},\n"
        "        {'name': 'rss_mb', 'value': 61.0, 'goal': '< 50 MB'},\n"
        "        {'name': 'peer', 'value': 'missing', 'goal': '>= 5'},\n"
        "        {'name': 'told', 'value': 'x', 'goal': 'all answered', 'ok': True},\n"
        "    ], 'details': {'quick': quick}}\n"
    )
    (d / "bench_broken.py").write_text("def run(quick):\n    raise RuntimeError('boom')\n")
    return d


def test_unknown_bench_name_is_a_usage_error(bench_dir: Path, tmp_path: Path, capsys) -> None:
    rc = _harness().main(["nosuch"], bench_dir=bench_dir, results_dir=tmp_path / "r")
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown bench nosuch" in err and "toy" in err
    assert not (tmp_path / "r").exists()


def test_table_judges_goals_and_results_file_names_machine_and_commit(
    bench_dir: Path, tmp_path: Path, capsys
) -> None:
    rc = _harness().main(["--quick", "toy"], bench_dir=bench_dir, results_dir=tmp_path / "r")
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["bench", "metric", "value", "goal", "result", "note"]
    by_metric = {line.split()[1]: line for line in lines[2:]}
    assert "PASS" in by_metric["cpu_ratio"]
    assert "FAIL" in by_metric["rss_mb"]
    assert "PASS" not in by_metric["peer"] and "FAIL" not in by_metric["peer"]
    assert "PASS" in by_metric["told"]
    (saved,) = (tmp_path / "r").glob("toy-*-quick.json")
    record = json.loads(saved.read_text())
    assert record["bench"] == "toy" and record["details"] == {"quick": True}
    assert record["machine"]["cores"] >= 1 and record["machine"]["uname"]
    assert record["commit"]
    assert [r["verdict"] for r in record["rows"]] == ["PASS", "FAIL", "-", "PASS"]


def test_a_crashing_bench_is_reported_and_fails_the_run(
    bench_dir: Path, tmp_path: Path, capsys
) -> None:
    rc = _harness().main(["--no-save"], bench_dir=bench_dir, results_dir=tmp_path / "r")
    out = capsys.readouterr().out
    assert rc == 1
    assert "CRASHED" in out and "RuntimeError: boom" in out
    assert "cpu_ratio" in out  # the other bench still reports
    assert not (tmp_path / "r").exists()


def test_a_diagnostic_record_keeps_its_fields_and_gains_machine_and_commit(
    tmp_path: Path, capsys
) -> None:
    path = _harness().save_diagnostic("chain", {"rules": [1, 2]}, tmp_path / "d" / "chain.json")
    record = json.loads(path.read_text())
    assert record["rules"] == [1, 2]
    assert record["machine"]["load_avg_1m_at_start"] >= 0 and record["commit"]
    assert f"results: {path}" in capsys.readouterr().out

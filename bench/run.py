"""Run benchmarks, print one table with goal and PASS/FAIL, save each bench's results JSON.

Usage: ``python bench/run.py [--quick] [--no-save] [NAME ...]`` (default: every bench).
An unknown NAME is an error (exit 2). Results go to ``bench/results/<name>-<YYYY-MM-DD>.json``
(``-quick`` before ``.json`` for smoke runs), with the machine (uname, CPU model, cores) and
the git commit, so a figure quoted in the README can name its file.

Adding a bench (that is all there is to it):

1. Create ``bench/bench_<name>.py`` with ``run(quick: bool) -> list[dict]``; ``<name>`` is
   what you pass on the command line.
2. Each dict is one table row: ``name`` (metric), ``value``, and optionally ``goal`` (text
   such as ``"<= 2"``, ``"< 50 MB"``, ``">= 0.9"``), ``note`` (how measured, in a few words)
   and ``ok`` (True/False; when absent, numeric goals of the form ``<op> number`` are checked
   here, others print ``-``). Any other keys are saved to the JSON too.
3. For details that do not fit the table (per-run samples, settings), ``run`` may instead
   return ``{"rows": [...], "details": {...}}``; ``details`` goes to the JSON only.

Speed and quality goals live here, never in timed tests. Exit status: 0 when every bench
ran (whatever PASS/FAIL says), 1 when one raised, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import operator
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"

_OPS = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
    "==": operator.eq,
}
_GOAL = re.compile(r"^\s*(<=|>=|==|<|>|=)\s*(-?[0-9.]+(?:e-?\d+)?)")


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def available(bench_dir: Path = HERE) -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(bench_dir.glob("bench_*.py"))}


def verdict(row: dict[str, Any]) -> str:
    """PASS/FAIL from ``ok`` or a numeric goal like ``"<= 2"``; ``-`` when there is none."""
    ok = row.get("ok")
    if ok is None:
        match = _GOAL.match(str(row.get("goal", "")))
        value = row.get("value")
        if not match or isinstance(value, bool) or not isinstance(value, int | float):
            return "-"
        ok = _OPS[match.group(1)](value, float(match.group(2)))
    return "PASS" if ok else "FAIL"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "uname": " ".join(platform.uname()),
        "cpu_model": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m_at_start": os.getloadavg()[0],
    }


def _git(*args: str, root: Path = ROOT) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def git_commit(root: Path = ROOT) -> str:
    """HEAD's commit, with ``+dirty`` when the work tree has uncommitted changes to code
    (the results also keep its subject: a branch's commit ids change when it is rebased)."""
    commit = _git("rev-parse", "HEAD", root=root) or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "kiosk", "bench", root=root)
    return commit + ("+dirty" if dirty else "")



def trees_record(bench: str, trees: dict[str, Path]) -> dict[str, Any]:
    """The head of a results record comparing kiosk trees run side by side: this checkout's
    commit and subject, each tree's commit (or its path), and the machine."""
    return {
        "bench": bench,
        "commit": git_commit(),
        "commit_subject": _git("log", "-1", "--format=%s")[:200],
        "tree_commits": {n: git_commit(t) or str(t) for n, t in trees.items()},
        "machine": machine(),
    }


def finish_record(record: dict[str, Any], out: Path, started_monotonic: float) -> int:
    """End a side-by-side tree bench's record (load at the end, wall time), write it to ``out``
    and say where; the script's exit status."""
    record["load_avg_1m_at_end"] = os.getloadavg()[0]
    record["wall_s"] = round(time.monotonic() - started_monotonic, 1)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


def save(
    name: str,
    rows: list[dict[str, Any]],
    details: Any,
    wall_s: float,
    quick: bool,
    out_dir: Path,
    commit: str,
) -> Path:
    now = dt.datetime.now(dt.UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{now:%Y-%m-%d}{'-quick' if quick else ''}.json"
    record = {
        "bench": name,
        "finished_utc": now.isoformat(timespec="seconds"),
        "quick": quick,
        "wall_s": round(wall_s, 1),
        "commit": commit,  # taken when the bench started: a long run may outlive HEAD
        "commit_subject": _git("log", "-1", "--format=%s", commit.split("+")[0])[:200],
        "machine": machine(),
        "rows": [{**r, "verdict": verdict(r)} for r in rows],
        "details": details,
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def save_diagnostic(stem: str, record: dict[str, Any], path: Path | None = None) -> Path:
    """Write a diagnostic script's record (not a bench of the table: no goal rows) with the
    machine and commit like ``save``, as ``results/<stem>-<date>.json`` unless ``path``."""
    commit = git_commit()
    record = {
        **record,
        "machine": machine(),
        "commit": commit,
        "commit_subject": _git("log", "-1", "--format=%s", commit.split("+")[0])[:200],
    }
    path = path or RESULTS_DIR / f"{stem}-{dt.date.today().isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")
    print(f"results: {path}")
    return path


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("bench", "metric", "value", "goal", "result", "note")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row).rstrip())


def main(
    argv: Sequence[str] | None = None, *, bench_dir: Path = HERE, results_dir: Path = RESULTS_DIR
) -> int:
    benches = available(bench_dir)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run)")
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    parser.add_argument("names", nargs="*", help=f"benches to run: {', '.join(benches)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in benches]
    if unknown:
        print(
            f"run.py: unknown bench {', '.join(unknown)} (known: {', '.join(benches)})",
            file=sys.stderr,
        )
        return 2
    sys.path[:0] = [str(bench_dir), str(bench_dir.parent)]  # shared helpers (rig.py), kiosk
    table: list[tuple[str, ...]] = []
    crashed = False
    for name, path in benches.items():
        if args.names and name not in args.names:
            continue
        started = time.perf_counter()
        commit = git_commit()
        try:
            result = load(path).run(args.quick)
        except Exception as exc:  # one broken bench must not hide the others' numbers
            traceback.print_exc()
            table.append((name, "CRASHED", f"{type(exc).__name__}: {exc}"[:80], "", "", ""))
            crashed = True
            continue
        rows, details = (
            (result["rows"], result.get("details")) if isinstance(result, dict) else (result, None)
        )
        wall_s = time.perf_counter() - started
        for r in rows:
            table.append(
                (
                    name,
                    str(r["name"]),
                    str(r["value"]),
                    str(r.get("goal", "")),
                    verdict(r),
                    str(r.get("note", "")),
                )
            )
        saved = (
            ""
            if args.no_save
            else f" -> {save(name, rows, details, wall_s, args.quick, results_dir, commit)}"
        )
        print(f"# {name}: {wall_s:.1f} s{saved}", file=sys.stderr)
    print_table(table)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmarks and print one table: ``python bench/run.py [--quick] [NAME ...]``.

Each ``bench/bench_*.py`` exposes ``run(quick: bool) -> list[dict]`` with keys name, value,
goal, note. Speed goals live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run)")
    parser.add_argument("names", nargs="*", help="e.g. spine rag wake (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    rows: list[tuple[str, str, str, str, str]] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if args.names and name not in args.names:
            continue
        started = time.perf_counter()
        try:
            results = load(path).run(args.quick)
        except Exception as exc:  # one broken bench must not hide the others' numbers
            rows.append((name, "FAILED", f"{type(exc).__name__}: {exc}"[:60], "", ""))
            continue
        for r in results:
            rows.append(
                (
                    name,
                    str(r["name"]),
                    str(r["value"]),
                    str(r.get("goal", "")),
                    str(r.get("note", "")),
                )
            )
        print(f"# {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    header = ("bench", "metric", "value", "goal", "note")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

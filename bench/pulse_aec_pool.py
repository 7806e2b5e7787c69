"""Pool several ``bench/pulse_aec.py`` results files of the same code into one table (more
barge-ins for a p95: a split has 6 at -12 dB, where the p95 is the slowest one).

    python bench/pulse_aec_pool.py A.json B.json --out bench/results/X.json

Rows keep their file's mix ids prefixed with the file's seed (``s381-heldout-bargein-081``);
the summary is ``pulse_aec.summarize`` over all of them; machine, commits, times and load of
each source file are copied beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulse_aec import report, summarize  # noqa: E402


def pooled(paths: list[Path]) -> dict:
    rows, sources = [], []
    for path in paths:
        data = json.loads(path.read_text())
        prefix = f"s{data.get('seed')}-" if data.get("seed") is not None else ""
        for row in data["rows"]:
            rows.append({**row, "mix": prefix + row["mix"]})
        sources.append({k: data.get(k) for k in ("label", "split", "seed", "modes", "started", "finished",
                                                 "load_start", "load_end", "commit", "kiosk_code", "machine")}
                       | {"file": path.name})
    return {"pooled_from": sources, "summary": summarize(rows), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    report(pooled(args.files), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``bench/pulse_guard_replay.py`` over many traces, one JSON line per trace (helper guard41,
stop 41), for ``bench/guard41_rule.py``: run it once per code (``PYTHONPATH=<an archive's
kiosk>``) over the same traces. A tuning tool (replay, not a user figure).

    PYTHONPATH=/tmp/guard41/mine python bench/guard41_replay.py --code mine TRACE.pkl... > mine.jsonl
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pulse_guard_replay  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--code", required=True, help="a name for the kiosk code replayed")
    args = p.parse_args(argv)
    import kiosk

    for path in args.traces:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        out = pulse_guard_replay.replay(trace)
        line = {
            "trace": str(path),
            "code": args.code,
            "kiosk": str(Path(kiosk.__file__).parent),
            **out,
        }
        print(json.dumps(line, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

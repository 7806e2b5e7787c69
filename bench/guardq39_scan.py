"""Per-frame cue rows of many guard traces, cached for offline rule screening (stop 39 helper
guardq39; a tuning tool). For each ``bench/pulse_trace.py`` trace (guard mode) the replay of
``bench/guardq39_frames.py`` with the importable ``kiosk``; writes one pickle per trace:
``{"result": pulse_guard_replay's row, "rows": every guarded frame's cues}`` into OUT_DIR.

    python bench/guardq39_scan.py OUT_DIR TRACE.pkl... [--tag NAME]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from guardq39_frames import replay_frames  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("traces", nargs="+", type=Path)
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.traces:
        name = f"{path.parent.name}__{path.stem}"
        dest = args.out_dir / f"{name}.pkl"
        if dest.exists():
            continue
        with open(path, "rb") as f:
            trace = pickle.load(f)
        result, rows = replay_frames(trace, 1e9, 1e9)
        keep = ("t_ms", "t_s", "lvl", "guarded", "guard", "voiced", "loud", "whole_bar", "ret", "echo",
                "learning", "bands", "band_raw", "after_loud", "B", "P", "pitch", "sus", "cl", "ol", "aligned")
        rows = [{k: r.get(k) for k in keep} for r in rows]
        with open(dest, "wb") as f:
            pickle.dump({"trace": str(path), "result": result, "row": {k: trace["row"].get(k) for k in
                         ("mix", "kind", "echo_db", "mode", "delay_s", "self")}, "rows": rows}, f)
        print(name, result["barge_ms"], result["self"], result["loud_echo_frames"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

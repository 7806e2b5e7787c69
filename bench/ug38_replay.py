"""ug38: replay (a TUNING TOOL, frame time) of ``bench/pulse_trace.py`` traces through whichever
``kiosk`` is importable (``PYTHONPATH=<archive>`` for main), with ``lobby_aec_replay.replay``:
per trace its self-pauses before the onset and the barge-in's speaker-silent delay. Exact up to
a run's first pause only.

    python bench/ug38_replay.py OUT.json TRACE.pkl...
    python bench/ug38_replay.py --compare MINE.json MAIN.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(out: Path, traces: list[Path]) -> None:
    import bench_lobby as bl
    import lobby_aec_replay as lr

    from kiosk.audio import echo_cancel as ec

    cfg = bl.load_bench_config()
    rows, t0 = [], time.time()
    for path in traces:
        try:
            runs = lr._runs(path)
        except Exception as exc:  # noqa: BLE001 - an unreadable trace is reported, not fatal
            print(f"{path}: {exc}", file=sys.stderr)
            continue
        for one in runs:
            r = lr.replay(one, cfg)
            rows.append({
                "path": str(path), "mix": r.get("mix"), "kind": r.get("kind"), "echo_db": r.get("echo_db"),
                "self_pauses_s": r.get("self_pauses_s"), "speaker_silent_ms": r.get("speaker_silent_ms"),
                "warm_suspect": r.get("warm_suspect"),
            })
            print(path.name, r.get("echo_db"), "silent", r.get("speaker_silent_ms"), "self", r.get("self_pauses_s"), flush=True)
    out.write_text(json.dumps({"kiosk": ec.__file__, "seconds": round(time.time() - t0, 1), "rows": rows}, indent=1))


def compare(mine: Path, main: Path) -> None:
    a, b = json.loads(mine.read_text()), json.loads(main.read_text())
    print("mine:", a["kiosk"], "main:", b["kiosk"])
    base = {(r["path"], r["mix"]): r for r in b["rows"]}
    moved, cleared, new, n_self = [], [], [], [0, 0]
    for r in a["rows"]:
        m = base.get((r["path"], r["mix"]))
        if m is None:
            continue
        n_self[0] += bool(r["self_pauses_s"])
        n_self[1] += bool(m["self_pauses_s"])
        if r["self_pauses_s"] != m["self_pauses_s"]:
            (cleared if len(r["self_pauses_s"]) < len(m["self_pauses_s"]) else new).append(
                f"{r['path']} {r['echo_db']}: main {m['self_pauses_s']} -> mine {r['self_pauses_s']}")
        if r["speaker_silent_ms"] != m["speaker_silent_ms"]:
            moved.append(f"{r['path']} {r['echo_db']}: main {m['speaker_silent_ms']} -> mine {r['speaker_silent_ms']}")
    print(f"runs pausing before the onset: mine {n_self[0]} main {n_self[1]} (of {len(a['rows'])})")
    for name, got in (("fewer pauses", cleared), ("other pauses", new), ("barge-ins moved", moved)):
        print(f"{name}: {len(got)}")
        for line in got:
            print("  ", line)


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        run(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])

"""kept39: which frames the kept-filter rule claims as the answer's own voice, replayed on pulse traces (TUNING
TOOL; exact up to each replay's first pause). Run with the kept39 code first on the path (PYTHONPATH).

Per trace: every frame ``kiosk.core.echo_kept_filter.KeptFilterLeak`` called the answer's own (its time into the
later answer, whether it came after the visitor's labelled onset, its levels), so that the rule's exposure is
counted: a visitor's frame it claims is a frame her barge-in waits for.

    PYTHONPATH=/tmp/x python bench/kept39_exposure.py OUT.json TRACE.pkl...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_aec_replay as lr  # noqa: E402

from kiosk.core import echo_kept_filter as ekf  # noqa: E402

CLAIMED: list[dict] = []
_call = ekf.KeptFilterLeak.__call__


def _traced(self, levels):  # type: ignore[no-untyped-def]
    fresh = levels is not self._frame
    got = _call(self, levels)
    if got and fresh:
        low, high = levels.bands.over_estimate_db()
        CLAIMED.append({"kept_ms": levels.kept_filter_ms, "levels": [round(x, 1) for x in levels[:3]],
                        "low": round(low, 1), "high": round(high, 1), "leak_ms": self._leak_ms})  # fmt: skip
    return got


ekf.KeptFilterLeak.__call__ = _traced  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    out, paths = Path(argv[0]), [Path(p) for p in argv[1:]]
    cfg = bl.load_bench_config()
    rows = []
    for path, trace, run, got in lr.replay_traces(paths, cfg, CLAIMED.clear):
        room = trace["row"]["room"]
        onset = None if room.get("onset_s") is None else room["onset_s"] - room["audible_s"]
        rows.append({"path": str(path), "kind": run["kind"], "echo_db": run["echo_db"], "onset_later_s": onset,
                     "claimed": list(CLAIMED), "speaker_silent_ms": got["speaker_silent_ms"],
                     "self_pauses_s": got["self_pauses_s"]})  # fmt: skip
    n_b = sum(r["kind"] == "bargein" for r in rows)
    print(f"traces {len(rows)} (barge-ins {n_b}); with a claimed frame: {sum(bool(r['claimed']) for r in rows)}")
    out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

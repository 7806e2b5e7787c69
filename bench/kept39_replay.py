"""kept39: replay pulse traces (TUNING TOOL) with whichever ``kiosk`` is first on the path (pin a code with
``PYTHONPATH=/tmp/x`` holding a ``git archive`` of it), and tell each replayed self-pause's time into the later
answer next to the rig run's own.

``bench/lobby_aec_replay.py``'s ``pulse_inputs`` + ``replay`` (earcons marked as the daemon marks them). A replay
is exact up to its first pause (SpeexDSP on the traced microphone frames and reference): a tuning tool, never a
user figure.

    PYTHONPATH=/tmp/kept39/peer python bench/kept39_replay.py OUT.json TRACE.pkl...
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_aec_replay as lr  # noqa: E402


def later_s(trace: dict, frame_s: list[float]) -> list[float]:
    """Replay pause times (s from the first traced frame) as seconds into the later answer."""
    room = trace["row"]["room"]
    t0, aud, frames = room["started_mono"], room["audible_s"], trace["aec"]
    return [round(frames[min(max(round(s / 0.02) - 1, 0), len(frames) - 1)]["mono"] - t0 - aud, 2) for s in frame_s]


def main(argv: list[str]) -> int:
    import kiosk

    out, paths = Path(argv[0]), [Path(p) for p in argv[1:]]
    cfg = bl.load_bench_config()
    rows = []
    for path, trace, run, got in lr.replay_traces(paths, cfg):
        aud = trace["row"]["room"]["audible_s"]
        rig = [round(float(m.group(1)) - aud, 2) for s in trace["row"]["self"] if (m := re.search(r"([\d.]+)s", s))]
        row = {**got, "path": str(path), "self_rel_later_s": later_s(trace, got["self_pauses_s"]),
               "rig_self_rel_later_s": rig, "rig_delay_s": trace["row"].get("delay_s")}  # fmt: skip
        rows.append(row)
        print(f"{path.parent.name[:28]:28} {path.stem[:32]:32} replay self {row['self_rel_later_s']} delay "
              f"{got['speaker_silent_ms']} | rig self {rig} delay {trace['row'].get('delay_s')}", flush=True)  # fmt: skip
    out.write_text(json.dumps({"kiosk": str(Path(kiosk.__file__).parent), "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

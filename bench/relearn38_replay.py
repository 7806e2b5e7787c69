"""When does the guard trust SpeexDSP again in a later answer? (TUNING TOOL, stop 38 helper relearn38)

Replays pulse traces (``bench/pulse_trace.py``, modes speex / speex-later) as
``bench/lobby_aec_replay.py``'s ``replay`` does, with whichever ``kiosk`` is importable, but with
the earcons marked (found here: the traced reference told no earcon, so a plain replay learned the
echo return from the "listening_end" chime that opens every answer, which the daemon skips;
``lobby_aec_replay.earcon_spans`` now marks them in every pulse-trace replay, stop 39).

    python bench/relearn38_replay.py OUT.json TRACE.pkl...

Per trace: the replay's pause (``speaker_silent_ms``, self-pauses, as ``replay``), and for the last
playback stretch before the labelled onset (a barge-in's later answer) or each stretch (echo
mixes): its first frame, its first frame past the earcon with the reference over the quiet gate
(the answer proper), the first trusted frame, and per frame why it did not teach the echo return
(``earcon``, ``quiet``, ``loud``: over the bar). A replay is exact up to its first pause: a tuning
tool, never a user figure.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_aec_replay as lr  # noqa: E402

from kiosk.core import endpointing as ep  # noqa: E402

LOG: list[dict[str, Any]] = []


_process = ep.Endpointer.process


def _logged(self: Any, frame: bytes, far: Any = None, *a: Any, **kw: Any) -> Any:
    if not self.echo_relearn:  # (the raw guard's endpointer)
        return _process(self, frame, far, *a, **kw)
    steps = len(self._recent_echo_db)
    events = _process(self, frame, far, *a, **kw)
    quiet = far is not None and math.isfinite(far) and self._quiet_reference(far)
    LOG.append({
        "far": far if far is None or math.isfinite(far) else None, "earcon": self.earcon_echo,
        "quiet": quiet, "trusted": self.echo_cancelled_well, "steps": len(self._recent_echo_db),
        "learned": len(self._recent_echo_db) != steps or bool(self._step_db),
        "room": self._room_dbfs, "emax": self._echo_max_db if math.isfinite(self._echo_max_db) else None,
        "susp": self.suspected_speech_ms,
    })  # fmt: skip
    return events


ep.Endpointer.process = _logged  # type: ignore[method-assign]
# Variants (replay only): RELEARN38_GATE=dB: the quiet-reference gate (main: 25).
if os.environ.get("RELEARN38_GATE"):
    from kiosk.core import echo_guard as eg

    eg.ECHO_RELEARN_ABOVE_ROOM_DB = float(os.environ["RELEARN38_GATE"])


def stretches(log: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(first, last) frame of each run of frames with a reference."""
    out, start = [], None
    for k, d in enumerate(log + [{"far": None}]):
        if d["far"] is not None and start is None:
            start = k
        elif d["far"] is None and start is not None:
            if k - start > 3:
                out.append((start, k - 1))
            start = None
    return out


def describe(log: list[dict[str, Any]], first: int, last: int) -> dict[str, Any]:
    """The stretch's answer start (first non-earcon, non-quiet frame), trust, and the frames lost."""
    span = log[first : last + 1]
    answer = next((first + i for i, d in enumerate(span) if not d["earcon"] and not d["quiet"]), None)
    trusted = next((first + i for i, d in enumerate(span) if d["trusted"]), None)
    before = span[: (trusted - first) if trusted is not None else len(span)]
    return {
        "first": first, "last": last, "answer": answer, "trusted": trusted,
        "earcon_frames": sum(d["earcon"] for d in before),
        "quiet_frames": sum(d["quiet"] and not d["earcon"] for d in before),
        "quiet_near": sum(d["quiet"] and not d["earcon"] and d["far"] is not None and d["room"] is not None
                          and d["far"] >= d["room"] + 20 for d in before),
        "untrusted_answer_frames": None if answer is None else (trusted if trusted is not None else last + 1) - answer,
        "blips": blips(span),
    }  # fmt: skip


def blips(span: list[dict[str, Any]], most: int = 6) -> int:
    """Runs of at most ``most`` trusted frames that end in distrust with the speaker still
    sounding (the raw guard beside the canceller skips them, and its tap's timeline with them)."""
    count, run = 0, 0
    for d in span:
        if d["trusted"]:
            run += 1
            continue
        count += 0 < run <= most and d["far"] is not None
        run = 0
    return count


def main(argv: list[str]) -> int:
    out, paths = Path(argv[0]), [Path(p) for p in argv[1:]]
    cfg = bl.load_bench_config()
    rows = []
    for path, trace, run, got in lr.replay_traces(paths, cfg, LOG.clear):
        k0 = None if run["onset_s"] is None else int(run["onset_s"] / 0.02)
        st = [describe(LOG, a, b) for a, b in stretches(LOG)]
        if k0 is not None:  # the later answer: the last stretch that began before her onset
            st = [s for s in st if s["first"] <= k0][-1:]
        row = {**got, "path": str(path), "onset_frame": k0, "recorded_delay_s": run["recorded_delay_s"],
               "recorded_self": run["recorded_self"], "stretches": st}  # fmt: skip
        rows.append(row)
        s = st[0] if st else {}
        print(path.parent.name, path.stem, got["speaker_silent_ms"], got["self_pauses_s"], "onset", k0,
              "answer", s.get("answer"), "trusted", s.get("trusted"), "earcon", s.get("earcon_frames"),
              "quiet", s.get("quiet_frames"), "(>=20)", s.get("quiet_near"),
              "blips", sum(x["blips"] for x in st), flush=True)  # fmt: skip
    import kiosk

    out.write_text(json.dumps({"kiosk": str(Path(kiosk.__file__).parent), "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

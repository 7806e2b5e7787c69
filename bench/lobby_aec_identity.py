"""Per-frame identity of the AEC front end's decisions between two kiosk codes, on the same
recorded inputs (issue 10: a change to the canceller's cost that must change no decision).

``lobby_aec_replay`` replays recorded microphone frames and speaker blocks, but each run's
reference goes through a fresh SoXR HQ stream, and stream instances differ by up to 2 LSB (cpu10),
which now and then moves a decision by a frame. So ``record`` replays through the importable
kiosk (``PYTHONPATH=<an archive of the other commit>``) and keeps every reference frame the
canceller and the raw guard's tap took, with a trace of every endpointer call (suspected speech
ms, in a turn, trusted, double talk, events, echo return), every high-band level the consonant cue
heard (and its answer) and every cleaned frame with its linear levels; ``compare`` replays through
this kiosk fed those very reference frames and compares all of it, run by run.

    PYTHONPATH=/tmp/peer-<sha> python bench/lobby_aec_identity.py record bench/.cache/lobby/aec-replay-*.pkl
    python bench/lobby_aec_identity.py compare --out bench/results/lobby-aec-identity-<name>.json

Each side's canceller CPU (``EchoCanceller.cpu_s`` over its filtered frames, this replay's fast
clock, ad hoc) is kept too. Tuning material only, like ``lobby_aec_replay``.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_aec_replay as replay_  # noqa: E402

RECORD = replay_.CACHE / "aec-identity.pkl"


def traced(recordings: list[Path], references: dict[Any, Any] | None) -> dict[str, Any]:
    """Replays ``recordings`` through the importable kiosk; with ``references`` (a record's),
    the canceller and the tap are fed those instead of their own streams'."""
    import kiosk
    from kiosk.audio import echo_cancel as ec
    from kiosk.core import echo_consonant as eg
    from kiosk.core import endpointing as ep

    taken: dict[Any, Any] = {} if references is None else references
    at: dict[str, Any] = {"run": None, "k": 0}
    trace: list[Any] = []
    heard: list[Any] = []
    cleaned: list[Any] = []
    cancellers: list[Any] = []
    real = (ec.EchoReference.take_marked, ep.Endpointer.process, eg.HighBandCue.hear)
    real_cancel, real_init = ec.EchoCanceller.process, ec.EchoCanceller.__init__

    def take_marked(self: Any, start_s: float, n: int) -> Any:
        key = (at["run"], at["k"])
        at["k"] += 1
        if references is None:
            taken[key] = (start_s, n, real[0](self, start_s, n))
        start, size, value = taken[key]
        assert size == n and abs(start - start_s) < 1e-6, (key, start, start_s)  # same request
        return value

    def process(self: Any, *args: Any, **kw: Any) -> Any:
        events = real[1](self, *args, **kw)
        trace.append((self.suspected_speech_ms, self.in_speech, self.echo_cancelled_well,
                      getattr(self, "_double_talk_now", None), tuple(type(e).__name__ for e in events),
                      self.echo_return_db))  # fmt: skip
        return events

    def hear(self: Any) -> bool:
        consonant = real[2](self)
        heard.append((None if self.frame is None else float(self.frame[0]), consonant))
        return consonant

    def cancel(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        out = real_cancel(self, frame, captured_at_s)
        if type(self) is ec.EchoCanceller:  # (not the raw guard's tap)
            cleaned.append((out, self.linear_levels))
        return out

    def init(self: Any, *args: Any, **kw: Any) -> None:
        real_init(self, *args, **kw)
        if type(self) is ec.EchoCanceller:
            cancellers.append(self)

    ec.EchoReference.take_marked, ep.Endpointer.process, eg.HighBandCue.hear = take_marked, process, hear  # type: ignore[method-assign]
    ec.EchoCanceller.process, ec.EchoCanceller.__init__ = cancel, init  # type: ignore[method-assign]
    cfg = bl.load_bench_config()
    runs, cpu_s, frames = [], 0.0, 0
    try:
        for path in recordings:
            for k, run in enumerate(pickle.loads(path.read_bytes())):
                at["run"], at["k"] = (path.name, k), 0
                for kept in (trace, heard, cleaned, cancellers):
                    kept.clear()
                row = replay_.replay(run, cfg)
                cpu_s += sum(c.cpu_s for c in cancellers)
                frames += sum(c.frames_cancelled for c in cancellers)
                runs.append({"run": (path.name, k), "row": row, "trace": list(trace), "heard": list(heard),
                             "cleaned": list(cleaned)})  # fmt: skip
    finally:
        ec.EchoReference.take_marked, ep.Endpointer.process, eg.HighBandCue.hear = real  # type: ignore[method-assign]
        ec.EchoCanceller.process, ec.EchoCanceller.__init__ = real_cancel, real_init  # type: ignore[method-assign]
    frame_s = cfg.audio.frame_ms / 1000
    return {"kiosk_code": str(Path(kiosk.__file__).parent), "runs": runs, "references": taken,
            "canceller_cpu_ms_per_s": round(1000 * cpu_s / max(1e-9, frames * frame_s), 3)}  # fmt: skip


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per run: the first endpointer call whose trace differs, and which else differs."""
    differ: list[dict[str, Any]] = []
    for a, b in zip(before["runs"], after["runs"], strict=True):
        assert a["run"] == b["run"]
        parts = [key for key in ("row", "trace", "heard", "cleaned") if a[key] != b[key]]
        if parts:
            first = next((i for i, (x, y) in enumerate(zip(a["trace"], b["trace"])) if x != y), None)
            differ.append({"run": f"{a['run'][0]} #{a['run'][1]}", "differ": parts, "first_trace_call": first})
    return {
        "runs": len(before["runs"]),
        "endpointer_calls": sum(len(r["trace"]) for r in before["runs"]),
        "consonant_cue_calls": sum(len(r["heard"]) for r in before["runs"]),
        "canceller_frames": sum(len(r["cleaned"]) for r in before["runs"]),
        "runs_differing": differ,
        "canceller_cpu_ms_per_s": {"before": before["canceller_cpu_ms_per_s"], "after": after["canceller_cpu_ms_per_s"]},
        "before_code": before["kiosk_code"], "after_code": after["kiosk_code"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("recordings", nargs="+", type=Path)
    rec.add_argument("--to", type=Path, default=RECORD)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("--record", type=Path, default=RECORD)
    cmp_.add_argument("--out", type=Path)
    cmp_.add_argument("--label", default="")
    args = parser.parse_args(argv)
    if args.command == "record":
        result = traced(args.recordings, None)
        args.to.write_bytes(pickle.dumps({**result, "recordings": [str(p) for p in args.recordings]}))
        print(f"recorded {len(result['runs'])} runs ({result['kiosk_code']}): {args.to}")
        return 0
    before = pickle.loads(args.record.read_bytes())
    after = traced([Path(p) for p in before["recordings"]], before["references"])
    summary = compare(before, after)
    print({k: v for k, v in summary.items() if k != "runs_differing"}, "differing:", summary["runs_differing"])
    if args.out:
        import run as bench_run

        summary.update(label=args.label, recordings=before["recordings"])
        bench_run.save_diagnostic("lobby-aec-identity", summary, args.out)
    return 0 if not summary["runs_differing"] else 1


if __name__ == "__main__":
    sys.exit(main())

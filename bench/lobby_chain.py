"""Where barge-in time goes with the in-process canceller (issue 10, item 4): a per-frame trace
of the lobby corpus's echo and barge-in mixes through the bench's own driver, then the chain
true onset -> first frame over the bar -> the frames that confirm it -> the paused speaker,
and what other pause rules would have done on the same frames (fewer confirming frames, a
lower bar once the canceller is trusted), counting every pause before the visitor spoke.

    python bench/lobby_chain.py --split tuning --seed 3 --seed 4   # fresh tuning mixes
    python bench/lobby_chain.py --rescore bench/.cache/lobby/chain-*.pkl

Tuning voices only (never decide on the held-out split). Frame time, not wall time: the
rules are compared on the same frames, so load does not move them; "speaker silent" is the
next speaker block after the pause (simulate's speaker: no device output latency).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_driver as ld  # noqa: E402
from lobby_corpus import build_specs  # noqa: E402
from lobby_scoring import pct  # noqa: E402

from kiosk.core import endpointing as ep  # noqa: E402

CACHE = HERE / ".cache" / "lobby"
FRAME_S = 0.02
AEC_MODES = ("speex", "speex-warm")
# (frames to pause on webrtcvad alone, frames once Silero agreed, dB off the bar), applied to
# frames where the canceller is trusted and no earcon sounds; others keep the shipped 3 / 2.
RULES = [(3, 2, 0.0), (2, 2, 0.0), (2, 1, 0.0), (1, 1, 0.0), (3, 2, -3.0), (2, 2, -3.0), (2, 2, -6.0)]


def echo_mixes(split: str, seeds: list[int | None]) -> list[tuple[int | None, Any]]:
    """The split's echo and barge-in mixes (fresh ones from each seed), with their seed."""
    return [
        (seed, mix)
        for seed in seeds
        for mix in build_specs(split, seed=seed)
        if mix.kind in ("echo", "bargein")
    ]


def trace(split: str, seeds: list[int | None]) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    real = ep.Endpointer.process

    def process(self: ep.Endpointer, frame: bytes, far: float | None = None, level: float | None = None, *cues: Any):  # type: ignore[no-untyped-def]
        events = real(self, frame, far, level, *cues)  # (bands, pitch, linear: as the pipeline passes them)
        fe = self._echo_ref_dbfs if math.isfinite(self._echo_ref_dbfs) else None
        bar = self.onset_level_dbfs
        if self.echo_guarded:
            bar = max(bar, self._guard_floor_dbfs(fe))
        frames.append(
            {
                "level": ep.frame_dbfs(frame) if level is None else level,
                "bar": bar,
                "first": bool(getattr(self._is_speech, "provisional", False)),
                "confirmed": self._onset_loud > 0,
                "trusted": self.echo_cancelled_well and not self.earcon_echo,
                "guarded": self.echo_guarded,
                "in_speech": self._in_speech,
            }
        )
        return events

    ep.Endpointer.process = process  # type: ignore[method-assign]
    cfg = bl.load_bench_config()
    runs: list[dict[str, Any]] = []

    async def main() -> None:
        from kiosk.testing.fake_realtime import FakeRealtimeServer

        async with FakeRealtimeServer("ga") as server:
            for seed, mix in echo_mixes(split, seeds):
                for mode, aec, warm in bl.ECHO_MODES:
                    if mode not in AEC_MODES:
                        continue
                    frames.clear()
                    log = await ld.run_mix(
                        mix, cfg, server, paced=mix.kind == "bargein", aec=aec, warm_s=warm
                    )
                    runs.append(
                        {
                            "mix": f"{mix.id}/seed{seed}",
                            "kind": mix.kind,
                            "echo_db": mix.echo_db,
                            "mode": mode,
                            "frames": list(frames),
                            "holds": log.holds,
                            "flushes": log.flushes,
                            "onset_s": log.interruption_onset_s,
                            "answer_start": log.answer_start_frame or 0,
                            "frame_s": log.frame_s,  # the frame length ([audio] frame_ms)
                            "delay_s": bl.bargein_delay(log, True) if mix.kind == "bargein" else None,
                            "self": bl.self_interruptions(log),
                        }
                    )
                    print(runs[-1]["mix"], mode, mix.echo_db, runs[-1]["delay_s"], runs[-1]["self"], file=sys.stderr)

    asyncio.run(main())
    ep.Endpointer.process = real  # type: ignore[method-assign]
    return runs


def at_s(i: int, frame_s: float = FRAME_S) -> float:
    return (i + 1) * frame_s  # frame i has been delivered (lobby_driver.RunLog.at_s)


def pauses(run: dict[str, Any], alone: int, agreed: int, off_db: float) -> list[int]:
    """Frames at which ``rule`` would pause the answer (not in a turn, guard up)."""
    out, count = [], 0
    for i, f in enumerate(run["frames"]):
        if f["in_speech"] or not f["guarded"]:
            count = 0
            continue
        relaxed = f["trusted"]
        count = count + 1 if f["first"] and f["level"] >= f["bar"] + (off_db if relaxed else 0) else 0
        need = (alone if relaxed else 3) if not f["confirmed"] else (agreed if relaxed else 2)
        if count >= need:
            out.append(i)
    return out


def score(runs: list[dict[str, Any]]) -> dict[str, Any]:
    chain = []
    for r in runs:
        if r["kind"] != "bargein" or r["echo_db"] != -12.0 or r["mode"] != "speex-warm":
            continue
        fs = r.get("frame_s", FRAME_S)
        t0 = r["onset_s"]
        i0 = next(i for i in range(len(r["frames"])) if at_s(i, fs) > t0)
        fr = r["frames"]
        over = next((i for i in range(i0, len(fr)) if fr[i]["first"] and fr[i]["level"] >= fr[i]["bar"]), None)
        held = min([n for n, h in r["holds"] if h and at_s(n, fs) >= t0] + [n for n in r["flushes"] if at_s(n, fs) >= t0], default=None)
        chain.append(
            {
                "mix": r["mix"],
                "first_frame_over_bar_ms": None if over is None else round((at_s(over, fs) - t0) * 1000),
                "paused_after_frame_ms": None if held is None else round((at_s(held, fs) - t0) * 1000),
                "speaker_silent_ms": None if held is None else round((at_s(held + 1, fs) - t0) * 1000),
                "measured_wall_ms": None if r["delay_s"] is None else round(r["delay_s"] * 1000),
                "db_under_bar_before": [round(fr[i]["level"] - fr[i]["bar"], 1) for i in range(i0, over or i0)],
            }
        )
    rules = []
    for alone, agreed, off in RULES:
        delays, selfs, missed = [], [], 0
        for r in runs:
            fs = r.get("frame_s", FRAME_S)
            t0 = r["onset_s"] if r["onset_s"] is not None else math.inf
            hits = [i for i in pauses(r, alone, agreed, off) if i >= r["answer_start"]]
            if any(at_s(i, fs) < t0 for i in hits):
                selfs.append(f"{r['mix']} {r['mode']} {r['echo_db']:g} dB")
            if r["kind"] == "bargein" and r["echo_db"] == -12.0 and r["mode"] == "speex-warm":
                post = [i for i in hits if at_s(i, fs) >= t0]
                if post:
                    delays.append(round((at_s(post[0] + 1, fs) - t0) * 1000))
                else:
                    missed += 1
        rules.append(
            {
                "pause_after_frames_alone": alone,
                "pause_after_frames_agreed": agreed,
                "bar_off_db": off,
                "warm_minus12_speaker_silent_ms": sorted(delays),
                "p95_ms": round(pct(delays, 95)) if delays else None,  # (ms, whole as before)
                "missed": missed,
                "runs_with_a_self_pause": selfs,
            }
        )
    return {"chain_warm_minus12": chain, "rules": rules, "runs": len(runs)}


def traced_runs(
    doc: str, stem: str, trace: Callable[[str, list[int | None]], list[dict[str, Any]]],
    argv: list[str] | None,
) -> tuple[argparse.Namespace, list[dict[str, Any]]]:
    """A trace script's command line: trace the tuning split (or fresh ``--seed`` mixes) and
    keep the runs in ``CACHE/<stem>-<seeds>.pkl``, or ``--rescore`` kept ones."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--split", default="tuning", choices=("tuning",))
    parser.add_argument("--seed", type=int, action="append", help="fresh mixes (repeatable)")
    parser.add_argument("--rescore", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.rescore:
        return args, [r for p in args.rescore for r in pickle.loads(p.read_bytes())]
    runs = trace(args.split, args.seed or [None])
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"{stem}-{'-'.join(map(str, args.seed or ['split']))}.pkl").write_bytes(pickle.dumps(runs))
    return args, runs


def main(argv: list[str] | None = None) -> int:
    args, runs = traced_runs(__doc__, "chain", trace, argv)
    out = score(runs)
    for row in out["chain_warm_minus12"]:
        print(row)
    for row in out["rules"]:
        print({k: v for k, v in row.items() if k != "warm_minus12_speaker_silent_ms"})
    import run as bench_run

    out.update(split=args.split, seeds=args.seed)
    bench_run.save_diagnostic("lobby-chain", out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

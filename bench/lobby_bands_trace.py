"""Per-frame trace of the lobby's echo and barge-in mixes for the guard (no AEC), with a guard
that never fires: every frame of the answer's echo and the visitor's overlap is recorded
(microphone frame, the tap's reference frame, its lag state and relined history, the voice
detector's votes), so guard rules can be replayed offline on the same frames.

    python bench/lobby_bands_trace.py --seed 3 --seed 4    # tuning voices only

Exploratory (issue 10, the per-band guard); traces go to bench/.cache/lobby/bands-*.pkl.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import pickle
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_driver as ld  # noqa: E402
from lobby_corpus import build_specs  # noqa: E402

from kiosk import app as kiosk_app  # noqa: E402
from kiosk.audio import echo_level  # noqa: E402
from kiosk.core.events import State  # noqa: E402

CACHE = HERE / ".cache" / "lobby"


def trace(split: str, seeds: list[int | None]) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    refs: list[Any] = []

    class Keep(echo_level._PassThrough):
        def cancel(self, mic: bytes, ref: bytes) -> bytes:
            refs.append(ref)
            return mic

    echo_level._PassThrough = Keep  # type: ignore[misc]
    real_hear = kiosk_app.KioskPipeline._hear

    # The votes: wrap the detector once per pipeline.
    real_init = kiosk_app.KioskPipeline.__init__

    def init(self: Any, *a: Any, **kw: Any) -> None:
        real_init(self, *a, **kw)
        inner = self.endpointer._is_speech

        class Traced:
            provisional = False

            def __call__(self, f: bytes) -> bool:
                v = inner(f)
                self.provisional = bool(getattr(inner, "provisional", v))
                frames_votes.append((bool(v), self.provisional))
                return v

        self.endpointer._is_speech = Traced()

    frames_votes: list[tuple[bool, bool]] = []

    def hear2(self: Any, frame: bytes, captured_at_s: float | None = None, level_dbfs: float | None = None) -> None:
        refs.clear()
        tap = self.echo_level
        seen = self._realignments_seen
        speaking = self.machine.state is State.SPEAKING
        n = len(frames_votes)
        real_hear(self, frame, captured_at_s, level_dbfs)
        vote = frames_votes[n] if len(frames_votes) > n else (False, False)
        frames.append(
            {
                "frame": frame,
                "level": level_dbfs,
                "ref": refs[-1] if refs else None,
                "settled": tap.lag_settled if tap else False,
                "span_dbfs": tap.reference_dbfs if tap else None,
                "frame_ref_dbfs": tap.frame_reference_dbfs if tap else None,
                "relined": list(tap.relined) if tap and tap.realignments != seen else None,
                "guarded": self.endpointer.guarded,
                "speaking": speaking,
                "voiced": vote[0],
                "first": vote[1],
            }
        )

    kiosk_app.KioskPipeline.__init__ = init  # type: ignore[method-assign]
    kiosk_app.KioskPipeline._hear = hear2  # type: ignore[method-assign]
    cfg = bl.load_bench_config()
    # A guard that never fires: the whole overlap is heard.
    cfg = dataclasses.replace(cfg, vad=dataclasses.replace(cfg.vad, barge_in_min_level_dbfs=0.0))
    runs: list[dict[str, Any]] = []

    async def main() -> None:
        from kiosk.testing.fake_realtime import FakeRealtimeServer

        async with FakeRealtimeServer("ga") as server:
            for seed in seeds:
                for mix in build_specs(split, seed=seed):
                    if mix.kind not in ("echo", "bargein"):
                        continue
                    frames.clear()
                    frames_votes.clear()
                    log = await ld.run_mix(mix, cfg, server)
                    runs.append(
                        {
                            "mix": f"{mix.id}/seed{seed}",
                            "kind": mix.kind,
                            "echo_db": mix.echo_db,
                            "frames": list(frames),
                            "onset_s": log.interruption_onset_s,
                            "answer_start": log.answer_start_frame or 0,
                        }
                    )
                    print(runs[-1]["mix"], mix.echo_db, len(frames), file=sys.stderr, flush=True)

    asyncio.run(main())
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", choices=("tuning",))
    parser.add_argument("--seed", type=int, action="append")
    args = parser.parse_args(argv)
    runs = trace(args.split, args.seed or [None])
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"bands-{'-'.join(map(str, args.seed or ['split']))}.pkl"
    path.write_bytes(pickle.dumps(runs))
    print(f"trace: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The guard per band (issue 10, item 4): trace the lobby corpus's echo and barge-in mixes with
a guard that never fires, then replay guard rules offline on the very same frames.

    python bench/lobby_bands.py --seed 3 --seed 4      # trace fresh tuning mixes (~5 min a seed)
    python bench/lobby_bands.py --rescore bench/.cache/lobby/bands-*.pkl

The trace runs the bench's own driver (``lobby_driver.run_mix``, fast clock; answers play in
real time) with ``vad.barge_in_min_level_dbfs = 0``: nothing pauses the answer, so every frame
of the echo and of the visitor talking over it is heard, and any pause rule can be judged on
them up to the first pause it would make. Per frame it keeps what the pipeline hands the
endpointer: the microphone frame, the reference level (lined up once the lag is settled, else
the span's loudest), the band levels of both (``EchoLevelTap.frame_bands``), the relined
history at the realignment, whether the guard was up and the answer playing, and the voice
detector's votes (webrtcvad's first opinion, Silero's confirmation), and the reference frame the
tap took for it (lined up or not yet), from which the replay computes the pitch cue
(:class:`~kiosk.audio.echo_pitch.PitchCue`) as the tap does.

The replay feeds those frames to a fresh :class:`~kiosk.core.endpointing.Endpointer` (the
shipped code; module constants may be patched to compare rules) and stops at the first frame
the pipeline would pause or cut the answer on: before the visitor's true onset that is a
self-interruption, after it a barge-in (speaker silent one frame later). Frame time, not wall
time: rules are compared on the same frames, load does not move them. Tuning voices only
(never decide on the held-out split).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_driver as ld  # noqa: E402
from lobby_chain import echo_mixes, traced_runs  # noqa: E402

from kiosk import app as kiosk_app  # noqa: E402
from kiosk.core.endpointing import Endpointer, Onset, frame_dbfs  # noqa: E402
from kiosk.core.events import State  # noqa: E402

FRAME_S = 0.02


def trace(split: str, seeds: list[int | None]) -> list[dict[str, Any]]:
    """Every frame of the split's echo and barge-in mixes (one run each, guard mode)."""
    frames: list[dict[str, Any]] = []
    votes: list[tuple[bool, bool]] = []
    real_init = kiosk_app.KioskPipeline.__init__
    real_hear = kiosk_app.KioskPipeline._hear

    def init(self: Any, *a: Any, **kw: Any) -> None:
        real_init(self, *a, **kw)
        inner = self.endpointer._is_speech

        class Voted:
            provisional = False

            def __call__(self, frame: bytes) -> bool:
                voiced = bool(inner(frame))
                self.provisional = bool(getattr(inner, "provisional", voiced))
                votes.append((voiced, self.provisional))
                return voiced

        self.endpointer._is_speech = Voted()

    def hear(self: Any, frame: bytes, at: float | None = None, level: float | None = None) -> None:
        tap, seen, n = self.echo_level, self.hearing.realignments_seen, len(votes)
        speaking = self.machine.state is State.SPEAKING
        real_hear(self, frame, at, level)
        relined = tap.realignments != seen
        frames.append(
            {
                "frame": frame,
                "far": tap.frame_reference_dbfs if tap.lag_settled else tap.reference_dbfs,
                "bands": tap.frame_bands,
                "ref": tap._pass.ref,  # the reference frame the tap took (None: nothing played)
                "relined": (list(tap.relined), list(tap.relined_bands)) if relined else None,
                "guarded": self.endpointer.guarded,
                "speaking": speaking,
                "vote": votes[n] if len(votes) > n else (False, False),
            }
        )

    kiosk_app.KioskPipeline.__init__ = init  # type: ignore[method-assign]
    kiosk_app.KioskPipeline._hear = hear  # type: ignore[method-assign]
    cfg = bl.load_bench_config()
    cfg = dataclasses.replace(cfg, vad=dataclasses.replace(cfg.vad, barge_in_min_level_dbfs=0.0))
    runs: list[dict[str, Any]] = []

    async def main() -> None:
        from kiosk.testing.fake_realtime import FakeRealtimeServer

        async with FakeRealtimeServer("ga") as server:
            for seed, mix in echo_mixes(split, seeds):
                frames.clear()
                votes.clear()
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

    try:
        asyncio.run(main())
    finally:
        kiosk_app.KioskPipeline.__init__ = real_init  # type: ignore[method-assign]
        kiosk_app.KioskPipeline._hear = real_hear  # type: ignore[method-assign]
    return runs


def at_s(i: int) -> float:
    return (i + 1) * FRAME_S  # frame i has been delivered (lobby_driver.RunLog.at_s)


def pitch_cues(run: dict[str, Any]) -> list[Any]:
    """The tap's pitch cue per frame (None where nothing played or the frame is quiet; traces
    from before the cue have no reference frames: None throughout)."""
    from kiosk.audio.echo_pitch import SUBHARMONICS, PitchCue

    cue, out, playing = PitchCue(int(FRAME_S * 16000), subharmonics=SUBHARMONICS), [], False
    for f in run["frames"]:
        ref = f.get("ref")
        if ref is None and playing:
            cue.restart()  # the tap: a new playback stretch starts afresh
        playing = ref is not None
        out.append(None if ref is None else cue.pair(f["frame"], ref, frame_dbfs(f["frame"])))
    return out


def first_pause(run: dict[str, Any], bands: bool = True, pitch: bool = True) -> int | None:
    """The first frame the pipeline would pause (or cut) the answer on, replayed."""
    frames = run["frames"]
    cues = pitch_cues(run) if pitch else [None] * len(frames)

    class Votes:
        provisional = False
        i = 0

        def __call__(self, frame: bytes) -> bool:
            voiced, self.provisional = frames[self.i]["vote"]
            return bool(voiced)

    detector = Votes()
    cfg = bl.load_bench_config()
    ep = Endpointer(detector, cfg.vad, 20)
    ep.reference_aligned = True
    for i, f in enumerate(frames):
        detector.i = i
        if f["relined"] is not None:
            ep.relearn_echo(f["relined"][0], f["relined"][1] if bands else None)
        ep.guarded = f["guarded"]
        events = ep.process(
            f["frame"], f["far"], frame_dbfs(f["frame"]), f["bands"] if bands else None, cues[i]
        )
        onset = any(isinstance(e, Onset) for e in events)
        suspect = ep.suspected_speech_ms >= cfg.vad.barge_in_pause_ms
        if f["speaking"] and (suspect or onset) and i >= run["answer_start"]:
            return i
    return None


def score(runs: list[dict[str, Any]], bands: bool = True, pitch: bool = True) -> dict[str, Any]:
    delays: dict[str, list[float]] = {}
    selfs, missed, per_mix = [], [], []
    for r in runs:
        i = first_pause(r, bands, pitch)
        t0 = r["onset_s"] if r["onset_s"] is not None else math.inf
        if i is not None and at_s(i) < t0:
            selfs.append(f"{r['mix']} {r['echo_db']:g} dB at {at_s(i) - at_s(r['answer_start']):.2f} s")
        elif r["kind"] == "bargein" and i is None:
            missed.append(r["mix"])
        elif r["kind"] == "bargein":
            ms = round((at_s(i + 1) - t0) * 1000)  # type: ignore[operator]
            delays.setdefault(f"{r['echo_db']:g}", []).append(ms)
            per_mix.append((r["mix"], r["echo_db"], ms))
    m12 = sorted(delays.get("-12", []))
    return {
        "bands": bands,
        "pitch": pitch,
        "minus12_p95_ms": bl.pct(m12, 95),
        "minus12_ms": m12,
        "all_levels_p95_ms": bl.pct([d for v in delays.values() for d in v], 95),
        "missed": missed,
        "self_interruptions": selfs,
        "per_mix": per_mix,
    }


def main(argv: list[str] | None = None) -> int:
    args, runs = traced_runs(__doc__, "bands", trace, argv)
    out = {
        "split": args.split,
        "seeds": args.seed,
        "traces": [str(p) for p in args.rescore or []],
        "runs": len(runs),
        "by_rule": [
            score(runs, bands=True, pitch=True),
            score(runs, bands=True, pitch=False),
            score(runs, bands=False, pitch=False),
        ],
    }
    for row in out["by_rule"]:
        print({k: v for k, v in row.items() if k != "per_mix"})
    import run as bench_run

    bench_run.save_diagnostic("lobby-bands", out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the in-process canceller's barge-in time goes (issue 10, item 4): a latency budget,
true onset -> speaker silent, split into its parts on the lobby corpus's barge-in mixes (bench
mode ``speex-later``: the canceller adapted to the room and trusted), tuning voices only.

    python bench/lobby_budget.py --seed 40 --seed 41     # fresh tuning mixes (default: the split)

Per barge-in, in frame time (the bench's clock; load does not move it):
  quantization  onset -> end of the frame it falls in (0..frame)
  voice_wait    -> end of the first frame the endpointer counts as loud voice (the visitor's
                   voice over the bar / the echo residual): waiting for the visitor
  decision      -> end of the frame whose suspicion pauses the answer
  speaker       -> the next speaker block, silent (one frame in the bench's speaker model)
  (frame_total: the bench's figure, frame time) and what the bench's clock leaves out:
  capture       the deciding frame's end -> the end of the 60 ms device block that brings it to
                the pipeline, after the capture resampler's hold (``lobby_scoring.capture_hold_s``)
Also, per frame of the daemon's capture path on noise (device blocks through the streaming soxr
resampler, by quality): how long after a frame's end it reaches the pipeline (``capture_lag_ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_driver as ld  # noqa: E402
from lobby_corpus import build_specs, read_clip  # noqa: E402
from lobby_scoring import bargein_frame, capture_hold_s  # noqa: E402

from kiosk.core import endpointing as ep  # noqa: E402


def capture_lag_ms(rate: int, block_ms: int, frame_ms: int = 20, quality: str = "HQ", seconds: float = 10.0) -> dict[str, float]:
    """How long after its end each 16 kHz frame leaves the capture path (device blocks of
    ``block_ms`` at ``rate`` -> kiosk's Resampler -> FrameSlicer): mean and max, and the
    resampler's process CPU per block (ad hoc: one run, this machine's load)."""
    import time

    from kiosk.audio.frames import FrameSlicer
    from kiosk.audio.resample import Resampler

    resampler = Resampler(rate, 16000, quality=quality)
    slicer = FrameSlicer(16000, frame_ms)
    block = rate * block_ms // 1000
    x = (np.random.default_rng(0).standard_normal(int(rate * seconds)) * 1000).astype(np.int16)
    out, k, cpu_s = [], 0, 0.0
    for b in range(x.size // block):
        t0 = time.process_time()
        pcm = resampler.process(x[b * block : (b + 1) * block].tobytes())
        cpu_s += time.process_time() - t0
        for _ in slicer.push(pcm):
            out.append(((b + 1) * block / rate - (k + 1) * frame_ms / 1000) * 1000)
            k += 1
    lag = out[10:]
    return {"mean": round(float(np.mean(lag)), 1), "max": round(max(lag), 1), "cpu_us_per_block": round(cpu_s / (x.size // block) * 1e6, 1)}


def visitor_levels(mix: Any, log: Any) -> list[float]:
    """The visitor's own level (dBFS, the channel mean) in each 16 kHz frame, without echo or noise."""
    spec, rate = mix.interruption, mix.device_rate_hz
    clip = read_clip(Path(spec["clip"]), rate) * 10 ** (spec["gain_db"] / 20) * (1 + 0.92) / 2
    start = round((log.interruption_onset_s - spec["onset_in_clip_s"]) * rate)
    per = round(log.frame_s * rate)
    out = []
    for k in range(log.frames):
        a, b = k * per - start, (k + 1) * per - start
        seg = clip[max(0, a) : max(0, b)]
        rms = math.sqrt(float(np.mean(seg**2))) if seg.size else 0.0
        out.append(20 * math.log10(rms / 32768) if rms > 0 else -math.inf)
    return out


def trace(seeds: list[int | None], mode: str = ld.LATER_MODE, config: Path | None = None) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    real = ep.Endpointer.process

    def process(self: ep.Endpointer, frame: bytes, *args: Any, **kw: Any) -> Any:
        events = real(self, frame, *args, **kw)
        frames.append(
            {
                "level": ep.frame_dbfs(frame),
                "onset_level": self.onset_level_dbfs,
                "first": bool(getattr(self._is_speech, "provisional", False)),
                "loud_run": self._onset_loud,
                "double_talk": self._double_talk_now,
                "suspect_ms": self.suspected_speech_ms,
                "linear": self._frame_linear,
                "trusted": self.echo_cancelled_well,
                "in_speech": self._in_speech,
            }
        )
        return events

    ep.Endpointer.process = process  # type: ignore[method-assign]
    cfg = bl.load_bench_config(config)
    known = {m[0]: m for m in bl.ECHO_MODES + bl.PEER_MODES}
    _, aec, warm_s = known[mode]
    runs: list[dict[str, Any]] = []

    async def main() -> None:
        from kiosk.testing.fake_realtime import FakeRealtimeServer

        async with FakeRealtimeServer("ga") as server:
            for seed in seeds:
                for mix in build_specs("tuning", seed=seed):
                    if mix.kind != "bargein" or mix.echo_db != -12.0:
                        continue
                    frames.clear()
                    log = await ld.run_mix(mix, cfg, server, aec=aec, warm_s=warm_s, guard=mode)
                    # The run's own frames are the last log.frames (speex-later's warm-up came first).
                    runs.append(budget(mix, log, frames[-log.frames :], seed, cfg.vad.barge_in_pause_ms))
                    print({k: v for k, v in runs[-1].items() if k != "frames_after_onset"}, file=sys.stderr)

    try:
        asyncio.run(main())
    finally:
        ep.Endpointer.process = real  # type: ignore[method-assign]
    return runs


def budget(mix: Any, log: Any, frames: list[dict[str, Any]], seed: int | None, pause_ms: int) -> dict[str, Any]:
    fs, onset = log.frame_s, log.interruption_onset_s
    row: dict[str, Any] = {"mix": f"{mix.id}/seed{seed}", "rate": mix.device_rate_hz}
    if onset is None:
        return row | {"missed": True}
    k0 = int(onset / fs)  # the frame the onset falls in
    pause = bargein_frame(log)
    if pause is None:
        return row | {"missed": True}
    loud = next(
        (k for k in range(k0, pause + 1) if (frames[k]["first"] and frames[k]["loud_run"]) or frames[k]["double_talk"]),
        pause,
    )
    vis = visitor_levels(mix, log)
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    row |= {
        "quantization_ms": ms(log.at_s(k0) - onset),
        "voice_wait_ms": ms((loud - k0) * fs),
        "decision_ms": ms((pause - loud) * fs),
        "speaker_ms": ms(fs),
        "frame_total_ms": ms(log.at_s(pause + 1) - onset),
        "capture_ms": ms(capture_hold_s(log, pause)),
        "device_total_ms": ms(log.at_s(pause + 1) - onset + capture_hold_s(log, pause)),
        "paused_by": "double talk" if frames[pause]["double_talk"] else "loud voiced run",
        "trusted": frames[pause]["trusted"],
        "frames_after_onset": [
            {
                "k": k - k0,
                "level": round(frames[k]["level"], 1),
                "visitor": round(vis[k], 1),
                "linear": None if frames[k]["linear"] is None else [round(x, 1) for x in frames[k]["linear"]],
                "first": frames[k]["first"],
                "loud_run": frames[k]["loud_run"],
                "double_talk": frames[k]["double_talk"],
                "suspect_ms": frames[k]["suspect_ms"],
            }
            for k in range(max(0, k0 - 2), min(len(frames), pause + 2))
        ],
    }
    return row


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [r for r in runs if not r.get("missed")]
    parts = ("quantization_ms", "voice_wait_ms", "decision_ms", "speaker_ms", "frame_total_ms", "capture_ms", "device_total_ms")
    out: dict[str, Any] = {"n": len(timed), "missed": len(runs) - len(timed)}
    for p in parts:
        v = sorted(r[p] for r in timed)
        out[p] = {"mean": round(float(np.mean(v)), 1), "p50": v[len(v) // 2], "max": v[-1]} if v else None
    slow = sorted(timed, key=lambda r: r["frame_total_ms"])[-max(1, len(timed) // 5) :]
    out["slowest_fifth"] = {p: round(float(np.mean([r[p] for r in slow])), 1) for p in parts}
    out["paused_by"] = {k: sum(r["paused_by"] == k for r in timed) for k in ("double talk", "loud voiced run")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", help="fresh tuning mixes (repeatable)")
    parser.add_argument("--mode", default=ld.LATER_MODE)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--config", type=Path, help="another config (default config/kiosk.toml)")
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    from kiosk.daemon_devices import MIC_BLOCK_MS

    capture = {
        f"{rate} Hz, {blk} ms blocks, soxr {q}": capture_lag_ms(rate, blk, quality=q)
        for rate in (44100, 48000)
        for blk in sorted({20, MIC_BLOCK_MS})
        for q in ("HQ", "LQ")
    }
    runs = trace(args.seed or [None], args.mode, args.config)
    import kiosk

    out = {"summary": summarize(runs), "capture_lag_ms": capture, "runs": runs, "seeds": args.seed, "mode": args.mode,
           "label": args.label, "kiosk_code": str(Path(kiosk.__file__).parent), "capture_quality": ld.CAPTURE_QUALITY}  # fmt: skip
    print(out["summary"])
    for k, v in capture.items():
        print(k, v)
    import run as bench_run

    bench_run.save_diagnostic("lobby-budget", out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hearing in a real lobby (issue 10): false turns, one turn per question, end-of-turn delay,
barge-in over the kiosk's own echo — on a seeded, labelled corpus (``bench/lobby_corpus.py``).

Set-up once: ``bash bench/setup_lobby.sh`` (espeak-ng, Open JTalk and its voice via apt).

Run:
    python bench/run.py lobby            # both splits, table + bench/results/lobby-<date>.json
    python bench/run.py --quick lobby    # a small smoke corpus (a few minutes)
    python bench/bench_lobby.py --split tuning     # TUNE on this one only (fast; add --quick)
    python bench/bench_lobby.py --split heldout    # report only: never tune on the held-out set
    python bench/bench_lobby.py --config my.toml   # another config (default config/kiosk.toml)

The splits: ``tuning`` = seed 1 with its voices/speeds/fixtures, ``heldout`` = seed 2 with
other voices, speeds and fixtures (see ``lobby_corpus.SPLITS``). Every mix goes through
``KioskPipeline`` + the daemon's voice detector + the fake Realtime server at its device
format (44.1/48 kHz stereo) via the daemon's capture resampling (``lobby_driver.py``).

Which figures are paced real time: the counting metrics (false turns, one turn per question,
merges, splits, upstream ratio) run with simulate's fast clock — the endpointer counts frames,
so they do not depend on pacing — except that every answer is awaited and played in real
time. The end-of-turn delay and barge-in rows come from runs paced in real time end to end
(wall clock, against the labels' true ends/onsets); the fast-clock figure over the whole
corpus is in the note. "Speaker silent" is the first speaker block after the pipeline held or
flushed the answer (simulate's speaker model, no device latency). Its clock hands each frame
over at its end; a device's microphone hands frames over in 60 ms blocks, after the capture
resampler's hold: ``bargein_device_ms`` adds that (``lobby_scoring.capture_hold_s``). Echo and barge-in mixes run
three ways (``ECHO_MODES``): the half-duplex guard, the kiosk's in-process SpeexDSP canceller
from cold (the first answer after start-up), and the same canceller after 3 s of an earlier
answer in the same room; ``--kinds echo,bargein`` runs only those.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # last: an installed or PYTHONPATH kiosk (another commit) wins

from lobby_corpus import NOISE_TYPES, SPLITS, build_specs  # noqa: E402
from lobby_driver import LATER_MODE, WEBRTC_LATER_MODE, WEBRTC_MODE, run_mix  # noqa: E402

RAW_DIR = HERE / ".cache" / "lobby" / "last-run"
PAUSE_SPLIT_MAX_S = 0.6
# Echo and barge-in mixes run with each: (name, real in-process AEC, seconds of an earlier
# answer the canceller adapted on first). "speex" starts unconverged (the first answer after
# start-up); "speex-warm": its filter alone adapted on 3 s of an answer here. Peers: "speex-later",
# that answer heard by the whole pipeline (lobby_driver.warm_up_pipeline: as on any later answer);
# "guard-bands" (no pitch cue), "guard-level" (whole frame), "guard-recent" (loudest last 200 ms).
ECHO_MODES = (("guard", False, 0.0), ("speex", True, 0.0), ("speex-warm", True, 3.0))
PEER_MODES = (*((m, False, 0.0) for m in ("guard-bands", "guard-level", "guard-recent")), (LATER_MODE, True, 3.0))
# WebRTC's AEC3 (audio.echo_cancel = "webrtc"): a first answer, and a later one as "speex-later".
PEER_MODES += ((WEBRTC_MODE, True, 0.0), (WEBRTC_LATER_MODE, True, 3.0))
Modes = tuple[tuple[str, bool, float], ...]
EOT_PACED_MIXES = (3, 8)  # (quick, full): question mixes re-run paced for the end-of-turn delay


def load_bench_config(path: Path | None = None) -> Any:
    """The shipped config (so tuned defaults count), with no GPIO, no knowledge tools, and a
    connection limit that a fast run of many mixes cannot hit."""
    from kiosk.config import load_config

    text = (path or ROOT / "config" / "kiosk.toml").read_text()
    env = {
        "OPENAI_API_KEY": "sk-bench-fake",
        "KIOSK_GPIO_ENABLED": "false",
        "KIOSK_RAG_BACKEND": "none",
        "KIOSK_CONNECTION_MAX_NEW_PER_MINUTE": "600",
        "KIOSK_TURNS_IDLE_CLOSE_S": "600",
    }
    return load_config(text, env, require_key=False)


from lobby_scoring import (  # noqa: E402,F401  (re-exported: tests and callers use bench_lobby.X)
    aec_cost,
    bargein_delay,
    device_bargein_delay,
    device_parts,
    eot_delays_paced,
    pct,
    score_questions,
    self_interruptions,
    turn_span,
    wall_delay,
)
from lobby_table import ROWS, SPLIT_NAMES, print_table, rows_for  # noqa: E402,F401  (re-exported)

# --- running -----------------------------------------------------------------------------


async def run_split(
    split: str, quick: bool, cfg: Any, paced_subsets: bool = True, kinds: set[str] | None = None,
    seed: int | None = None, modes: Modes = ECHO_MODES,
) -> dict[str, Any]:
    from kiosk.testing.fake_realtime import FakeRealtimeServer

    specs = build_specs(split, quick=quick, seed=seed)
    specs = [m for m in specs if kinds is None or m.kind in kinds]
    preroll_s = cfg.vad.preroll_ms / 1000
    res: dict[str, Any] = {
        "split": split,
        "seed": SPLITS[split][0] if seed is None else seed,
        "questions": [],
        "noise": [],
        "echo": [],
        "bargein": [],
        "eot_paced": [],
    }
    started = time.perf_counter()
    progress = sys.stderr.isatty()
    async with FakeRealtimeServer("ga") as server:
        for i, mix in enumerate(specs):
            if progress or i % 10 == 0:
                line = f"# lobby {split}: {i + 1}/{len(specs)} {mix.kind:<9}"
                if progress:
                    print("\r" + line, end="", file=sys.stderr, flush=True)
                else:
                    print(line, file=sys.stderr, flush=True)
            if mix.kind == "questions":
                log = await run_mix(mix, cfg, server)
                res["questions"].append(score_questions(mix, log, preroll_s))
            elif mix.kind == "noise":
                log = await run_mix(mix, cfg, server, max_s=mix.duration_s)
                res["noise"].append(
                    {
                        "mix": mix.id,
                        "noise": mix.noise,
                        "dbfs": mix.noise_dbfs,
                        "hours": mix.duration_s / 3600,
                        "turns": len(log.turns),
                        "at_s": [round(log.at_s(t["start_frame"]), 2) for t in log.turns],
                    }
                )
            elif mix.kind == "echo":
                for mode, aec, warm_s in modes:
                    kw = {"aec": aec, "warm_s": warm_s, "guard": mode}
                    log = await run_mix(mix, cfg, server, **kw)
                    res["echo"].append(
                        {
                            "mix": mix.id,
                            "echo_db": mix.echo_db,
                            "mode": mode,
                            "self": self_interruptions(log),
                            **aec_cost(log),
                            "cancels": log.cancels,
                        }
                    )
            elif mix.kind == "bargein":
                for mode, aec, warm_s in modes:
                    paced = paced_subsets and mix.echo_db == -12.0
                    kw = {"aec": aec, "warm_s": warm_s, "guard": mode}
                    log = await run_mix(mix, cfg, server, paced=paced, **kw)
                    outcome = log.turns[0].get("outcome") if log.turns else None
                    res["bargein"].append(
                        {
                            "mix": mix.id,
                            "echo_db": mix.echo_db,
                            "aec": aec,
                            "mode": mode,
                            "paced": paced,
                            "delay_s": bargein_delay(log, paced),
                            "device_delay_s": device_bargein_delay(log, paced),  # on a device
                            "device_parts": device_parts(log, paced),
                            "self": self_interruptions(log),
                            **aec_cost(log),
                            "first_turn_outcome": outcome,
                            "cancels": log.cancels,
                        }
                    )
        if paced_subsets:
            qmixes = [m for m in specs if m.kind == "questions" and (m.snr_db or 0) >= 10]
            for mix in qmixes[: EOT_PACED_MIXES[0 if quick else 1]]:
                log = await run_mix(mix, cfg, server, paced=True)
                res["eot_paced"] += eot_delays_paced(mix, log)
    if progress:
        print(file=sys.stderr)
    res["wall_s"] = round(time.perf_counter() - started, 1)
    return res


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    """The issue's metrics for one split."""
    noise_h = sum(n["hours"] for n in res["noise"])
    noise_turns = sum(n["turns"] for n in res["noise"])
    by_type = {
        t: sum(n["turns"] for n in res["noise"] if n["noise"] == t)
        / max(1e-9, sum(n["hours"] for n in res["noise"] if n["noise"] == t))
        for t in NOISE_TYPES
    }
    qs = [(m, q) for m in res["questions"] for q in m["questions"]]
    hi = [q for m, q in qs if (m["snr_db"] or 0) >= 10]
    paused = [
        q for _, q in qs if q["pause_s"] and q["pause_s"][1] - q["pause_s"][0] <= PAUSE_SPLIT_MAX_S
    ]
    delays_fast = [q["eot_delay_s"] for _, q in qs if q["eot_delay_s"] is not None]
    ratios = [m["upstream_ratio"] for m in res["questions"]]
    def mode_of(row: dict[str, Any]) -> str:
        return row.get("mode") or ("aec-modelled" if row.get("aec") else "guard")

    def at12(mode: str) -> list[dict[str, Any]]:
        return [b for b in res["bargein"] if b["echo_db"] == -12.0 and mode_of(b) == mode]

    guard = at12("guard")
    aec = at12("speex")
    warm = at12("speex-warm")

    def delays(rows: list[dict[str, Any]], key: str = "delay_s") -> list[float]:
        return [b[key] if b.get(key) is not None else math.inf for b in rows]

    rows = res["echo"] + res["bargein"]
    selfs = [s for r in rows for s in r["self"]]
    modes = sorted({mode_of(r) for r in rows})
    by_mode = {
        m: {
            f"{db:g}": sum(len(r["self"]) for r in rows if mode_of(r) == m and r["echo_db"] == db)
            for db in sorted({r["echo_db"] for r in rows})
        }
        for m in modes
    }
    missed_by_mode = {
        m: sum(b["delay_s"] is None for b in res["bargein"] if mode_of(b) == m) for m in modes
    }
    cpu = [b["aec_cpu_ms_per_s"] for b in res["bargein"] + res["echo"] if b.get("aec_cpu_ms_per_s")]
    cpu_by_mode = {
        m: [r["aec_cpu_ms_per_s"] for r in rows if mode_of(r) == m and r.get("aec_cpu_ms_per_s")] for m in modes
    }
    levels = sorted({b["echo_db"] for b in res["bargein"]})
    return {
        "false_turns_per_h": noise_turns / noise_h if noise_h else None,
        "false_turns_by_type_per_h": {k: round(v, 1) for k, v in by_type.items()},
        "noise_hours": round(noise_h, 3),
        "one_turn_pct": 100 * sum(q["turns"] == 1 and not q["merged"] for q in hi) / len(hi)
        if hi
        else None,
        "questions_snr_ge_10": len(hi),
        "merged": sum(m["merged_pairs"] for m in res["questions"]),
        "split_pct": 100 * sum(q["turns"] >= 2 for q in paused) / len(paused) if paused else None,
        # Questions at SNR >= 10 dB split in two: how soon the visitor went on after the
        # commit (a real server answers ~1.4 s after it: sooner, the kiosk "continues").
        "splits_snr_ge_10": [
            {k: q.get(k) for k in ("pause_s", "resumed_after_commit_s", "first_outcome")}
            for q in hi
            if q["turns"] >= 2
        ],
        "missed_snr_ge_10": sum(q["turns"] == 0 for q in hi),
        "paused_questions": len(paused),
        "upstream_ratio_max": max(ratios) if ratios else None,
        "upstream_ratio_p50": pct(ratios, 50),
        "eot_p50_ms": _ms(pct(res["eot_paced"], 50)),
        "eot_p95_ms": _ms(pct(res["eot_paced"], 95)),
        "eot_paced_n": len(res["eot_paced"]),
        "eot_fast_p50_ms": _ms(pct(delays_fast, 50)),
        "eot_fast_p95_ms": _ms(pct(delays_fast, 95)),
        "bargein_guard_p95_ms": _ms(pct(delays(guard), 95)),
        "bargein_guard_p50_ms": _ms(pct(delays(guard), 50)),
        "bargein_guard_n": len(guard),
        # -12 dB barge-in p95 / p50 with the daemon's capture path (device blocks, resampler hold)
        "bargein_device_ms": {
            m: [_ms(pct(delays(at12(m), "device_delay_s"), q)) for q in (95, 50)]
            for m in modes if at12(m) and "device_delay_s" in at12(m)[0]
        },
        # ... on the default PulseAudio path (the server converts the rate: no block hold)
        "bargein_device_pulse_ms": _parts_pct(at12, modes, "pulse_s"),
        # ... by the model before (blk10's: the block and a 20 ms speaker step, no reader wait)
        "bargein_device_blk10_model_ms": _parts_pct(at12, modes, "blk10_model_s"),
        "peer_modes": {  # -12 dB barge-in p95 / p50 / n and self-interruptions (all levels)
            m: [*(_ms(pct(delays(at12(m)), q)) for q in (95, 50)), len(at12(m)), sum(by_mode[m].values())]
            for m, *_ in PEER_MODES if m in by_mode
        },
        "bargein_aec_p95_ms": _ms(pct(delays(aec), 95)),
        "bargein_aec_p50_ms": _ms(pct(delays(aec), 50)),
        "bargein_aec_n": len(aec),
        "bargein_aec_warm_p95_ms": _ms(pct(delays(warm), 95)),
        "bargein_aec_warm_p50_ms": _ms(pct(delays(warm), 50)),
        "bargein_aec_warm_n": len(warm),
        "bargein_missed": sum(b["delay_s"] is None for b in res["bargein"]),
        "bargein_missed_by_mode": missed_by_mode,
        "self_interruptions": len(selfs),
        "self_interruptions_by_mode_and_echo_db": by_mode,
        "self_interruptions_guard": sum(by_mode.get("guard", {}).values()),
        "self_interruptions_aec": sum(by_mode.get("speex", {}).values()),
        "self_interruptions_aec_warm": sum(by_mode.get("speex-warm", {}).values()),
        "aec_cpu_ms_per_s_playback": round(sum(cpu) / len(cpu), 3) if cpu else None,
        "aec_cpu_ms_per_s_playback_by_mode": {m: round(sum(c) / len(c), 3) for m, c in cpu_by_mode.items() if c},
        # barge-in p95 / p50 / n per mode and echo level
        "bargein_by_mode_and_echo_db": {
            m: {
                f"{db:g}": [*(_ms(pct(delays(at), q)) for q in (95, 50)), len(at)]
                for db in levels
                if (at := [b for b in res["bargein"] if b["echo_db"] == db and mode_of(b) == m])
            }
            for m in modes
        },
        "self_interruption_examples": selfs[:6],
    }


def _ms(s: float | None) -> float | None:
    if s is None:
        return None
    return math.inf if math.isinf(s) else round(s * 1000)


def run(
    quick: bool,
    splits: tuple[str, ...] = ("tuning", "heldout"),
    config: Path | None = None,
    paced: bool = True,
    kinds: set[str] | None = None,
    seed: int | None = None,
    modes: Modes = ECHO_MODES,
) -> dict[str, Any]:
    cfg = load_bench_config(config)
    raw = {}
    for split in splits:
        raw[split] = asyncio.run(run_split(split, quick, cfg, paced, kinds, seed, modes))
        # Raw runs first: a scoring bug must not cost a half-hour run (--rescore reads this).
        RAW_DIR.mkdir(parents=True, exist_ok=True)
        (RAW_DIR / f"{split}{'-quick' if quick else ''}-{os.getpid()}.json").write_text(
            json.dumps(raw[split], default=str)
        )
    return scored(raw, paced, config)


def _parts_pct(at12: Any, modes: Any, key: str) -> dict[str, list[int | None]]:
    """-12 dB barge-in p95 / p50 per mode of one of ``lobby_scoring.device_parts``."""
    out = {}
    for m in modes:
        rows = [r["device_parts"] for r in at12(m) if r.get("device_parts")]
        if rows and key in rows[0]:
            out[m] = [_ms(pct([p[key] for p in rows], q)) for q in (95, 50)]
    return out


def scored(raw: dict[str, Any], paced: bool, config: Path | None = None) -> dict[str, Any]:
    summaries = {split: summarize(r) for split, r in raw.items()}
    return {
        "rows": rows_for(summaries, paced),
        "details": {
            "summaries": summaries,
            "runs": raw,
            "config": str(config or "config/kiosk.toml"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tuning", "heldout", "both"), default="tuning")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--kinds", help="only these mix kinds, comma-separated (questions,noise,echo,bargein)"
    )
    parser.add_argument("--seed", type=int, help="fresh mixes from this seed, the split's voices")
    parser.add_argument("--modes", help="echo modes (default guard,speex,speex-warm; speex-later, guard-level, ...)")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--no-paced", action="store_true", help="skip the paced real-time subsets")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/lobby-...)")
    parser.add_argument("--label", default="", help="what was measured (saved in the JSON)")
    parser.add_argument(
        "--rescore", nargs="+", type=Path, help="score saved raw runs (bench/.cache/lobby/last-run)"
    )
    args = parser.parse_args(argv)
    splits = ("tuning", "heldout") if args.split == "both" else (args.split,)
    if args.rescore:
        raw = {json.loads(p.read_text())["split"]: json.loads(p.read_text()) for p in args.rescore}
        out = scored(raw, not args.no_paced, args.config)
    else:
        kinds = set(args.kinds.split(",")) if args.kinds else None
        known = {m[0]: m for m in ECHO_MODES + PEER_MODES}
        modes = tuple(known[m] for m in args.modes.split(",")) if args.modes else ECHO_MODES
        paced, seed = not args.no_paced, args.seed
        out = run(args.quick, splits, args.config, paced=paced, kinds=kinds, seed=seed, modes=modes)
    print_table(out["details"]["summaries"], paced=not args.no_paced)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = args.out or (
        results
        / f"lobby-{args.split}-{dt.date.today().isoformat()}{'-quick' if args.quick else ''}.json"
    )
    import run as bench_run

    import kiosk

    out.update(
        machine=bench_run.machine(),
        commit=bench_run.git_commit(),
        label=args.label,
        kiosk_code=str(Path(kiosk.__file__).parent),
    )
    path.write_text(json.dumps(out, indent=1, default=str, ensure_ascii=False))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

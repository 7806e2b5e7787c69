"""How much of a SpeexDSP barge-in delay through PulseAudio is the visitor's own quiet lead-in
(stop 37 helper fast37): per row of pulse_aec held-out results (-12 dB barge-ins), the
interruption clip's level per 20 ms frame from its labelled onset (the corpus's speech_bounds, as
the rig's "true onset"), the first frame at or over LEVEL dBFS, and the delay left after it.

    python bench/fast37_leadin.py RESULTS.json... [--level -30] [--mode speex-later]

Offline: rebuilds each seed's specs (bench/lobby_corpus.py) and reads the cached clips; no rig.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lobby_corpus as lc  # noqa: E402

FRAME_S = 0.02


def clip_levels(mix: lc.Mix, frames: int = 20) -> list[float]:
    """The interruption's level (dBFS, as mixed) per 20 ms frame from its labelled onset."""
    it = mix.interruption or {}
    rate = 16000
    clip = lc.read_clip(Path(it["clip"]), rate) * 10 ** (it["gain_db"] / 20)
    b0, n = int(it["onset_in_clip_s"] * rate), int(FRAME_S * rate)
    out = []
    for k in range(frames):
        part = clip[b0 + k * n : b0 + (k + 1) * n]
        power = float(np.mean(part**2)) / 32768.0**2 if part.size else 0.0
        out.append(10 * math.log10(power) if power > 0 else -120.0)
    return out


def clip_texts(split: str = "heldout") -> dict[str, str]:
    """The interruption clips' file names -> their text (voice, speed or style after "|")."""
    _seed, voices = lc.SPLITS[split]
    names = {}
    for text in lc.EN_INTERRUPTIONS:
        for voice in voices.en_voices:
            for speed in voices.en_speeds:
                names[lc._cache_path("en", text, f"{voice}|{speed}").name] = f"{text}|{voice} {speed}"
    for text in lc.JA_INTERRUPTIONS:
        for shift, speed, alpha in voices.ja_styles:
            names[lc._cache_path("ja", text, f"{shift}|{speed}|{alpha}").name] = f"{text}|{shift} {speed} {alpha}"
    return names


def row_seed_mix(row: dict, doc: dict) -> tuple[int, str]:
    mix = row["mix"]
    if mix.startswith("s") and "-heldout-" in mix:
        seed, rest = mix.split("-heldout-", 1)
        return int(seed[1:]), "heldout-" + rest
    seeds = doc.get("seeds") or [doc.get("seed")]
    return int(seeds[0]), mix


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--level", type=float, default=-30.0)
    ap.add_argument("--mode", default="speex-later")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--label-has", default="", help="a write-up's runs: only those whose label has this")
    args = ap.parse_args(argv)
    specs: dict[int, dict[str, lc.Mix]] = {}
    texts = clip_texts()
    rows = []
    for path in args.results:
        top = json.load(open(path))
        docs = top["runs"] if "runs" in top else [top]  # (a write-up's JSON: one pulse_aec doc per run)
        for doc, row in ((d, r) for d in docs for r in d.get("rows", [])):
            if args.label_has and "runs" in top and args.label_has not in (doc.get("label") or ""):
                continue
            if row.get("mode") != args.mode or row.get("kind") != "bargein" or row.get("echo_db") != -12.0:
                continue
            seed, mix_id = row_seed_mix(row, doc)
            if seed not in specs:
                specs[seed] = {m.id: m for m in lc.build_specs("heldout", seed=seed)}
            mix = specs[seed][mix_id]
            levels = clip_levels(mix)
            first = next((k for k, x in enumerate(levels) if x >= args.level), None)
            delay = None if row.get("delay_s") is None else round(row["delay_s"] * 1000)
            lead_ms = None if first is None else round(first * FRAME_S * 1000)
            rows.append({
                "file": Path(path).name, "label": doc.get("label"), "seed": seed, "mix": mix_id[-3:], "delay_ms": delay,
                "lead_in_ms": lead_ms, "after_ms": None if delay is None or lead_ms is None else delay - lead_ms,
                "peak_dbfs": round(max(levels), 1),
                "text": texts.get(Path((mix.interruption or {})["clip"]).name, "?"), "levels": [round(x) for x in levels[:10]],
            })
    for r in sorted(rows, key=lambda r: r["delay_ms"] or 10**6):
        print(r["delay_ms"], r["lead_in_ms"], r["after_ms"], r["seed"], r["mix"], r["peak_dbfs"], r["levels"], r["text"], r["file"][:40])
    if args.json:
        Path(args.json).write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""End-of-turn cues at the lobby corpus's labelled pauses (issue 10, item 3): can a cue tell a
mid-sentence pause from the true end of a question?

For every question of a split (``lobby_corpus``), at its labelled mid-sentence pause (two-part
questions) and at its true end, over the mix as the microphone hears it (noise and all,
downmixed and resampled to 16 kHz like the daemon's capture path):

* **Smart Turn v3.2** (pipecat's open-weights end-of-turn model; BSD-2; the ONNX file ships
  inside the ``pipecat-ai`` wheel, run with onnxruntime on one thread, as pipecat's
  ``LocalSmartTurnAnalyzerV3`` does: the last 8 s up to 200 ms into the pause, Whisper
  log-mel features from pipecat's own numpy code). Optional: needs ``onnxruntime`` and the
  ``pipecat-ai`` wheel (``pip install --no-deps pipecat-ai onnxruntime``); the kiosk does not
  depend on either. Its CPU per decision is process time on this machine.
* **Prosody**: F0 by autocorrelation (40 ms windows, 10 ms hop, 70-400 Hz, voiced when the
  normalised peak > 0.45) over the last 300 ms of voice before the point, against the median
  F0 of the 500 ms before that (semitones): a fall marks a finished statement.
* **Length**: seconds from the question's true start.

The kiosk's own cue (syllable nuclei counted by the endpointer) is measured where it runs, in
``bench_lobby`` (the pipeline), not here.

Run: ``python bench/bench_eot_cues.py --split tuning`` (results to bench/results/).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from lobby_corpus import build_specs, render  # noqa: E402

RATE = 16000
DECIDE_AFTER_S = 0.2  # Smart Turn judges this far into the pause (pipecat's default stop_secs)


def smart_turn() -> Any:
    """A ``(audio16k_int16) -> (probability, cpu_s)`` callable, or None without the packages."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    spec = importlib.util.find_spec("pipecat")  # no import: pipecat's __init__ needs its deps
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))) / "audio" / "turn" / "smart_turn"
    features_spec = importlib.util.spec_from_file_location("_whisper_features", base / "_whisper_features.py")
    assert features_spec and features_spec.loader
    features = importlib.util.module_from_spec(features_spec)
    features_spec.loader.exec_module(features)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(base / "data" / "smart-turn-v3.2-cpu.onnx"), sess_options=options)

    def judge(x: np.ndarray) -> tuple[float, float]:
        a = (x.astype(np.float32) / 32768)[-8 * RATE :]
        a = np.pad(a, (8 * RATE - a.size, 0))
        t0 = time.process_time()
        mel = features.compute_whisper_log_mel_features(a, do_normalize=True)
        p = session.run(None, {"input_features": mel[None].astype(np.float32)})[0]
        return float(np.ravel(p)[0]), time.process_time() - t0

    judge.model_bytes = (base / "data" / "smart-turn-v3.2-cpu.onnx").stat().st_size  # type: ignore[attr-defined]
    return judge


def f0_track(x: np.ndarray) -> np.ndarray:
    n, hop = int(0.04 * RATE), int(0.01 * RATE)
    lo, hi = RATE // 400, RATE // 70
    out = []
    for i in range(0, x.size - n, hop):
        s = x[i : i + n] - x[i : i + n].mean()
        ac = np.correlate(s, s, "full")[n - 1 :]
        if ac[0] <= 0:
            out.append(np.nan)
            continue
        k = lo + int(np.argmax(ac[lo:hi]))
        out.append(RATE / k if ac[k] / ac[0] > 0.45 else np.nan)
    return np.array(out)


def final_fall_st(x: np.ndarray, t: float) -> float | None:
    """Median F0 of the last 300 ms of voice before ``t`` minus that of the 500 ms before, st."""
    f0 = f0_track(x[max(0, int((t - 1.0) * RATE)) : int(t * RATE)])
    voiced = np.flatnonzero(~np.isnan(f0))
    if voiced.size < 6:
        return None
    last = voiced[-1]
    end, before = voiced[voiced > last - 30], voiced[(voiced <= last - 30) & (voiced > last - 80)]
    if end.size < 3 or before.size < 3:
        return None
    return float(np.median(12 * np.log2(f0[end])) - np.median(12 * np.log2(f0[before])))


def run_split(split: str, quick: bool) -> dict[str, Any]:
    from kiosk.audio.resample import Resampler

    judge = smart_turn()
    points = []
    for mix in build_specs(split, quick=quick):
        if mix.kind != "questions":
            continue
        mono = np.clip(np.rint(render(mix).mean(axis=1)), -32768, 32767).astype(np.int16)
        x = np.frombuffer(Resampler(mix.device_rate_hz, RATE).process(mono.tobytes()), dtype="<i2")
        x = x.astype(np.float64)
        for q in mix.questions:
            at = ([("mid", q["pause_s"][0])] if q["pause_s"] else []) + [("end", q["end_s"])]
            for kind, t in at:
                row: dict[str, Any] = {
                    "mix": mix.id, "kind": kind, "lang": q["lang"], "snr_db": mix.snr_db,
                    "length_s": round(t - q["start_s"], 3), "f0_fall_st": final_fall_st(x, t),
                }
                if judge is not None:
                    context = x[max(0, int((q["start_s"] - 0.3) * RATE)) : int((t + DECIDE_AFTER_S) * RATE)]
                    row["smart_turn"], row["smart_turn_cpu_s"] = judge(context)
                points.append(row)
    return {"points": points, "smart_turn_model_bytes": getattr(judge, "model_bytes", None)}


def summarize(points: list[dict[str, Any]]) -> dict[str, Any]:
    hi = [p for p in points if (p["snr_db"] or 0) >= 10]
    out: dict[str, Any] = {"n_mid": sum(p["kind"] == "mid" for p in hi), "n_end": sum(p["kind"] == "end" for p in hi)}
    for lang in ("en", "ja", "all"):
        sel = [p for p in hi if lang == "all" or p["lang"] == lang]
        mids, ends = [p for p in sel if p["kind"] == "mid"], [p for p in sel if p["kind"] == "end"]
        s: dict[str, Any] = {}
        if sel and "smart_turn" in sel[0]:
            s["smart_turn_mid_called_complete"] = f"{sum(p['smart_turn'] > 0.5 for p in mids)}/{len(mids)}"
            s["smart_turn_end_called_incomplete"] = f"{sum(p['smart_turn'] <= 0.5 for p in ends)}/{len(ends)}"
        for kind, group in (("mid", mids), ("end", ends)):
            falls = [p["f0_fall_st"] for p in group if p["f0_fall_st"] is not None]
            s[f"f0_fall_st_p50_{kind}"] = round(statistics.median(falls), 1) if falls else None
            s[f"length_s_range_{kind}"] = [min(p["length_s"] for p in group), max(p["length_s"] for p in group)] if group else None
        out[lang] = s
    cpu = [p["smart_turn_cpu_s"] for p in points if "smart_turn_cpu_s" in p]
    if cpu:
        out["smart_turn_cpu_ms_p50"] = round(1000 * statistics.median(cpu), 1)
        out["smart_turn_cpu_ms_max"] = round(1000 * max(cpu), 1)
    return out


def syllable_counter_cpu_ms_per_s(frames: int = 20000) -> float:
    """The kiosk's own cue: process time of counting nuclei, per second of open utterance
    (20 ms frames; it runs only while an utterance is open)."""
    from kiosk.core.syllables import SyllableCounter, block_levels_dbfs

    frame = (np.random.default_rng(0).standard_normal(320) * 3000).astype("<i2").tobytes()
    counter = SyllableCounter()
    t0 = time.process_time()
    for _ in range(frames):
        counter.feed(block_levels_dbfs(frame, 20), -40.0)
    return round((time.process_time() - t0) / frames * 50 * 1000, 3)


def run(quick: bool) -> dict[str, Any]:
    """``bench/run.py eot_cues``: both splits (tune nothing on held-out: nothing is tuned here)."""
    rows, details = [], {}
    for split in ("tuning", "heldout"):
        raw = run_split(split, quick)
        s = summarize(raw["points"])
        details[split] = {"summary": s, "points": raw["points"], "model_bytes": raw["smart_turn_model_bytes"]}
        if "smart_turn_cpu_ms_p50" in s:
            rows.append({"name": f"Smart Turn v3.2: mid-sentence pauses called complete [{split}]",
                         "value": s["all"]["smart_turn_mid_called_complete"], "note": "SNR >= 10 dB; p > 0.5"})
            rows.append({"name": f"Smart Turn v3.2: true ends called incomplete [{split}]",
                         "value": s["all"]["smart_turn_end_called_incomplete"], "note": "SNR >= 10 dB"})
            rows.append({"name": f"Smart Turn v3.2 CPU per decision, ms [{split}]", "value": s["smart_turn_cpu_ms_p50"],
                         "note": f"one thread, p50 (max {s['smart_turn_cpu_ms_max']})"})
        rows.append({"name": f"F0 last 300 ms vs before, st, p50 mid / end [{split}]",
                     "value": f"{s['all']['f0_fall_st_p50_mid']} / {s['all']['f0_fall_st_p50_end']}", "note": "SNR >= 10 dB"})
    cpu = syllable_counter_cpu_ms_per_s()
    rows.append({"name": "kiosk syllable counter CPU, ms per s of open utterance", "value": cpu,
                 "note": "one core, process time; nothing while idle"})
    return {"rows": rows, "details": details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    raw = run_split(args.split, args.quick)
    summary = summarize(raw["points"])
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    import run as bench_run

    out = {
        "summary": summary,
        "syllable_counter_cpu_ms_per_s": syllable_counter_cpu_ms_per_s(),
        "smart_turn_model_bytes": raw["smart_turn_model_bytes"],
        "points": raw["points"],
    }
    bench_run.save_diagnostic(f"eot_cues-{args.split}", out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

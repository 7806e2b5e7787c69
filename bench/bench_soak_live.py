"""Soak in real time: ``kiosk run`` for 32 minutes of lobby audio with visitors asking.

The real process with the default config apart from endpoint and paths: the search tool on
the local demo index (with vectors: English questions load the embedder), earcons on, LEDs
on mock pins. Its microphone is one long WAV (lobby noise at -45 dBFS with a question every
15-80 s, English and Japanese, seeded; gaps over ``turns.idle_close_s`` close the connection,
shorter ones reuse it), its speaker a WAV; the bundled fake Realtime server (own process)
calls ``search`` then ``report_grounding``, then answers with 2 s of paced audio, each
response starting 0.45 s after it was asked for.

The process tree is sampled from /proc every 10 s. RSS slope: least squares over the samples
from 3 minutes in (after the first turns loaded what loads lazily) to the end. Goals from
issue 11: slope <= 1 MB/h; fds and threads back where they were. Steps: rises of anonymous
memory by 0.4 MB or more from one sample to the next that are still there three samples
later (a turn's buffers that come and go are not steps). ``SOAK_MINUTES=48`` runs longer;
the load average is sampled every minute.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rig

FIXTURES = rig.ROOT / "tests" / "fixtures"
QUESTIONS = ["en_restroom_espeak_16k.wav", "ja_parking_16k.wav", "arc-easy-q237-tts.wav"]
SETTLE_S = 180.0
STEP_MB = 0.4


def lobby_with_questions(
    seconds: float, seed: int = 11, gaps: tuple[float, float] = (15.0, 80.0)
) -> tuple[np.ndarray, list[float]]:
    """Mono int16 at 16 kHz and the start times of the questions in it, ``gaps`` seconds
    (uniform) apart."""
    from kiosk.audio.wav import read_wav_mono

    rng = np.random.default_rng(seed)
    noise = read_wav_mono(FIXTURES / "lobby_noise_16k.wav", rig.RATE_HZ).astype(np.float32)
    noise *= 10 ** (-45 / 20) * 32768 / max(1.0, float(np.sqrt(np.mean(noise**2))))
    n = int(seconds * rig.RATE_HZ)
    out = np.resize(noise, n)
    questions = [read_wav_mono(FIXTURES / q, rig.RATE_HZ).astype(np.float32) for q in QUESTIONS]
    starts: list[float] = []
    t = 8.0
    i = 0
    while True:
        q = questions[i % len(questions)]
        a = int(t * rig.RATE_HZ)
        if a + len(q) >= n - 10 * rig.RATE_HZ:
            break
        out[a : a + len(q)] += q
        starts.append(t)
        t += len(q) / rig.RATE_HZ + float(rng.uniform(*gaps))
        i += 1
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16), starts


def slope_mb_per_h(samples: list[rig.Sample], t_from: float, anon: bool = False) -> float:
    pts = [(s.t, s.main_anon_mb if anon else s.main_rss_mb) for s in samples if s.t >= t_from]
    if len(pts) < 3:
        return float("nan")
    t, rss = np.array(pts).T
    return float(np.polyfit((t - t[0]) / 3600.0, rss, 1)[0])


def steps(samples: list[rig.Sample], t_from: float, after: int = 3) -> list[tuple[float, float]]:
    """(time, MB) of the anonymous-memory rises of STEP_MB or more that stay ``after`` samples."""
    out = []
    for i in range(1, len(samples) - after):
        a, b = samples[i - 1], samples[i]
        rise = b.main_anon_mb - a.main_anon_mb
        later = samples[i + 1 : i + 1 + after]
        if (
            b.t >= t_from
            and rise >= STEP_MB
            and all(s.main_anon_mb - a.main_anon_mb >= STEP_MB for s in later)
        ):
            out.append((b.t, rise))
    return out


def load_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run(quick: bool) -> dict[str, Any]:
    minutes = float(os.environ.get("SOAK_MINUTES", 4.0 if quick else 32.0))
    seconds = minutes * 60
    with rig.temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        audio, starts = lobby_with_questions(seconds + 30)
        wav = rig.write_wav(tmp / "lobby.wav", audio)
        del audio
        index = rig.demo_index(tmp)
        log_path = tmp / "kiosk.log"
        with (
            rig.fake_server(response_delay_s=0.45, answer_audio_s=2.0) as url,
            log_path.open("wb") as log,
        ):
            cfg = rig.kiosk_config(tmp, url, index)
            cmd = rig.kiosk_command(
                "run",
                "--config",
                str(cfg),
                "--input-wav",
                str(wav),
                "--output-wav",
                str(tmp / "speaker.wav"),
            )
            proc = subprocess.Popen(cmd, env=rig.kiosk_env(), stdout=log, stderr=log)
            meter = rig.TreeMeter(proc.pid, period_s=10.0).start()
            t0 = time.monotonic()
            loads: list[tuple[float, float]] = []
            try:
                while time.monotonic() - t0 < seconds and proc.poll() is None:
                    if not loads or time.monotonic() - t0 - loads[-1][0] >= 60:
                        loads.append((round(time.monotonic() - t0), load_1m()))
                    time.sleep(1.0)
            finally:
                meter.stop()
                rig.stop(proc)
        text = log_path.read_text(errors="replace")
    outcomes: dict[str, int] = {}
    for outcome in re.findall(r"turn \d+ (\w+) \(", text):
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    samples = meter.samples
    if proc.returncode not in (0, -15, None) or len(samples) < 3:
        raise RuntimeError(f"kiosk run died (rc {proc.returncode}): {text[-400:]}")
    first, last = samples[0], samples[-1]
    settle = samples[0].t + min(SETTLE_S, seconds / 3)
    settled = next(s for s in samples if s.t >= settle)
    slope = slope_mb_per_h(samples, settle)
    half = first.t + (last.t - first.t) / 2
    slope_half = slope_mb_per_h(samples, half)
    slope_anon = slope_mb_per_h(samples, settle, anon=True)
    stepped = steps(samples, settle)
    load = [v for _, v in loads]
    asked = sum(1 for s in starts if s < seconds - 5)
    how = f"{(last.t - first.t) / 60:.1f} min real time, {asked} questions, tools + local index"
    how += f"; load 1m {min(load):.1f}-{max(load):.1f} (mean {np.mean(load):.1f})"
    rows = [
        {
            "name": "rss slope MB/h",
            "value": round(slope, 2),
            "goal": "<= 1",
            "note": f"least squares from {settle - first.t:.0f} s; {how}",
        },
        {
            "name": "rss slope MB/h, second half",
            "value": round(slope_half, 2),
            "goal": "",
            "note": f"from {half - first.t:.0f} s; anon (heap) only, from {settle - first.t:.0f} s: "
            f"{slope_anon:.2f} MB/h",
        },
        {
            "name": f"anon steps >= {STEP_MB} MB that stay",
            "value": len(stepped),
            "goal": "",
            "note": ", ".join(f"{t - first.t:.0f} s +{mb:.2f}" for t, mb in stepped) or "none",
        },
        {
            "name": "rss MB (settled -> end)",
            "value": f"{settled.main_rss_mb:.1f} -> {last.main_rss_mb:.1f}",
            "goal": "",
            "note": f"VmHWM {last.main_hwm_mb:.1f} MB",
        },
        {
            "name": "fds (settled -> end)",
            "value": f"{settled.fds} -> {last.fds}",
            "ok": last.fds <= settled.fds,
            "goal": "not growing",
            "note": "/proc/PID/fd",
        },
        {
            "name": "threads (settled -> end)",
            "value": f"{settled.threads} -> {last.threads}",
            "ok": last.threads <= settled.threads,
            "goal": "not growing",
            "note": "/proc/PID/status",
        },
        {
            "name": "turns",
            "value": outcomes,
            "ok": outcomes.get("answered", 0) >= asked - 1,
            "goal": "all answered",
            "note": f"{asked} questions asked (last may still be running)",
        },
    ]
    notable = [
        line[:300]
        for line in text.splitlines()
        if " ERROR " in line
        or " WARNING " in line
        or re.search(r"turn \d+ (?!answered)\w+ \(", line)
    ]
    details = {
        "minutes": minutes,
        "log_notable": notable[:200],
        "question_starts_s": starts,
        "load_avg_1m": loads,
        "samples": [
            {
                "t_s": round(s.t - first.t, 1),
                "rss_mb": round(s.main_rss_mb, 2),
                "anon_mb": round(s.main_anon_mb, 2),
                "fds": s.fds,
                "threads": s.threads,
                "cpu_s": round(s.cpu_ns / 1e9, 2),
            }
            for s in samples
        ],
    }
    return {"rows": rows, "details": details}


if __name__ == "__main__":
    for row in run("--quick" in sys.argv)["rows"]:
        print(row)

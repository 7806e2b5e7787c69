"""The daemon's memory before, during and after a conversation's searches, in real time.

``kiosk run`` with the default config apart from endpoint and paths (the local demo index
with vectors, LEDs on mock pins) on a lobby WAV (noise at -45 dBFS) with three questions in
its first minute, then quiet. The bundled fake Realtime server calls ``search`` for each, so
the embedding model loads; the kiosk drops it after ``IDLE_UNLOAD_S`` (5 minutes) without a
search. The process is sampled from /proc every 5 s: RSS before the first question, its
peak, and after the drop. Goal from issue 14: < 50 MB idle with the local index configured,
which the after-drop figure is held to as well.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import rig

from kiosk.rag.multilingual import IDLE_UNLOAD_S

FIXTURES = rig.ROOT / "tests" / "fixtures"
QUESTIONS = [("en_restroom_espeak_16k.wav", 10.0), ("ja_parking_16k.wav", 30.0)]
QUESTIONS += [("arc-easy-q237-tts.wav", 50.0)]


def lobby(seconds: float) -> np.ndarray:
    from kiosk.audio.wav import read_wav_mono

    noise = read_wav_mono(FIXTURES / "lobby_noise_16k.wav", rig.RATE_HZ).astype(np.float32)
    noise *= 10 ** (-45 / 20) * 32768 / max(1.0, float(np.sqrt(np.mean(noise**2))))
    out = np.resize(noise, int(seconds * rig.RATE_HZ))
    for name, at in QUESTIONS:
        q = read_wav_mono(FIXTURES / name, rig.RATE_HZ).astype(np.float32)
        a = int(at * rig.RATE_HZ)
        out[a : a + len(q)] += q
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def run(quick: bool) -> dict[str, Any]:
    last_question_s = QUESTIONS[-1][1] + 15.0
    seconds = last_question_s + IDLE_UNLOAD_S + 40.0
    with rig.temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        wav = rig.write_wav(tmp / "lobby.wav", lobby(seconds + 20))
        index = rig.demo_index(tmp)
        log_path = tmp / "kiosk.log"
        with rig.fake_server() as url, log_path.open("wb") as log:
            cfg = rig.kiosk_config(tmp, url, index)
            cmd = rig.kiosk_command(
                "run", "--config", str(cfg), "--input-wav", str(wav),
                "--output-wav", str(tmp / "speaker.wav"),
            )  # fmt: skip
            proc = subprocess.Popen(cmd, env=rig.kiosk_env(), stdout=log, stderr=log)
            meter = rig.TreeMeter(proc.pid, period_s=5.0).start()
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < seconds and proc.poll() is None:
                    time.sleep(1.0)
            finally:
                meter.stop()
                rig.stop(proc)
        text = log_path.read_text(errors="replace")
    samples = meter.samples
    if proc.returncode not in (0, -15, None) or len(samples) < 10:
        raise RuntimeError(f"kiosk run died (rc {proc.returncode}): {text[-400:]}")
    start = samples[0].t
    before = [s for s in samples if s.t - start < QUESTIONS[0][1]][-1]
    peak = max(samples, key=lambda s: s.main_rss_mb)
    after = samples[-1]
    searches = text.count("search")
    turns = len(re.findall(r"turn \d+ \w+ \(", text))
    series = [
        (round(s.t - start), round(s.main_rss_mb, 1), round(s.main_anon_mb, 1)) for s in samples
    ]
    return {
        "rows": [
            {
                "name": "kiosk run RSS before the first question",
                "value": round(before.main_rss_mb, 1),
                "goal": "< 50",
                "note": f"MB ({before.main_anon_mb:.1f} anon) at {before.t - start:.0f} s",
            },
            {
                "name": "kiosk run RSS peak while answering",
                "value": round(peak.main_rss_mb, 1),
                "goal": "-",
                "note": f"MB ({peak.main_anon_mb:.1f} anon) at {peak.t - start:.0f} s; "
                f"{turns} turns, questions at {[q[1] for q in QUESTIONS]} s",
            },
            {
                "name": "kiosk run RSS after the model's idle drop",
                "value": round(after.main_rss_mb, 1),
                "goal": "< 50",
                "note": f"MB ({after.main_anon_mb:.1f} anon) at {after.t - start:.0f} s, "
                f"{after.t - start - last_question_s:.0f} s after the last question "
                f"(drop after {IDLE_UNLOAD_S:.0f} s idle); VmHWM {after.main_hwm_mb:.1f}",
            },
        ],
        "details": {"rss_series_s_mb_anon": series, "search_mentions_in_log": searches},
    }

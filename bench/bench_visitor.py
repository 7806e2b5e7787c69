"""Latency as the visitor hears it: true end of speech -> first answer sample audible.

The real process (``kiosk run``, default config apart from endpoint and paths: search tool
on the local demo index, earcons on, LEDs on mock pins) with PulseAudio null sinks as its
microphone and speaker. The bundled fake Realtime server (own process) is paced like the real
service: every response (the ``search`` call, the ``report_grounding`` call, the spoken
answer) starts 0.45 s after it was asked for, and answer audio streams at playback speed.

Both sinks' monitors are recorded by the bench through identical ``pacat --record`` streams,
so their delivery delay cancels: the end of speech is the last 20 ms frame above -40 dBFS of
the question as it reached the microphone; the answer is the first sample of the first
sound lasting >= 1 s on the speaker (earcons are shorter). Everything on the path counts:
hangover, the endpointer, commit, connecting (cold: the first question after start, no
connection yet; warm: the next questions, the connection still open), the server's three
responses, the speaker stream restarting, device buffers.

Also (a), the client overhead after endpointing, from the kiosk's own log line per turn
("latency N ms": the endpointer's decision -> the first answer audio queued for the speaker).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rig

QUESTION = rig.ROOT / "tests" / "fixtures" / "en_restroom_espeak_16k.wav"
QUESTION_AT_S = (3.0, 17.0, 31.0)  # after READY; answers end ~6 s after each question
RUN_S = 45.0
RESPONSE_DELAY_S = 0.45
FRAME = 320  # 20 ms at 16 kHz


class Recorder:
    """``pacat --record`` of a sink's monitor; each chunk stamped with its arrival time."""

    def __init__(self, monitor: str) -> None:
        self.proc = subprocess.Popen(
            [
                "pacat",
                "--record",
                f"--device={monitor}",
                "--format=s16le",
                "--rate=16000",
                "--channels=1",
                "--latency-msec=10",
                "--raw",
            ],
            stdout=subprocess.PIPE,
        )
        self.chunks: list[tuple[float, bytes]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(640):  # type: ignore[attr-defined]
            self.chunks.append((time.monotonic(), chunk))

    def stop(self) -> tuple[np.ndarray, np.ndarray]:
        """Samples and the monotonic time each one was delivered."""
        rig.stop(self.proc)
        self._thread.join(timeout=2)
        pcm = b"".join(c for _, c in self.chunks)
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
        times = np.empty(samples.size)
        pos = 0
        for t, chunk in self.chunks:
            n = len(chunk) // 2
            times[pos : pos + n] = t - np.arange(n - 1, -1, -1) / rig.RATE_HZ
            pos += n
        return samples, times[: samples.size]


def speech_ends(samples: np.ndarray, times: np.ndarray) -> list[float]:
    """End times of loud stretches (frames above -40 dBFS, split at >= 0.5 s of quiet)."""
    n = samples.size // FRAME
    frames = samples[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    loud = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) / 32768 + 1e-12) > -40
    ends, last = [], -(10**9)
    for i in np.flatnonzero(loud):
        if i - last > 25 and last >= 0:
            ends.append(float(times[(last + 1) * FRAME - 1]))
        last = i
    if last >= 0:
        ends.append(float(times[(last + 1) * FRAME - 1]))
    return ends


def answer_starts(samples: np.ndarray, times: np.ndarray) -> list[float]:
    """Start times of sounds lasting >= 1 s (gaps under 50 ms bridged): the answers."""
    idx = np.flatnonzero(np.abs(samples.astype(np.int32)) > 16)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > rig.RATE_HZ // 20)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]])
    return [float(times[a]) for a, b in zip(starts, stops, strict=True) if b - a >= rig.RATE_HZ]


def one_process(tmp: Path, url: str, index: Path, run_no: int) -> dict[str, Any]:
    from kiosk.audio.wav import read_wav_mono

    question = read_wav_mono(QUESTION, rig.RATE_HZ)
    timeline = rig.pink_noise(RUN_S, seed=run_no)
    for at in QUESTION_AT_S:
        a = int(at * rig.RATE_HZ)
        timeline[a : a + question.size] = np.clip(
            timeline[a : a + question.size].astype(np.int32) + question, -32768, 32767
        )
    sinks = rig.NullSinks(f"v{run_no}").open()
    log_path = tmp / f"visitor-{run_no}.log"
    try:
        mic_rec = Recorder(f"{sinks.mic}.monitor")
        spk_rec = Recorder(f"{sinks.speaker}.monitor")
        pacat = subprocess.Popen(sinks.play_command(), stdin=subprocess.PIPE)
        notify = rig.NotifySocket(tmp)
        cfg = rig.kiosk_config(tmp, url, index)
        with log_path.open("wb") as log:
            kiosk = subprocess.Popen(
                rig.kiosk_command("run", "--config", str(cfg)),
                env=rig.kiosk_env(NOTIFY_SOCKET=notify.path, **sinks.env()),
                stdout=log,
                stderr=log,
            )
            try:
                if notify.wait_for("READY=1", 30.0) is None:
                    raise RuntimeError("kiosk run sent no READY=1")
                writer = rig.PacedWriter(pacat.stdin, timeline).start()
                time.sleep(RUN_S - 1.0)
                writer.stop()
            finally:
                rig.stop(kiosk)
                notify.close()
        rig.stop(pacat)
        mic = mic_rec.stop()
        spk = spk_rec.stop()
    finally:
        sinks.close()
    text = log_path.read_text(errors="replace")
    ends = speech_ends(*mic)
    answers = answer_starts(*spk)
    turns = []
    for i, end in enumerate(ends):
        after = [a for a in answers if a > end]
        turns.append(
            {
                "kind": "cold" if i == 0 else "warm",
                "visitor_ms": round((after[0] - end) * 1000) if after else None,
            }
        )
    logged = [
        int(x) for x in re.findall(r"turn \d+ answered \([^)]*\): [\d.]+ s, latency (\d+) ms", text)
    ]
    for turn, ms in zip(turns, logged, strict=False):
        turn["client_after_endpoint_ms"] = ms
    if len(ends) != len(QUESTION_AT_S):
        raise RuntimeError(
            f"heard {len(ends)} questions, played {len(QUESTION_AT_S)}: {text[-300:]}"
        )
    return {"turns": turns, "log_tail": text[-600:]}


def _stats(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.0f}, max {max(values):.0f} (n={len(values)})"


def run(quick: bool) -> dict[str, Any]:
    problem = rig.NullSinks.available()
    if problem is not None:
        return {"rows": [{"name": "visitor latency", "value": "not run", "note": problem}]}
    runs = 1 if quick else 3
    results = []
    with rig.temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        index = rig.demo_index(tmp)
        with rig.fake_server(response_delay_s=RESPONSE_DELAY_S, answer_audio_s=2.0) as url:
            for i in range(runs):
                results.append(one_process(tmp, url, index, i))
    turns = [t for r in results for t in r["turns"]]
    rows = []
    for kind in ("cold", "warm"):
        ms = [t["visitor_ms"] for t in turns if t["kind"] == kind and t["visitor_ms"] is not None]
        missing = sum(1 for t in turns if t["kind"] == kind and t["visitor_ms"] is None)
        rows.append(
            {
                "name": f"end of speech -> answer audible, {kind} ms",
                "value": round(statistics.median(ms)) if ms else "none",
                "goal": "",
                "note": (_stats(ms) if ms else "")
                + (f"; {missing} unanswered" if missing else "")
                + f"; server 3 x {RESPONSE_DELAY_S * 1000:.0f} ms think time",
            }
        )
    client = [t["client_after_endpoint_ms"] for t in turns if "client_after_endpoint_ms" in t]
    if client:
        rows.append(
            {
                "name": "endpointed -> answer queued (kiosk log) ms",
                "value": round(statistics.median(client)),
                "goal": "",
                "note": _stats(client) + "; includes the same server think time",
            }
        )
    return {
        "rows": rows,
        "details": {
            "turns": turns,
            "runs": runs,
            "response_delay_s": RESPONSE_DELAY_S,
            "question": QUESTION.name,
        },
    }


if __name__ == "__main__":
    for row in run("--quick" in sys.argv)["rows"]:
        print(row)

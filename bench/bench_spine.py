"""Spine benchmarks: client overhead after endpointing, barge-in reaction, pipeline CPU.

What a visitor waits and what the daemon costs idle are measured on the real process in real
time by bench_visitor and bench_footprint; these are narrower, in-process figures.

- client overhead after endpointing: the endpointer's decision (after the hangover) -> first
  answer audio in the playback buffer,
  over the bundled fake server on loopback (so nearly all of it is the kiosk's own work:
  commit, the tool round(s), websocket hops, resampling), with and without the search tool.
- barge-in: first frame of the interrupting speech -> speaker flushed + cancel/truncate queued.
  Reported split into the endpointer's deliberate wait (guard: barge_in_min_speech_ms of voiced
  audio) and the processing after its decision.
- idle: CPU (% of one core) and peak RSS while idle-listening to noise, in a fresh process,
  side by side with a bare Python loop running webrtcvad on the same frames (the peer).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- latency ---------------------------------------------------------------------------------


async def _latency(turns: int, with_tools: bool) -> list[float]:
    from kiosk.audio.wav import read_wav_mono, write_wav
    from kiosk.config import load_config
    from kiosk.simulate import run_simulation
    from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

    speech = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", 16000)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "q.wav"
        write_wav(wav, speech, 16000)
        rag = "" if with_tools else '[rag]\nbackend = "none"\n'
        cfg = load_config("[gpio]\nenabled = false\n" + rag, {"OPENAI_API_KEY": "sk-bench"})
        script = FakeScript(realtime_pacing=False, answer_audio_s=0.3)
        async with FakeRealtimeServer("ga", script=script) as server:
            if with_tools:
                from kiosk.rag.ingest import ingest_paths
                from kiosk.rag.sqlite_index import SqliteIndex
                from kiosk.simulate import demo_corpus_dir

                index_path = Path(tmp) / "i.sqlite"
                idx = SqliteIndex(index_path)
                ingest_paths(idx, [demo_corpus_dir()])
                idx.close()
                cfg = load_config(
                    f'[gpio]\nenabled = false\n[rag]\nindex_path = "{index_path}"\n',
                    {"OPENAI_API_KEY": "sk-bench"},
                )
            report = await run_simulation(
                cfg, [wav] * turns, Path(tmp) / "a.wav", fast=True, fake_server=server
            )
    return [
        t["response_latency_ms"] for t in report["turns"] if t["response_latency_ms"] is not None
    ]


# --- barge-in --------------------------------------------------------------------------------


async def _barge_in(
    repeats: int, echo_cancelled: bool = False
) -> tuple[list[float], list[float], list[float]]:
    """Returns ms lists: speech start -> speaker silent (paused or flushed), speech start ->
    barge-in confirmed (flushed, cancel + truncate queued), and that decision's processing."""
    from kiosk.app import KioskPipeline
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.audio.vad import webrtc_voice_detector
    from kiosk.audio.wav import read_wav_mono
    from kiosk.config import load_config
    from kiosk.core.bus import EventStream
    from kiosk.core.events import State
    from kiosk.net.endpoints import realtime_endpoint
    from kiosk.simulate import _point_at
    from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

    question = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", 16000).astype("<i2").tobytes()
    interrupt = read_wav_mono(FIXTURES / "ja_stop_16k.wav", 16000).astype("<i2").tobytes()
    fb = 640  # 20 ms at 16 kHz
    silence = bytes(fb)
    total_ms: list[float] = []
    processing_ms: list[float] = []
    silent_ms: list[float] = []
    rng = np.random.default_rng(7)
    async with FakeRealtimeServer("ga", script=FakeScript(answer_audio_s=8.0)) as server:
        toml = '[gpio]\nenabled = false\n[rag]\nbackend = "none"\n'
        toml += f"[audio]\necho_cancelled = {'true' if echo_cancelled else 'false'}\n"
        cfg = _point_at(load_config(toml, {"OPENAI_API_KEY": "x"}), server)
        loop = asyncio.get_running_loop()
        playback = PlaybackBuffer(24000)
        BUS = EventStream()
        if os.environ.get("BENCH_DEBUG"):
            BUS.subscribe(lambda e: print(e, file=sys.stderr))
        pipeline = KioskPipeline(
            cfg,
            realtime_endpoint(cfg),
            BUS,
            playback,
            webrtc_voice_detector(2, 16000, 20),
            loop.time,
        )

        async def frame(f: bytes) -> None:
            await asyncio.sleep(0.02)
            if not playback.is_idle:
                playback.read(480)
            pipeline.on_mic_frame(f)

        try:
            for _ in range(repeats):
                for i in range(0, len(question) - fb + 1, fb):
                    await frame(question[i : i + fb])
                while pipeline.state is not State.SPEAKING:
                    await frame(silence)
                for _ in range(int(rng.integers(10, 60))):  # 0.2-1.2 s into the answer
                    await frame(silence)
                first = None
                silent_n = None
                for n, i in enumerate(range(0, len(interrupt) - fb + 1, fb)):
                    await asyncio.sleep(0.02)
                    before = pipeline.state
                    t1 = time.perf_counter()
                    pipeline.on_mic_frame(interrupt[i : i + fb])
                    t2 = time.perf_counter()
                    if first is None and pipeline.endpointer._onset_frames:
                        first = n - len(pipeline.endpointer._onset_frames) + 1
                    stopped = before is State.SPEAKING and pipeline.state is State.LISTENING
                    if silent_n is None and (playback.held or stopped):
                        silent_n = n  # the speaker outputs silence from the next block on
                        start = first if first is not None else n
                        silent_ms.append((n - start + 1) * 20 + (t2 - t1) * 1000)
                    if stopped:
                        assert playback.is_idle
                        start = first if first is not None else n
                        total_ms.append((n - start + 1) * 20 + (t2 - t1) * 1000)
                        processing_ms.append((t2 - t1) * 1000)
                        break
                while pipeline.busy:
                    await frame(silence)
        finally:
            await pipeline.aclose()
    return silent_ms, total_ms, processing_ms


# --- idle CPU / RSS --------------------------------------------------------------------------

_IDLE_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from kiosk.audio.wav import read_wav_mono
mode, seconds = sys.argv[1], float(sys.argv[2])
noise = read_wav_mono(sys.argv[4], 16000).astype(np.float32)
rng = np.random.default_rng(1)
frames = []
level = 0.0
for s in range(60):  # one minute of lobby noise whose level wanders (random walk, -60..-45 dBFS)
    level = float(np.clip(level + rng.normal(0, 1.5), -6, 9))
    gain = 10 ** (level / 20)
    seg = np.clip(noise[(s % 10) * 16000:(s % 10 + 1) * 16000] * gain, -32768, 32767).astype("<i2").tobytes()
    frames += [seg[i:i + 640] for i in range(0, 32000, 640)]
n = int(seconds / 0.02)
if mode == "peer":
    import webrtcvad
    vad = webrtcvad.Vad(2)
    t0 = time.process_time()
    for k in range(n):
        vad.is_speech(frames[k % len(frames)], 16000)
    cpu = time.process_time() - t0
    turns = 0
else:
    import asyncio
    from kiosk.app import KioskPipeline
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.audio.vad import webrtc_voice_detector
    from kiosk.config import load_config
    from kiosk.core.bus import EventStream
    from kiosk.net.endpoints import realtime_endpoint
    async def main():
        cfg = load_config('[gpio]\nenabled = false\n[rag]\nbackend = "none"\n', {"OPENAI_API_KEY": "x"})
        clock = [0.0]
        p = KioskPipeline(cfg, realtime_endpoint(cfg), EventStream(), PlaybackBuffer(24000),
                          webrtc_voice_detector(2, 16000, 20), lambda: clock[0])
        t0 = time.process_time()
        for k in range(n):
            clock[0] += 0.02
            p.on_mic_frame(frames[k % len(frames)])
        cpu = time.process_time() - t0
        return cpu, p.machine.turn_id
    cpu, turns = asyncio.run(main())
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"cpu_s": cpu, "audio_s": seconds, "maxrss_mb": hwm / 1024, "turns": turns}))
"""


def _idle(seconds: float, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _IDLE_SCRIPT,
            mode,
            str(seconds),
            str(ROOT),
            str(FIXTURES / "lobby_noise_16k.wav"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    n = 5 if quick else 30
    for with_tools in (False, True):
        lat = asyncio.run(_latency(n, with_tools))
        label = "search + report_grounding rounds" if with_tools else "no tools"
        rows.append(
            {
                "name": f"client overhead after endpointing p95 ({label})",
                "value": f"{_pct(lat, 95):.1f} ms (p50 {_pct(lat, 50):.1f}, n={len(lat)})",
                "goal": "<= 30 ms" if not with_tools else "",
                "note": "endpointer's decision -> first answer audio buffered; fake server on "
                "loopback answering at once: the kiosk's own work, not the visitor's wait "
                "(bench_visitor)",
            }
        )
    for aec in (False, True):
        silent, total, proc = asyncio.run(_barge_in(3 if quick else 8, echo_cancelled=aec))
        mode = "AEC source" if aec else "half-duplex guard"
        rows.append(
            {
                "name": f"barge-in reaction p95, {mode} (speech start -> speaker silent)",
                "value": f"{_pct(silent, 95):.0f} ms (p50 {_pct(silent, 50):.0f}, n={len(silent)})",
                "goal": "<= 150 ms",
                "note": "the answer pauses after 40 ms of loud speech over it",
            }
        )
        rows.append(
            {
                "name": f"barge-in confirmed p95, {mode} (speech start -> flush, cancel, truncate)",
                "value": f"{_pct(total, 95):.0f} ms (p50 {_pct(total, 50):.0f}); processing {_pct(proc, 95):.2f} ms",
                "goal": "",
                "note": "onset proof: 200 ms (AEC) / 300 ms loud after 400 ms echo learning (guard)",
            }
        )
    seconds = 300.0 if quick else 3600.0
    kiosk = _idle(seconds, "kiosk")
    peer = _idle(seconds, "peer")
    kiosk_pct = kiosk["cpu_s"] / kiosk["audio_s"] * 100
    peer_pct = peer["cpu_s"] / peer["audio_s"] * 100
    rows.append(
        {
            "name": f"pipeline CPU per audio second, {seconds / 60:.0f} simulated min of noise",
            "value": f"{kiosk_pct:.3f} % of one core ({kiosk_pct / peer_pct:.1f}x the bare webrtcvad loop: {peer_pct:.3f} %)",
            "goal": "",
            "note": f"throughput on a fake clock, not the idle duty cycle (that is bench_footprint); "
            f"turns opened by the noise: {kiosk['turns']}",
        }
    )
    rows.append(
        {
            "name": "pipeline-only peak RSS (rag.backend none)",
            "value": f"{kiosk['maxrss_mb']:.1f} MB (bare loop {peer['maxrss_mb']:.1f} MB)",
            "goal": "",
            "note": "not the daemon's footprint (that is bench_footprint)",
        }
    )
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)

"""The local answer engine (issue 13): spoken questions in, is the expected fact in the answer?

Documents: ``bench/data/local_kb`` (a school visitor guide, 14 topics, English and Japanese,
with numbers, rooms and times). Questions: 44 (24 English, 20 Japanese), each with the fact
its answer must contain. They are spoken here by TTS with several voices and speeds (eSpeak NG
voices en-us / en-gb / en-us+f3 / en-us+m3 at 140-175 wpm; Open JTalk at speed 0.9-1.15 and
pitch -3..+4 half-tones: Debian has one Japanese HTS voice), padded with 0.5 s of silence.
Questions alternate between a "tune" half (looked at while building the engine) and a
"report" half (never tuned on): the accuracy goal is judged on the report half only.

Each question goes through the real pipeline in real time (``kiosk simulate`` code path,
not ``--fast``): webrtcvad endpointing with the default 700 ms hangover, the loopback local
engine, the SQLite index, the answer played at real-time pace. Latency is from the true end
of speech in the WAV to the kiosk starting to play the answer (the SPEAKING state).

Also: recogniser WER (en) / CER (ja) against the text the TTS spoke; real-time factors of
recogniser and synthesiser on one thread; idle RSS of ``kiosk run`` with the local engine
configured but unused against the same daemon configured for the cloud.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KB_DIR = ROOT / "bench" / "data" / "local_kb"
PAD_S = 0.5
EN_VOICES = [("en-us", 160), ("en-gb", 150), ("en-us+f3", 175), ("en-us+m3", 140)]
JA_VOICES = [(1.0, 0), (0.9, -3), (1.15, 4), (1.0, 2)]  # (speed, half-tones)

# (question, fact the answer must contain). Alternating tune / report by position.
EN = [
    ("Where is the reception desk?", "main lobby"),
    ("Where are the restrooms?", "next to the cafeteria"),
    ("How many parking spaces are there for visitors?", "25 spaces"),
    ("How long can I park for free?", "2 hours"),
    ("Which room is the library in?", "204"),
    ("When does the library close?", "17:00"),
    ("What time is lunch served?", "11:45"),
    ("How much is a coffee in the cafeteria?", "2 dollars"),
    ("Where is the school nurse?", "105"),
    ("What is the nurse's phone extension?", "311"),
    ("How long do you keep lost property?", "30 days"),
    ("Where is the security office?", "west entrance"),
    ("What is the name of the guest Wi-Fi network?", "MapleGuest"),
    ("Where can I find the Wi-Fi password?", "reception"),
    ("What time does the school open on weekdays?", "7:30"),
    ("Is the school open on Saturday?", "closed on Saturdays"),
    ("Which bus stops outside the main gate?", "12"),
    ("When does the school shuttle leave?", "15:40"),
    ("How much does a locker cost?", "1 dollar"),
    ("How much does printing cost?", "10 cents"),
    ("Where is the printer for visitors?", "library"),
    ("Where is the fire assembly point?", "sports field"),
    ("Which room is the principal's office?", "301"),
    ("How do I make an appointment with the principal?", "200"),
]
JA = [
    ("受付はどこですか。", "ロビー"),
    ("お手洗いはどこにありますか。", "食堂の隣"),
    ("駐車場は何台停められますか。", "25台"),
    ("駐車場は何時間無料ですか。", "2時間"),
    ("図書室は何号室ですか。", "204"),
    ("図書室は何時まで開いていますか。", "17時"),
    ("昼食は何時からですか。", "11時45分"),
    ("コーヒーはいくらですか。", "200円"),
    ("保健室はどこですか。", "105"),
    ("落とし物は何日間保管しますか。", "30日"),
    ("無線LANの名前は何ですか。", "メープルゲスト"),
    ("校舎は何時に開きますか。", "7時30分"),
    ("土曜日は開いていますか。", "土曜日と日曜日は閉まって"),
    ("スクールバスは何時に出発しますか。", "15時40分"),
    ("ロッカーはいくらですか。", "100円"),
    ("印刷は1枚いくらですか。", "10円"),
    ("火事のときはどこに集まりますか。", "運動場"),
    ("校長室は何階ですか。", "3階"),
    ("バスは何分おきに来ますか。", "15分"),
    ("警備室はどこですか。", "西口"),
]


@dataclasses.dataclass
class Question:
    qid: str
    language: str
    text: str
    fact: str
    split: str
    voice: str
    wav: Path | None = None
    speech_end_s: float = 0.0


def questions() -> list[Question]:
    out = []
    for i, (text, fact) in enumerate(EN):
        voice, wpm = EN_VOICES[i % len(EN_VOICES)]
        out.append(Question(f"en{i:02d}", "en", text, fact, ("tune", "report")[i % 2], f"espeak-ng {voice} {wpm}wpm"))
    for i, (text, fact) in enumerate(JA):
        speed, tones = JA_VOICES[i % len(JA_VOICES)]
        out.append(Question(f"ja{i:02d}", "ja", text, fact, ("tune", "report")[i % 2], f"open_jtalk r={speed} fm={tones:+d}"))
    return out


def speak(q: Question, workdir: Path) -> None:
    """Write the question WAV (16 kHz mono, PAD_S of silence each side)."""
    import numpy as np

    from kiosk.audio.wav import read_wav_mono, write_wav
    from kiosk.local.tts import JTALK_DICT, JTALK_VOICE

    raw = workdir / f"{q.qid}-raw.wav"
    i = int(q.qid[2:])
    if q.language == "en":
        voice, wpm = EN_VOICES[i % len(EN_VOICES)]
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), q.text], check=True)
    else:
        speed, tones = JA_VOICES[i % len(JA_VOICES)]
        subprocess.run(["open_jtalk", "-x", str(JTALK_DICT), "-m", str(JTALK_VOICE), "-r", str(speed),
                        "-fm", str(tones), "-ow", str(raw)], input=q.text, text=True, check=True)
    speech = read_wav_mono(raw, 16000)
    # Trim the synthesiser's own leading/trailing silence, so the padding is known exactly.
    loud = np.flatnonzero(np.abs(speech.astype(np.int32)) > 300)
    speech = speech[loud[0] : loud[-1] + 1]
    pad = np.zeros(int(PAD_S * 16000), dtype=np.int16)
    q.wav = workdir / f"{q.qid}.wav"
    write_wav(q.wav, np.concatenate([pad, speech, pad, pad, pad]), 16000)
    q.speech_end_s = PAD_S + len(speech) / 16000


def normalise(text: str, language: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s:]", " ", text) if language == "en" else re.sub(r"[\W_]", "", text)
    return text.split() if language == "en" else list(text)


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


class _AsrTimes(logging.Handler):
    """Collects the recogniser's own time per utterance from the engine's debug line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("local engine heard"):
            self.seconds.append(float(record.args[1]))  # type: ignore[index]


async def peer_latencies(qs: list[Question]) -> list[float]:
    """The same pipeline and questions against the fake server, which answers at once: the
    floor (VAD hangover, pipeline, scheduling on this machine now) the engine adds to."""
    from kiosk.config import load_config
    from kiosk.simulate import run_simulation
    from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

    toml = '[gpio]\nenabled = false\n[earcons]\nenabled = false\n[rag]\nbackend = "none"\n'
    cfg = load_config(toml, {"OPENAI_API_KEY": "sk-bench"})
    out = []
    script = FakeScript(realtime_pacing=False, call_search=False, answer_audio_s=1.0)
    async with FakeRealtimeServer("ga", script=script) as server:
        for q in qs:
            with tempfile.TemporaryDirectory() as tmp:
                report = await run_simulation(cfg, [q.wav], Path(tmp) / "a.wav", fake_server=server)
            speaking = next((t for t, s in report["states"] if s == "speaking"), None)
            if speaking is not None:
                out.append(round(speaking / 1000 - q.speech_end_s, 3))
    return out


async def ask_all(qs: list[Question], index_path: Path) -> list[dict[str, Any]]:
    from kiosk.config import load_config
    from kiosk.local import serve_local_engine
    from kiosk.simulate import run_simulation

    toml = (f'[gpio]\nenabled = false\n[earcons]\nenabled = false\n[realtime]\nprovider = "local"\n'
            f'[rag]\nindex_path = "{index_path}"\n')
    cfg = load_config(toml, {})
    rows = []
    async with serve_local_engine(cfg) as local_cfg:
        for q in qs:
            assert q.wav is not None
            with tempfile.TemporaryDirectory() as tmp:
                report = await run_simulation(local_cfg, [q.wav], Path(tmp) / "a.wav", fast=False)
            turns = report["turns"]
            speaking = next((t for t, s in report["states"] if s == "speaking"), None)
            turn = turns[0] if turns else {}
            answer = turn.get("answer_transcript", "")
            rows.append({
                "qid": q.qid, "language": q.language, "split": q.split, "voice": q.voice,
                "question": q.text, "fact": q.fact, "heard": turn.get("transcript", ""),
                "answer": answer, "outcome": turn.get("outcome", "none"),
                "correct": _contains(answer, q.fact),
                "latency_s": None if speaking is None else round(speaking / 1000 - q.speech_end_s, 3),
                "citations": [c["chunk_id"] for c in turn.get("citations", [])],
                "tokens": report["tokens"],
            })
            if len(rows) == 1:
                from kiosk.local.engine import rss_mb

                rows[0]["process_rss_mb_engine_loaded"] = round(rss_mb(), 1)
            print(f"  {q.qid} {rows[-1]['correct']!s:5} {rows[-1]['latency_s']} s  "
                  f"heard {rows[-1]['heard']!r} -> {answer[:60]!r}", file=sys.stderr)
    return rows


def _contains(answer: str, fact: str) -> bool:
    norm = lambda s: unicodedata.normalize("NFKC", s).lower().replace(" ", "")  # noqa: E731
    return norm(fact) in norm(answer)


def real_time_factors(qs: list[Question], rows: list[dict[str, Any]]) -> dict[str, float]:
    from kiosk.audio.wav import read_wav_mono
    from kiosk.local.asr import WhisperRecognizer
    from kiosk.local.tts import Synthesizer

    asr = WhisperRecognizer(threads=1)
    asr.load()
    tts = Synthesizer()
    audio_s = asr_s = 0.0
    by_id = {r["qid"]: r for r in rows}
    synth = {"en": [0.0, 0.0], "ja": [0.0, 0.0]}
    for q in qs:
        pcm = read_wav_mono(q.wav, 16000).astype("<i2").tobytes()
        audio_s += len(pcm) / 32000
        asr_s += asr.transcribe(pcm, "").seconds
        answer = by_id[q.qid]["answer"] or q.fact
        started = time.perf_counter()
        out = tts.synthesize(answer, q.language)
        synth[q.language][0] += time.perf_counter() - started
        synth[q.language][1] += len(out) / 48000
    return {
        "asr_rtf_1_thread": asr_s / audio_s,
        "tts_rtf_en": synth["en"][0] / max(synth["en"][1], 1e-9),
        "tts_rtf_ja": synth["ja"][0] / max(synth["ja"][1], 1e-9),
    }


def idle_rss_mb(config_toml: str, env_extra: dict[str, str], workdir: Path, name: str) -> float:
    """VmRSS of `kiosk run` (WAV mic of silence) after it has idled a while."""
    import numpy as np

    from kiosk.audio.wav import write_wav

    silence = workdir / "silence.wav"
    if not silence.exists():
        write_wav(silence, np.zeros(16000 * 30, dtype=np.int16), 16000)
    cfg = workdir / f"{name}.toml"
    cfg.write_text(config_toml)
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and not k.startswith("KIOSK_")}
    env.update(env_extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(cfg), "--input-wav", str(silence),
         "--output-wav", str(workdir / f"{name}-out.wav"), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        time.sleep(12)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run(quick: bool) -> dict[str, Any]:
    from kiosk.rag.ingest import ingest_paths
    from kiosk.rag.sqlite_index import SqliteIndex

    qs = questions()
    if quick:
        qs = qs[:4] + qs[len(EN) : len(EN) + 4]
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        work = Path(tmp)
        for q in qs:
            speak(q, work)
        index_path = work / "index.sqlite"
        ingest_paths(SqliteIndex(index_path), [KB_DIR])
        asr_times = _AsrTimes()
        engine_log = logging.getLogger("kiosk.local.engine")
        engine_log.addHandler(asr_times)
        engine_log.setLevel(logging.DEBUG)
        rows = asyncio.run(ask_all(qs, index_path))
        engine_log.removeHandler(asr_times)
        peer = asyncio.run(peer_latencies(qs[:: max(1, len(qs) // 8)]))
        rtf = real_time_factors(qs[:: 2 if not quick else 1], rows)
        base = f'[gpio]\nenabled = false\n[rag]\nindex_path = "{index_path}"\n[service]\nstate_dir = "{work}"\n'
        rss_local = idle_rss_mb(base + '[realtime]\nprovider = "local"\n', {}, work, "local")
        rss_cloud = idle_rss_mb(base, {"OPENAI_API_KEY": "sk-bench-not-used"}, work, "cloud")

    def share(language: str, split: str | None = "report") -> float:
        sel = [r for r in rows if r["language"] == language and (split is None or r["split"] == split)]
        return sum(r["correct"] for r in sel) / max(1, len(sel))

    def error_rate(language: str) -> float:
        sel = [r for r in rows if r["language"] == language]
        errors = sum(edit_distance(normalise(r["question"], language), normalise(r["heard"], language)) for r in sel)
        return errors / max(1, sum(len(normalise(r["question"], language)) for r in sel))

    latencies = sorted(r["latency_s"] for r in rows if r["latency_s"] is not None)
    by_lang = {lang: sorted(r["latency_s"] for r in rows if r["language"] == lang and r["latency_s"] is not None)
               for lang in ("en", "ja")}
    n_report = {lang: sum(1 for r in rows if r["language"] == lang and r["split"] == "report") for lang in ("en", "ja")}
    table = [
        {"name": "answer has the fact, en (report half)", "value": round(share("en"), 3), "goal": ">= 0.9",
         "note": f"{n_report['en']} questions; all en: {share('en', None):.2f}"},
        {"name": "answer has the fact, ja (report half)", "value": round(share("ja"), 3), "goal": ">= 0.8",
         "note": f"{n_report['ja']} questions; all ja: {share('ja', None):.2f}"},
        {"name": "recogniser WER, en", "value": round(error_rate("en"), 3), "note": "Whisper base int8, all en questions"},
        {"name": "recogniser CER, ja", "value": round(error_rate("ja"), 3), "note": "Whisper base int8, all ja questions"},
        {"name": "end of speech -> first answer sample, p50 (s)", "value": round(statistics.median(latencies), 3),
         "goal": "<= 1.5", "note": f"real time, 700 ms VAD hangover included; en p50 "
         f"{statistics.median(by_lang['en']):.2f}, ja p50 {statistics.median(by_lang['ja']):.2f}, max {latencies[-1]:.2f}"},
        {"name": "same questions, fake server answering at once, p50 (s)",
         "value": round(statistics.median(peer), 3),
         "note": f"peer in the same run: the hangover + pipeline floor; {len(peer)} questions"},
        {"name": "recogniser time in those turns, p50 (s)",
         "value": round(statistics.median(asr_times.seconds), 3) if asr_times.seconds else None,
         "note": f"incl. speculative runs; load avg at the end {os.getloadavg()[0]:.1f} on "
                 f"{os.cpu_count()} cores"},
        {"name": "recogniser real-time factor, 1 thread", "value": round(rtf["asr_rtf_1_thread"], 3),
         "note": "a Pi 4 core is ~3-4x slower"},
        {"name": "synthesiser real-time factor, en (eSpeak NG)", "value": round(rtf["tts_rtf_en"], 3)},
        {"name": "synthesiser real-time factor, ja (Open JTalk)", "value": round(rtf["tts_rtf_ja"], 3)},
        {"name": "idle RSS, local engine configured, unused (MB)", "value": round(rss_local, 1),
         "note": f"kiosk run after 12 s idle; same daemon configured for the cloud: {rss_cloud:.1f} MB"},
        {"name": "idle RSS growth from the local engine (MB)", "value": round(rss_local - rss_cloud, 1),
         "goal": "< 5", "note": "local-engine daemon minus cloud daemon, both idle"},
        {"name": "tokens used by local turns", "value": sum(sum(r["tokens"].values()) for r in rows), "goal": "== 0"},
    ]
    return {"rows": table, "details": {"questions": rows, "rtf": rtf, "rss_local_mb": rss_local,
                                        "rss_cloud_mb": rss_cloud, "latencies_s": latencies,
                                        "peer_latencies_s": peer, "asr_seconds": asr_times.seconds}}


if __name__ == "__main__":
    import json

    result = run("--quick" in sys.argv)
    for row in result["rows"]:
        print(row)
    if "--json" in sys.argv:
        print(json.dumps(result["details"], ensure_ascii=False, indent=2))

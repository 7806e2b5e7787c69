"""A seeded, labelled lobby corpus for ``bench_lobby.py``: ``python bench/lobby_corpus.py``.

Speech: the fixtures in ``tests/fixtures`` (licences beside them) plus TTS made here with
eSpeak NG (English: several voices and speeds) and Open JTalk (Japanese: the nitech
atr503 m001 voice, CC-BY 3.0, shifted in pitch, speed and timbre). ``bench/setup_lobby.sh``
installs both (Debian: espeak-ng; open-jtalk, open-jtalk-mecab-naist-jdic from main,
hts-voice-nitech-jp-atr503-m001 from contrib). TTS clips are cached under
``bench/.cache/lobby/tts`` (never committed); everything else is synthesised from the seed
when a mix is rendered, so the corpus is the code plus two seeds.

Labels are computed from the *clean* speech before mixing: true start/end of each question
(first/last 5 ms block within 35 dB of the clip's loudest), and for two-part questions the
true pause between the halves.

Two splits that share nothing but the generator: ``tuning`` (seed 1, its voices/speeds and
two fixtures) and ``heldout`` (seed 2, other voices/speeds, other fixtures, the recorded
human question). Tune on ``tuning`` only; ``heldout`` is for reporting.

Mix kinds (one spec each; :func:`render` turns a spec into device-format audio):

* ``questions``: ambient noise + question 1 (some with a labelled 300-900 ms mid-sentence
  pause) + 1.5-4 s + question 2 + 3 s; SNR 20/10/5 dB (babble: other talkers at -15 dB).
* ``noise``: speech-free noise (each type at -55/-45/-35 dBFS), for false turns per hour.
* ``echo``: a question, then the kiosk's (TTS) answer plays and echoes back at -20/-12/-6 dB
  while nobody speaks (self-interruptions).
* ``bargein``: as ``echo``, and the visitor interrupts 0.5-2 s into the answer; the
  interruption is placed relative to the answer's first audible frame at run time.

Device formats: 44.1 and 48 kHz stereo (the two channels differ slightly, as two mics do).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lobby_sound import active_rms_db, db_to_amp, noise_bed, speech_bounds, to_stereo
from lobby_texts import (
    BABBLE_LINES,
    EN_ANSWERS,
    EN_INTERRUPTIONS,
    EN_QUESTIONS,
    JA_ANSWERS,
    JA_INTERRUPTIONS,
    JA_QUESTIONS,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache" / "lobby"
FIXTURES = ROOT / "tests" / "fixtures"
JTALK_DIC = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
JTALK_VOICE = Path("/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice")

NOISE_TYPES = ("pink", "brown", "babble", "hvac", "transients", "steps")
NOISE_LEVELS_DBFS = (-55.0, -45.0, -35.0)
SNRS_DB = (20.0, 10.0, 5.0)
ECHO_DBS = (-20.0, -12.0, -6.0)
DEVICE_RATES = (44100, 48000)
BABBLE_REL_DB = -15.0  # other talkers relative to the visitor


@dataclass(frozen=True)
class VoiceSet:
    """Which TTS voices/speeds and fixtures one split may use."""

    en_voices: tuple[str, ...]
    en_speeds: tuple[int, ...]
    ja_styles: tuple[tuple[float, float, float], ...]  # (half-tone shift, speed, all-pass)
    fixtures: tuple[str, ...]
    babble_voices: tuple[str, ...]


SPLITS: dict[str, tuple[int, VoiceSet]] = {
    "tuning": (
        1,
        VoiceSet(
            en_voices=("en-us", "en-gb+f3", "en-us+m3"),
            en_speeds=(150, 170),
            ja_styles=((0.0, 1.0, 0.55), (3.0, 1.1, 0.55)),
            fixtures=("en_restroom_espeak_16k.wav", "ja_restroom_16k.wav"),
            babble_voices=("en-gb", "en-us+f2", "en-gb-x-rp+m4"),
        ),
    ),
    "heldout": (
        2,
        VoiceSet(
            en_voices=("en-gb-scotland+f4", "en-029", "en-us-nyc+m2"),
            en_speeds=(135, 185),
            ja_styles=((-2.0, 0.9, 0.5), (5.0, 1.2, 0.58)),
            fixtures=("whats_the_weather_pcm16_24khz_mono.wav", "ja_parking_16k.wav"),
            babble_voices=("en-us", "en-gb+f4", "en-029+m1"),
        ),
    ),
}


# --- TTS (cached) ------------------------------------------------------------------------


def _cache_path(kind: str, text: str, style: str) -> Path:
    digest = hashlib.sha1(f"{kind}|{style}|{text}".encode()).hexdigest()[:16]
    return CACHE / "tts" / f"{kind}-{digest}.wav"


def espeak(text: str, voice: str, speed: int) -> Path:
    out = _cache_path("en", text, f"{voice}|{speed}")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which("espeak-ng") is None:
            raise RuntimeError("espeak-ng is missing: run bench/setup_lobby.sh")
        tmp = out.with_suffix(f".{os.getpid()}.tmp.wav")  # concurrent runs
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(tmp), text], check=True
        )
        tmp.replace(out)
    return out


def jtalk(text: str, style: tuple[float, float, float]) -> Path:
    shift, speed, alpha = style
    out = _cache_path("ja", text, f"{shift}|{speed}|{alpha}")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which("open_jtalk") is None or not JTALK_VOICE.exists():
            raise RuntimeError("open_jtalk or its voice is missing: run bench/setup_lobby.sh")
        tmp = out.with_suffix(f".{os.getpid()}.tmp.wav")  # concurrent runs
        cmd = [
            "open_jtalk",
            "-x",
            str(JTALK_DIC),
            "-m",
            str(JTALK_VOICE),
            "-fm",
            str(shift),
            "-r",
            str(speed),
            "-a",
            str(alpha),
            "-ow",
            str(tmp),
        ]
        subprocess.run(cmd, input=text.encode(), check=True)
        tmp.replace(out)
    return out


def read_clip(path: Path, rate_hz: int) -> np.ndarray:
    """Mono float64 (int16 scale) at ``rate_hz``, through the kiosk's own WAV reader."""
    from kiosk.audio.wav import read_wav_mono

    return read_wav_mono(path, rate_hz).astype(np.float64)


# --- specs -------------------------------------------------------------------------------


@dataclass
class Segment:
    """One piece of speech placed in a mix (seconds on the mix's timeline)."""

    clip: str  # path of a WAV
    at_s: float
    gain_db: float
    role: str  # "question" | "babble" | "interruption"
    question: int = -1  # index of the question it belongs to
    half: int = 0  # 0 whole, 1/2 first/second half of a paused question


@dataclass
class Mix:
    id: str
    split: str
    kind: str  # questions | noise | echo | bargein
    seed: int
    device_rate_hz: int
    duration_s: float
    noise: str
    noise_dbfs: float
    snr_db: float | None = None
    echo_db: float | None = None
    segments: list[Segment] = field(default_factory=list)
    # Labels (mix seconds): per question {start_s, end_s, pause_s: [a, b] | None, lang}.
    questions: list[dict[str, Any]] = field(default_factory=list)
    answer_clip: str | None = None  # what the kiosk says (echo, bargein)
    interruption: dict[str, Any] | None = None  # {clip, after_answer_s, gain_db, onset_s, end_s}


def _question_clip(
    rng: random.Random, voices: VoiceSet, lang: str, paused: bool
) -> list[tuple[Path, str]]:
    """One question: [(clip, text)], two halves when paused."""
    if lang == "en":
        voice, speed = rng.choice(voices.en_voices), rng.choice(voices.en_speeds)
        halves = rng.choice(EN_QUESTIONS)
        make = lambda t: espeak(t, voice, speed)  # noqa: E731
    else:
        style = rng.choice(voices.ja_styles)
        halves = rng.choice(JA_QUESTIONS)
        make = lambda t: jtalk(t, style)  # noqa: E731
    if paused:
        return [(make(halves[0]), halves[0]), (make(halves[1]), halves[1])]
    if rng.random() < 0.25:
        fixture = [f for f in voices.fixtures if f.startswith("ja") == (lang == "ja")]
        if fixture:
            return [(FIXTURES / fixture[0], fixture[0])]
    text = halves[0] + (" " if lang == "en" else "") + halves[1]
    return [(make(text), text)]


def _place_question(
    mix: Mix,
    parts: list[Path],
    at_s: float,
    level_dbfs: float,
    pause_s: float,
    index: int,
    lang: str,
) -> float:
    """Put a question (1 or 2 parts) at ``at_s`` (its true start); returns its true end."""
    rate = 16000
    clips = [read_clip(p, rate) for p in parts]
    bounds = [tuple(map(float, speech_bounds(c, rate))) for c in clips]
    level = active_rms_db(
        np.concatenate(
            [c[int(b[0] * rate) : int(b[1] * rate)] for c, b in zip(clips, bounds, strict=True)]
        ),
        rate,
    )
    gain = level_dbfs - level
    t = at_s
    pause = None
    for k, (path, (b0, b1)) in enumerate(zip(parts, bounds, strict=True)):
        if k == 1:
            pause = [round(t, 4), round(t + pause_s, 4)]
            t += pause_s
        mix.segments.append(
            Segment(str(path), t - b0, gain, "question", index, k + 1 if len(parts) > 1 else 0)
        )
        t += b1 - b0
    mix.questions.append(
        {
            "start_s": round(at_s, 4),
            "end_s": round(t, 4),
            "pause_s": pause,
            "lang": lang,
            "level_dbfs": round(level_dbfs, 1),
        }
    )
    return t


def _add_babble(mix: Mix, rng: random.Random, voices: VoiceSet, level_dbfs: float) -> None:
    """Five overlapping talkers end to end across the whole mix at ``level_dbfs`` together."""
    talkers = 5
    per_talker = level_dbfs - 10 * math.log10(talkers)
    for _ in range(talkers):
        t = -rng.uniform(0, 3)
        while t < mix.duration_s:
            path = espeak(
                rng.choice(BABBLE_LINES),
                rng.choice(voices.babble_voices),
                rng.choice((140, 160, 175)),
            )
            clip = read_clip(path, 16000)
            gain = per_talker - active_rms_db(clip, 16000)
            mix.segments.append(Segment(str(path), t, gain, "babble"))
            t += len(clip) / 16000 + rng.uniform(0.1, 0.8)


def build_specs(split: str, *, quick: bool = False, seed: int | None = None) -> list[Mix]:
    """Every mix of a split (deterministic in its seed; ``seed``: fresh mixes, same voices)."""
    split_seed, voices = SPLITS[split]
    rng = random.Random(split_seed if seed is None else seed)
    mixes: list[Mix] = []

    def new(kind: str, duration_s: float, noise: str, noise_dbfs: float, **kw: Any) -> Mix:
        mix = Mix(
            f"{split}-{kind}-{len(mixes):03d}",
            split,
            kind,
            rng.randrange(2**31),
            rng.choice(DEVICE_RATES),
            round(duration_s, 3),
            noise,
            noise_dbfs,
            **kw,
        )
        mixes.append(mix)
        return mix

    # Two questions per mix, every noise type x SNR, several times.
    reps = 1 if quick else 3
    for _ in range(reps):
        for noise in NOISE_TYPES:
            for snr in SNRS_DB:
                lang1, lang2 = rng.choice(("en", "ja")), rng.choice(("en", "ja"))
                speech_dbfs = rng.uniform(-40, -14)
                if noise == "babble":
                    snr_eff = -BABBLE_REL_DB
                    ambient = speech_dbfs + BABBLE_REL_DB
                else:
                    lo, hi = max(-55.0, -40.0 - snr), min(-35.0, -14.0 - snr)
                    ambient = rng.uniform(lo, hi)
                    snr_eff = snr
                    speech_dbfs = ambient + snr
                paused1 = rng.random() < 0.5
                pause1 = rng.uniform(0.3, 0.9)
                q1 = _question_clip(rng, voices, lang1, paused1)
                q2 = _question_clip(rng, voices, lang2, rng.random() < 0.3)
                pause2 = rng.uniform(0.3, 0.9)
                gap = rng.uniform(1.5, 4.0)
                lead = rng.uniform(1.5, 3.0)
                mix = new("questions", 0.0, noise, round(ambient, 1), snr_db=snr_eff)
                end1 = _place_question(mix, [p for p, _ in q1], lead, speech_dbfs, pause1, 0, lang1)
                end2 = _place_question(
                    mix,
                    [p for p, _ in q2],
                    end1 + gap,
                    speech_dbfs + rng.uniform(-3, 3),
                    pause2,
                    1,
                    lang2,
                )
                mix.duration_s = round(end2 + 3.0, 3)
                if noise == "babble":
                    _add_babble(mix, rng, voices, ambient)
    # Speech-free noise: >= 1 h in all (3.5 min x 6 types x 3 levels); quick: 20 s each.
    noise_s = 20.0 if quick else 210.0
    for noise in NOISE_TYPES:
        for level in NOISE_LEVELS_DBFS:
            mix = new("noise", noise_s, noise, level)
            if noise == "babble":
                _add_babble(mix, rng, voices, level)
    # The kiosk's own answer echoing back: answer-only and barge-in, every echo level.
    reps = 1 if quick else 2
    for kind in ("echo", "bargein"):
        # Barge-in at -12 dB is timed (guard and AEC): more of those for a p95.
        levels = ECHO_DBS if kind == "echo" or quick else (-20.0, -12.0, -12.0, -12.0, -6.0)
        for _ in range(reps):
            for echo_db in levels:
                lang = rng.choice(("en", "ja"))
                noise = rng.choice(("pink", "brown", "hvac"))
                ambient = rng.uniform(-55, -45)
                speech_dbfs = rng.uniform(-30, -18)
                mix = new(
                    kind,
                    0.0,
                    noise,
                    round(ambient, 1),
                    echo_db=echo_db,
                    snr_db=round(speech_dbfs - ambient, 1),
                )
                q = _question_clip(rng, voices, lang, False)
                end = _place_question(mix, [p for p, _ in q], 1.0, speech_dbfs, 0.0, 0, lang)
                answer = EN_ANSWERS if lang == "en" else JA_ANSWERS
                mix.answer_clip = str(
                    espeak(rng.choice(answer), rng.choice(voices.en_voices), 165)
                    if lang == "en"
                    else jtalk(rng.choice(answer), rng.choice(voices.ja_styles))
                )
                mix.duration_s = round(end + 1.0, 3)  # the driver keeps the noise going after this
                if kind == "bargein":
                    text = rng.choice(EN_INTERRUPTIONS if lang == "en" else JA_INTERRUPTIONS)
                    path = (
                        espeak(text, rng.choice(voices.en_voices), rng.choice(voices.en_speeds))
                        if lang == "en"
                        else jtalk(text, rng.choice(voices.ja_styles))
                    )
                    clip = read_clip(path, 16000)
                    b0, b1 = map(float, speech_bounds(clip, 16000))
                    level = speech_dbfs + rng.uniform(-2, 4)
                    mix.interruption = {
                        "clip": str(path),
                        "after_answer_s": round(rng.uniform(0.5, 2.0), 3),
                        "gain_db": level
                        - active_rms_db(clip[int(b0 * 16000) : int(b1 * 16000)], 16000),
                        "onset_in_clip_s": b0,
                        "end_in_clip_s": b1,
                    }
    return mixes


# --- rendering ---------------------------------------------------------------------------


def _clip_at(path: str, rate: int, cache: dict[tuple[str, int], np.ndarray]) -> np.ndarray:
    key = (path, rate)
    if key not in cache:
        cache[key] = read_clip(Path(path), rate)
    return cache[key]


def render(mix: Mix, *, extra_s: float = 0.0) -> np.ndarray:
    """The mix as the device records it: float64 (int16 scale), shape (frames, 2).

    ``extra_s`` more seconds of the same noise after the mix (the driver keeps listening).
    """
    rate = mix.device_rate_hz
    n = int((mix.duration_s + extra_s) * rate)
    mono = noise_bed(mix.noise, n, rate, mix.seed) * db_to_amp(mix.noise_dbfs)
    cache: dict[tuple[str, int], np.ndarray] = {}
    for seg in mix.segments:
        clip = _clip_at(seg.clip, rate, cache) * 10 ** (seg.gain_db / 20)
        start = round(seg.at_s * rate)
        lo = max(0, -start)
        end = min(n, start + len(clip))
        if end > max(0, start):
            mono[max(0, start) : end] += clip[lo : lo + end - max(0, start)]
    return to_stereo(mono, mix.seed)


def write_stereo_wav(path: Path, stereo: np.ndarray, rate_hz: int) -> None:
    """16-bit stereo WAV (kiosk's own writer is mono-only)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(np.clip(np.rint(stereo), -32768, 32767).astype("<i2").tobytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--write-wav", type=Path, help="also write every mix (device format) here, to listen"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    for split in SPLITS:
        specs = build_specs(split, quick=args.quick)
        out = CACHE / f"{split}{'-quick' if args.quick else ''}.json"
        out.write_text(json.dumps([asdict(m) for m in specs], indent=1, ensure_ascii=False))
        kinds: dict[str, int] = {}
        for m in specs:
            kinds[m.kind] = kinds.get(m.kind, 0) + 1
        noise_h = sum(m.duration_s for m in specs if m.kind == "noise") / 3600
        seed, voices = SPLITS[split]
        print(
            f"{split}: seed {seed}, {len(specs)} mixes {kinds}, speech-free noise {noise_h:.2f} h; "
            f"en voices {voices.en_voices} speeds {voices.en_speeds}; "
            f"ja styles {voices.ja_styles}; "
            f"fixtures {voices.fixtures} -> {out}"
        )
        if args.write_wav:
            args.write_wav.mkdir(parents=True, exist_ok=True)
            for m in specs:
                if m.kind != "noise":
                    write_stereo_wav(args.write_wav / f"{m.id}.wav", render(m), m.device_rate_hz)
    return 0


if __name__ == "__main__":
    sys.exit(main())

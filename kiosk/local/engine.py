"""The local engine's parts in one object: recogniser, synthesiser, and what they cost.

Lazy: constructing a :class:`LocalEngine` imports and loads nothing heavy; the recogniser's
model is loaded on the first utterance (then its memory is logged once), so a kiosk with the
engine configured but unused keeps its idle footprint.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from kiosk.local.asr import Recognition, WhisperRecognizer
from kiosk.local.tts import Synthesizer, pieces

log = logging.getLogger(__name__)

INPUT_RATE_HZ = 24_000  # what the Realtime protocol carries


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class LocalEngine:
    """On-device recognition and synthesis for :class:`kiosk.local.server.LocalRealtimeServer`."""

    def __init__(self, *, threads: int = 0, recognizer: WhisperRecognizer | None = None,
                 synthesizer: Synthesizer | None = None) -> None:
        self.recognizer = recognizer or WhisperRecognizer(threads=threads)
        self.synthesizer = synthesizer or Synthesizer()
        self.loaded_rss_mb = 0.0
        self._load_lock = threading.Lock()

    def check(self) -> None:
        """Fail fast (one line) when no synthesiser is installed."""
        self.synthesizer.check()

    def warm_up(self) -> None:
        """Load the recogniser now (a failure is logged here and raised again when used)."""
        try:
            self._load()
        except Exception as exc:
            log.error("local engine: %s", exc)

    def _load(self) -> None:
        with self._load_lock:  # warm-up, speculation and commit may all ask at once
            if self.recognizer.loaded:
                return
            self.recognizer.load()
            self.loaded_rss_mb = rss_mb()
        log.info("local engine: recogniser loaded in %.1f s; process RSS now %.0f MB",
                 self.recognizer.load_s, self.loaded_rss_mb)

    def recognise(self, pcm24k: bytes, language: str = "", vocabulary: str = "") -> Recognition:
        from kiosk.audio.resample import Resampler

        resampler = Resampler(INPUT_RATE_HZ, 16_000)
        pcm16k = resampler.process(pcm24k) + resampler.flush()
        self._load()
        heard = self.recognizer.transcribe(pcm16k, language, vocabulary)
        log.debug("local engine heard (%s, %.2f s): %r", heard.language, heard.seconds, heard.text)
        return heard

    def pieces(self, text: str, language: str) -> list[str]:
        return pieces(text, language)

    def synthesize(self, text: str, language: str) -> bytes:
        return self.synthesizer.synthesize(text, language)

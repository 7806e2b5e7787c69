"""On-device speech synthesis with the Debian programs, run as separate processes.

English: eSpeak NG (``espeak-ng``, GPL-3.0-or-later; run as a program, not linked).
Japanese: Open JTalk (``open_jtalk``, BSD-3-Clause) with the NAIST dictionary
(``open-jtalk-mecab-naist-jdic``, BSD) and the HTS voice ``nitech-jp-atr503-m001``
(CC BY 3.0, Debian contrib); without Open JTalk, eSpeak NG's ``ja`` voice (robotic, and it
reads kanji poorly) is used and a warning says so once.

Text is cut into pieces (sentences; a long first sentence at its first comma) so the first
piece is spoken while the rest is still being synthesised. Output: PCM16 mono 24 kHz.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

RATE_HZ = 24_000
JTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
JTALK_VOICE = Path("/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice")
_TIMEOUT_S = 20.0
_FIRST_PIECE_CHARS = {"en": 50, "ja": 18}
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")


class SynthesizerUnavailable(KioskError):
    """No speech synthesiser is installed (one-line reason with the apt command)."""


def pieces(text: str, language: str) -> list[str]:
    """Sentences of ``text``; a long first one is cut after its first comma."""
    parts = [p.strip() for p in _SENTENCE.split(text) if p and p.strip()]
    if not parts:
        return []
    first = parts[0]
    if len(first) > _FIRST_PIECE_CHARS.get(language, 50):
        match = re.search(r"[,、;；]\s*", first[8:])
        if match is not None:
            cut = 8 + match.end()
            if first[cut:].strip():
                parts[0:1] = [first[:cut].strip(), first[cut:].strip()]
    return parts


class Synthesizer:
    """Speaks English with eSpeak NG and Japanese with Open JTalk (or eSpeak NG's ``ja``)."""

    def __init__(self, *, voice_en: str = "en-us", rate_wpm: int = 165) -> None:
        self.voice_en = voice_en
        self.rate_wpm = rate_wpm
        self._warned = False

    @staticmethod
    def check() -> None:
        """Raise :class:`SynthesizerUnavailable` when not even eSpeak NG is installed."""
        if shutil.which("espeak-ng") is None:
            raise SynthesizerUnavailable(
                "espeak-ng is not installed: sudo apt install espeak-ng "
                "(and open-jtalk open-jtalk-mecab-naist-jdic hts-voice-nitech-jp-atr503-m001 "
                "for Japanese)"
            )

    @staticmethod
    def has_open_jtalk() -> bool:
        return shutil.which("open_jtalk") is not None and JTALK_DICT.is_dir() and JTALK_VOICE.is_file()

    def speak(self, text: str, language: str) -> Iterator[bytes]:
        """PCM16 mono 24 kHz for each piece of ``text`` (blocking: run in a worker thread)."""
        for piece in pieces(text, language):
            yield self.synthesize(piece, language)

    def synthesize(self, text: str, language: str) -> bytes:
        from kiosk.audio.wav import read_wav_mono  # numpy/soxr only when speaking

        with tempfile.TemporaryDirectory(prefix="kiosk-tts-") as tmp:
            out = Path(tmp) / "speech.wav"
            if language == "ja" and self.has_open_jtalk():
                cmd = ["open_jtalk", "-x", str(JTALK_DICT), "-m", str(JTALK_VOICE), "-ow", str(out)]
                stdin = text
            else:
                self.check()
                if language == "ja" and not self._warned:
                    self._warned = True
                    log.warning(
                        "local engine: Open JTalk is not installed; Japanese answers use "
                        "eSpeak NG's ja voice (apt install open-jtalk open-jtalk-mecab-naist-jdic "
                        "hts-voice-nitech-jp-atr503-m001)"
                    )
                voice = "ja" if language == "ja" else self.voice_en
                cmd = ["espeak-ng", "-v", voice, "-s", str(self.rate_wpm), "-w", str(out), "--", text]
                stdin = None
            try:
                subprocess.run(
                    cmd, input=stdin, text=True, capture_output=True, check=True, timeout=_TIMEOUT_S
                )
            except FileNotFoundError as exc:
                raise SynthesizerUnavailable(f"{cmd[0]} is not installed ({exc})") from None
            except subprocess.CalledProcessError as exc:
                problem = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
                raise SynthesizerUnavailable(f"{cmd[0]} failed: {problem[0][:200]}") from None
            except subprocess.TimeoutExpired:
                raise SynthesizerUnavailable(f"{cmd[0]} took over {_TIMEOUT_S:.0f} s") from None
            return read_wav_mono(out, RATE_HZ).astype("<i2").tobytes()

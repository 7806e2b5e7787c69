#!/usr/bin/env python3
"""Render the "service unreachable" clips kiosk plays instead of silence.

Writes ``kiosk/data/offline_en.wav`` and ``kiosk/data/offline_ja.wav``: 24 kHz mono PCM16,
the Realtime API's own output format, so the playback path needs no special case.

English uses eSpeak NG; Japanese uses Open JTalk with the NIT ATR503 m001 HTS voice when it
is installed (apt: open-jtalk open-jtalk-mecab-naist-jdic, and hts-voice-nitech-jp-atr503-m001
from Debian contrib), else eSpeak NG's ``ja`` voice. Both go through sox to resample, trim
leading/trailing silence and normalise to -3 dBFS.

Usage: tools/make_offline_clips.py [--out-dir kiosk/data]

Run at build time or by install.sh; the committed clips were made with this script.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

TEXT_EN = "Sorry, I can't reach the service right now. Please try again later."
TEXT_JA = (
    "申し訳ありません。ただいまサービスに接続できません。しばらくしてから、もう一度お試しください。"
)

RATE_HZ = 24_000
OPEN_JTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
OPEN_JTALK_VOICE = Path("/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice")


def _run(argv: list[str], stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


def _finish(raw_wav: Path, out: Path) -> None:
    """Resample to 24 kHz mono PCM16, trim silence at both ends, normalise to -3 dBFS."""
    _run(
        [
            "sox",
            str(raw_wav),
            "-r",
            str(RATE_HZ),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            str(out),
            "silence",
            "1",
            "0.02",
            "0.5%",
            "reverse",
            "silence",
            "1",
            "0.02",
            "0.5%",
            "reverse",
            "pad",
            "0.05",
            "0.1",
            "norm",
            "-3",
        ]
    )


def render_en(out: Path, tmp: Path) -> str:
    raw = tmp / "en.wav"
    _run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), TEXT_EN])
    _finish(raw, out)
    return "espeak-ng en-us"


def render_ja(out: Path, tmp: Path) -> str:
    raw = tmp / "ja.wav"
    if shutil.which("open_jtalk") and OPEN_JTALK_DICT.is_dir() and OPEN_JTALK_VOICE.is_file():
        text_file = tmp / "ja.txt"
        text_file.write_text(TEXT_JA, encoding="utf-8")
        _run(
            [
                "open_jtalk",
                "-x",
                str(OPEN_JTALK_DICT),
                "-m",
                str(OPEN_JTALK_VOICE),
                "-r",
                "1.0",
                "-ow",
                str(raw),
                str(text_file),
            ]
        )
        engine = "open_jtalk nitech-jp-atr503-m001"
    else:
        _run(["espeak-ng", "-v", "ja", "-s", "140", "-w", str(raw), TEXT_JA])
        engine = "espeak-ng ja"
    _finish(raw, out)
    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "kiosk" / "data"
    )
    args = parser.parse_args(argv)
    for tool in ("sox", "espeak-ng"):
        if shutil.which(tool) is None:
            print(f"make_offline_clips: {tool} not found (apt install {tool})", file=sys.stderr)
            return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for lang, render in (("en", render_en), ("ja", render_ja)):
            out = args.out_dir / f"offline_{lang}.wav"
            engine = render(out, tmp)
            with wave.open(str(out), "rb") as w:
                seconds = w.getnframes() / w.getframerate()
            print(f"{out}: {seconds:.2f} s, {engine}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

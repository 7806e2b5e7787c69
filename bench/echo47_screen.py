"""The plan's screen for echo47's "nothing new in the microphone" (TUNING TOOL, stop 47 helper
echo47): replay every stored SpeexDSP pulse trace with the importable kiosk (``bench/warm41_why.py
replay``: the raw guard handed the canceller's levels), optionally with the cue's bounds set
(``ECHO47=max_db:margin_db``: kiosk.core.echo_double_talk.SPECTRAL_NOVELTY_MAX_DB /
SPECTRAL_NOVELTY_MARGIN_DB, replay only), then compare with a pass of main's code
(``warm41_why.py compare``). Counts the frames the cue cleared and how often it was asked.

    python bench/echo47_screen.py OUT.json TRACE.pkl...

A replay is exact up to its first pause: a tuning tool, never a user figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import warm41_why  # noqa: E402


def main() -> int:
    return warm41_why.screen_main(
        "ECHO47",
        (("SPECTRAL_NOVELTY_MAX_DB", float), ("SPECTRAL_NOVELTY_MARGIN_DB", float)),
        "_nothing_new_in_microphone",
    )


if __name__ == "__main__":
    sys.exit(main())

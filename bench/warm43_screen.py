"""The plan's screen for warm43's missed-echo cue (TUNING TOOL, stop 43 helper warm43): replay
every stored SpeexDSP pulse trace with the importable kiosk (``bench/warm41_why.py replay``: the
raw guard handed the canceller's levels), optionally with the cue's bounds set
(``WARM43=fit:frames:over_db``: kiosk.core.echo_double_talk.MISSED_ECHO_FIT / _FRAMES /
_OVER_ESTIMATE_DB, replay only; fit 2 turns it off), then compare with a pass of main's code
(``warm41_why.py compare``). Counts the frames the cue cleared and the fits it asked for.

    python bench/warm43_screen.py OUT.json TRACE.pkl...

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
        "WARM43",
        (
            ("MISSED_ECHO_FIT", float),
            ("MISSED_ECHO_FRAMES", int),
            ("MISSED_ECHO_OVER_ESTIMATE_DB", float),
        ),
        "_missed_echo",
    )


if __name__ == "__main__":
    sys.exit(main())

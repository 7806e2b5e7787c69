"""The plan's screen for echo44's estimate-apart cue (TUNING TOOL, stop 44 helper echo44): replay
every stored SpeexDSP pulse trace with the importable kiosk (``bench/warm41_why.py replay``: the
raw guard handed the canceller's levels), optionally with the cue's bounds set
(``ECHO44=corr:high_db``: kiosk.core.echo_double_talk.ESTIMATE_APART_CORR / _HIGH_OVER_DB,
replay only; corr -2 turns it off; the first tuning passes, on 900b366 / 3-field ECHO44, also had a
reference-fit bound, ESTIMATE_APART_FIT, since dropped), then compare with a pass of main's code
(``warm41_why.py compare``). Counts the frames the cue cleared and how often it was asked.

    python bench/echo44_screen.py OUT.json TRACE.pkl...

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
        "ECHO44",
        (("ESTIMATE_APART_CORR", float), ("ESTIMATE_APART_HIGH_OVER_DB", float)),
        "_estimate_apart",
    )


if __name__ == "__main__":
    sys.exit(main())

"""The plan's screen for quiet44's soft consonant pair (TUNING TOOL, stop 44 helper quiet44): replay
stored SpeexDSP pulse traces with the importable kiosk (``bench/warm41_why.py replay``: the raw guard
handed the canceller's levels), optionally with the pair's bounds set (``QUIET44=min_db:sum_db``:
kiosk.core.echo_double_talk.DOUBLE_TALK_HIGH_MIN_DB / _SUM_DB, replay only), then compare with a
pass of main's code (``warm41_why.py compare``).

    python bench/quiet44_screen.py OUT.json TRACE.pkl...

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
        "QUIET44", (("DOUBLE_TALK_HIGH_MIN_DB", float), ("DOUBLE_TALK_HIGH_SUM_DB", float)), None
    )


if __name__ == "__main__":
    sys.exit(main())

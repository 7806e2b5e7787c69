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

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import warm41_why  # noqa: E402


def main() -> int:
    variant = os.environ.get("WARM43")
    counted = {"cleared": 0, "asked": 0}
    try:
        from kiosk.core import echo_double_talk as edt

        if variant:
            fit, frames, over = variant.split(":")
            edt.MISSED_ECHO_FIT, edt.MISSED_ECHO_FRAMES = float(fit), int(frames)  # type: ignore[attr-defined]
            edt.MISSED_ECHO_OVER_ESTIMATE_DB = float(over)  # type: ignore[attr-defined]
        missed0 = edt.TrustedCancellerCues._missed_echo  # type: ignore[attr-defined]

        def missed(self):  # (how often the cue was asked and said yes)
            got = missed0(self)
            counted["cleared"] += got
            counted["asked"] += 1
            return got

        edt.TrustedCancellerCues._missed_echo = missed  # type: ignore[attr-defined]
    except AttributeError:
        pass
    got = warm41_why.replay_main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
    print("variant", variant, counted, flush=True)
    return got


if __name__ == "__main__":
    sys.exit(main())

"""The plan's screen for warm42's second stage (TUNING TOOL, stop 42 helper warm42): replay every
stored SpeexDSP pulse trace with the importable kiosk (``bench/warm41_why.py replay``: the raw guard
handed the canceller's levels), optionally with the second stage's bound set
(``WARM42_FIT=0.94``: ``kiosk.audio.echo_cancel.REFERENCE_FIT_EXPLAINS``, replay only; ``2`` turns
it off), then compare with a pass of main's code (``warm41_why.py compare``).

    python bench/warm42_screen.py OUT.json TRACE.pkl...

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
    fit = os.environ.get("WARM42_FIT")
    if fit:
        from kiosk.audio import echo_cancel as ec

        ec.REFERENCE_FIT_EXPLAINS = float(fit)  # type: ignore[attr-defined]
    counted = {"frames": 0}
    try:
        from kiosk.audio import echo_cancel as ec

        close0 = ec.EchoCanceller.close

        def close(self):  # (the frames the second stage acted on, per replayed canceller)
            counted["frames"] += getattr(self, "second_stage_frames", 0)
            return close0(self)

        ec.EchoCanceller.close = close  # type: ignore[method-assign]
    except ImportError:
        pass
    got = warm41_why.replay_main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
    print("fit bound", fit, flush=True)
    return got


if __name__ == "__main__":
    sys.exit(main())

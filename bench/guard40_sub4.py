"""``bench/pulse_guard_replay.py`` with the guard's pitch cue counting the reference's periodicity at
more multiples of the microphone's period (``--subharmonics``, default 2,3,4; the kiosk's is 2,3:
``kiosk.audio.echo_pitch.SUBHARMONICS``, passed by ``kiosk.audio.echo_level.EchoLevelTap``). Helper
guard40, stop 40: held-out s1451 echo 076 at -12 dB paused itself on main's code on two frames
whose microphone repeated at a quarter of the answer's period (its 4th harmonic, ~400 Hz), where
the reference does not (0.41-0.43) but does at 4x (0.74-0.94). A tuning tool (replay).

    python bench/guard40_sub4.py [--subharmonics 2,3,4] TRACES...
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pulse_guard_replay  # noqa: E402

from kiosk.audio import echo_level  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    subs = (2, 3, 4)
    if argv and argv[0] == "--subharmonics":
        subs = tuple(int(x) for x in argv[1].split(","))
        argv = argv[2:]
    echo_level.SUBHARMONICS = subs  # type: ignore[attr-defined]
    print("# SUBHARMONICS", subs, flush=True)
    return pulse_guard_replay.main(argv)


if __name__ == "__main__":
    sys.exit(main())

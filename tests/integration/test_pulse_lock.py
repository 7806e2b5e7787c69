"""The machine-wide lock that keeps two test runs' PulseAudio tests apart."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.pulse import PULSE_LOCK, pulse_lock

_TRY_LOCK = (
    "import fcntl, sys\n"
    "f = open(sys.argv[1], 'a')\n"
    "try:\n"
    "    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "except BlockingIOError:\n"
    "    sys.exit(3)\n"
)


def _other_process_gets_it() -> bool:
    done = subprocess.run([sys.executable, "-c", _TRY_LOCK, str(PULSE_LOCK)], timeout=30)
    return done.returncode == 0


def test_another_run_waits_while_one_holds_it_even_nested() -> None:
    with pulse_lock():
        with pulse_lock():  # re-entrant: pulse_problem() inside a locked test
            assert not _other_process_gets_it()
        assert not _other_process_gets_it()
    assert _other_process_gets_it()

"""SpeexDSP's native state and close(): a frame after (or while) the canceller is closed must not
crash the process. Seen in the pulse_aec bench (the daemon through real PulseAudio, speex-later):
``segfault at 4 … in libspeexdsp`` (speex_echo_cancellation on a NULL state). Each case runs in
a child process, so the old code's crash is a failed assertion here, not a dead test run."""

from __future__ import annotations

import subprocess
import sys

from kiosk.audio import speexdsp
from tests.audio.test_echo_cancel import _need_speex

CHILD = r"""
import threading
from kiosk.audio.speexdsp import SpeexEcho
mic, ref = bytes(range(256)) * 2 + bytes(128), bytes(640)
echo = SpeexEcho(320, 1920, 16000, suppress_db=-40)
echo.cancel(mic, ref)
echo.close()
assert echo.cancel(mic, ref) == mic, "a frame after close passes through unchanged"
echo.reset()
# close() from another thread while frames run (the pipeline's shutdown vs the microphone)
for _ in range(20):
    echo = SpeexEcho(320, 1920, 16000, suppress_db=-40)
    closer = threading.Timer(0.002, echo.close)
    closer.start()
    for _ in range(300):
        echo.cancel(mic, ref)
    closer.join()
print("ok")
"""


def test_frames_after_or_during_close_do_not_crash() -> None:
    _need_speex()
    assert speexdsp.available()
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"child exited {done.returncode}: {done.stderr[-500:]}"
    assert done.stdout.strip() == "ok"

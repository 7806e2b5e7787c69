"""The speaker's latency on the PulseAudio backend, asked for from its own read listener as
the echo reference does, holds steady through a real server while libpulse's interpolated
estimate creeps up (helper guardpa28; kiosk.audio.pulse_latency). Run in a child process:
libpulse's function is replaced there to creep as it was seen to (+40 ms mid-answer)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.pulse import pulse_lock

pytestmark = [pytest.mark.pulseaudio, pytest.mark.usefixtures("pulseaudio_module")]

CHILD = """
import json, time
from kiosk.audio import libpulse
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pulse_host import open_pulse
from kiosk.audio.pyaudio_io import PyAudioSink
lib = libpulse.load_library()
real = lib.pa_stream_get_latency
creep = {"us": 0}
def creeping(stream, usec, negative):  # libpulse's interpolation creeping up, as seen
    got = real(stream, usec, negative)
    usec._obj.value += creep["us"]
    return got
lib.pa_stream_get_latency = creeping
buf = PlaybackBuffer(24000)
sink = PyAudioSink("", buf, source_rate_hz=24000, pyaudio_factory=open_pulse)
seen = []
buf.add_read_listener(lambda pcm: seen.append((time.monotonic(), sink.unplayed_ms)))
with sink:
    buf.write(b"\\x10\\x00" * 24000 * 3, "answer")
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if seen and time.monotonic() - seen[0][0] > 1.2:
            creep["us"] = 40000
        time.sleep(0.01)
print(json.dumps({"seen": [(t - seen[0][0], ms) for t, ms in seen]}))
"""


def test_the_speaker_latency_stays_put_while_libpulse_reports_a_creep() -> None:
    with pulse_lock():
        done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-400:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])["seen"]
    before = [ms for t, ms in seen if 0.7 < t < 1.2]
    during = [ms for t, ms in seen if t > 1.4]
    assert len(before) > 10 and len(during) > 10
    assert max(during) - min(before) < 10, (min(before), max(before), min(during), max(during))

"""The speaker's latency asked for from inside its own PulseAudio callback (helper pulse27).

The daemon's echo reference (the guard's level tap, the in-process canceller) stamps each block
the speaker takes from the playback buffer with when it is heard: ``pipeline.unheard_ms`` ->
``PyAudioSink.unplayed_ms`` -> ``pa_stream_get_latency``, called from the playback buffer's
read listener, i.e. on libpulse's main-loop thread, inside the write callback. Taking the
loop's lock there again made libpulse abort the whole process (``pa_threaded_mainloop_lock``:
"Assertion '... !in_worker(m) ...' failed"): ``kiosk run`` on the PulseAudio backend died at
its first earcon. Skipping only the loop's lock there deadlocked instead (the daemon asks for
the latency from its own thread too, holding the connection's guard while it waits for the
loop's lock). Run in a child process: an abort or a hang must not take pytest with it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.pulse import pulse_lock

pytestmark = [pytest.mark.pulseaudio, pytest.mark.usefixtures("pulseaudio_module")]

CHILD = """
import json, time
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.pulse_host import open_pulse
from kiosk.audio.pyaudio_io import PyAudioSink
buf = PlaybackBuffer(24000)
sink = PyAudioSink("", buf, source_rate_hz=24000, pyaudio_factory=open_pulse)
seen = []
buf.add_read_listener(lambda pcm: seen.append(sink.unplayed_ms))  # as the echo reference does
asked = 0
with sink:
    buf.write(b"\\x10\\x00" * 24000, "answer")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # the daemon's thread asks too, meanwhile
        sink.unplayed_ms
        asked += 1
print(json.dumps({"seen": seen[:5], "asked": asked}))
"""


def test_speaker_latency_from_its_own_callback_does_not_abort() -> None:
    with pulse_lock():
        try:
            done = subprocess.run(
                [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=20
            )
        except subprocess.TimeoutExpired:
            pytest.fail("deadlock: the speaker's callback and another thread both asked")
    assert done.returncode == 0, done.stderr[-400:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    latencies = out["seen"]
    assert len(latencies) == 5
    assert out["asked"] > 100
    assert all(0 <= ms < 1000 for ms in latencies)  # a real figure, not an error's 0 only
    assert any(ms > 0 for ms in latencies)

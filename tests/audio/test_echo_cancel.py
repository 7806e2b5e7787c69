"""In-process echo cancellation (``audio.echo_cancel = "speex"``): SpeexDSP removes a known
echo, the reference follows what the speaker played and when it is heard, nothing runs while
nothing plays, a barge-in over the echo is heard, and the setting is validated."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.audio import speexdsp
from kiosk.audio.echo_cancel import (
    REFERENCE_LEAD_MS,
    EchoCanceller,
    EchoReference,
    echo_canceller_for,
)
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.wav import read_wav_mono
from kiosk.config import load_config
from kiosk.core.endpointing import Endpointer, Onset
from kiosk.errors import ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from lobby_sound import room_ir  # noqa: E402  (the bench's room, not a copy of it)

RATE = 16000
FRAME = 320  # 20 ms


def need(available: bool, message: str) -> None:
    """A canceller's library that CI installs: missing there is a failure, not a skip."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _need_speex() -> None:
    """CI installs libspeexdsp1 (scripts/test.sh)."""
    need(speexdsp.available(), f"{speexdsp.LIBRARY} missing (apt install {speexdsp.APT_PACKAGE}; scripts/test.sh does)")


def room(seed: int, echo_db: float) -> np.ndarray:
    """The lobby bench's small room (direct path 1.5 ms late + a 150 ms decaying tail) at
    ``echo_db``: bench/lobby_sound.py draws its tail from seed + 2."""
    return room_ir(RATE, seed - 2, echo_db)


def speech(seconds: float) -> np.ndarray:
    x = read_wav_mono(FIXTURES / "arc-easy-q237-tts.wav", RATE).astype(np.float64)
    return np.tile(x, int(np.ceil(seconds * RATE / x.size)))[: int(seconds * RATE)]


def db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-9)


def i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def cancel_frames(canceller: Any, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Every whole frame of ``mic`` through a frame canceller (SpeexDSP or AEC3) against
    ``ref``, then close it: the cleaned samples (a last partial frame stays silent)."""
    out = np.zeros_like(mic)
    for i in range(0, mic.size - FRAME + 1, FRAME):
        cleaned = canceller.cancel(mic[i : i + FRAME].tobytes(), ref[i : i + FRAME].tobytes())
        out[i : i + FRAME] = np.frombuffer(cleaned, dtype=np.int16)
    canceller.close()
    return out


@pytest.mark.parametrize("echo_db", [-6.0, -12.0])
def test_speex_removes_a_known_echo_by_15_db_after_convergence(echo_db):
    _need_speex()
    far = speech(10.0)
    delay = int(0.03 * RATE)  # the device's latency the stamps did not account for
    echo = np.convolve(np.concatenate([np.zeros(delay), far]), room(3, echo_db))[: far.size]
    noise = np.random.default_rng(0).standard_normal(far.size) * 10 ** (-70 / 20) * 32768
    mic, ref = i16(echo + noise), i16(far)
    out = cancel_frames(speexdsp.SpeexEcho(FRAME, RATE * 120 // 1000, RATE), mic, ref)
    later = slice(4 * RATE, None)  # after 4 s of answer
    erle = db(mic[later]) - db(out[later])
    assert erle >= 15.0, f"ERLE {erle:.1f} dB at {echo_db} dB echo"


def test_the_reference_is_what_was_played_at_the_time_it_is_heard():
    now = [100.0]
    ref = EchoReference(lambda: now[0], latency_s=lambda: 0.05, source_rate_hz=RATE)
    assert ref.take(100.0, FRAME) is None  # nothing played yet
    tone = i16(np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE) * 8000)
    for k in range(50):  # 1 s in 20 ms blocks, taken by the speaker every 20 ms
        now[0] = 100.0 + k * 0.02
        ref.played(tone[k * FRAME : (k + 1) * FRAME].tobytes())
    got = np.frombuffer(ref.take(100.05 + 0.2, FRAME) or b"", dtype=np.int16)
    # heard from 100.05 on (latency): 200 ms into the tone, as played
    assert np.array_equal(got, tone[int(0.2 * RATE) : int(0.2 * RATE) + FRAME])
    assert ref.take(99.0, FRAME) is None  # before anything was heard
    after = np.frombuffer(ref.take(100.05 + 0.99, FRAME) or b"", dtype=np.int16)
    assert after[-100:].tolist() == [0] * 100  # silence after the last block, not old audio


def test_the_last_block_before_the_speaker_stops_reaches_the_reference():
    """The resampler (24 -> 16 kHz) holds back up to ~30 ms of what it was given until more
    comes; when the speaker stops (the queue ran dry, the answer ended, a hold) that last
    audio was heard all the same, and its echo needs its reference (it went missing: the
    echo of those frames passed uncancelled and paused the answer)."""
    now = [0.0]
    ref = EchoReference(lambda: now[0], source_rate_hz=24000)
    tone24 = i16(np.sin(np.arange(24000) * 2 * np.pi * 440 / 24000) * 8000)
    for k in range(10):  # 200 ms, then the queue runs dry
        now[0] = k * 0.02
        ref.played(tone24[k * 480 : (k + 1) * 480].tobytes())
    last = np.frombuffer(ref.take(0.18, FRAME) or bytes(FRAME * 2), dtype=np.int16)
    assert db(last) > db(tone24) - 1  # all of the last 20 ms, not zeros
    after = np.frombuffer(ref.take(0.2, FRAME) or bytes(FRAME * 2), dtype=np.int16)
    assert db(after) < db(tone24) - 40  # then the silence it plays
    for k in range(10, 20):  # the next delta: the stream goes on, still on time
        now[0] = k * 0.02
        ref.played(tone24[k * 480 : (k + 1) * 480].tobytes())
    ref.take(0.4, FRAME)
    got = np.frombuffer(ref.take(0.3, FRAME) or b"", dtype=np.int16).astype(np.float64)
    want = np.sin(np.arange(int(0.3 * RATE), int(0.3 * RATE) + FRAME) * 2 * np.pi * 440 / RATE) * 8000
    assert db(got - want) < db(want) - 30, "the timeline slipped after the flush"


class CountingFilter:
    def __init__(self, frame: int, length: int, rate: int) -> None:
        self.calls = 0

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        self.calls += 1
        return mic


def test_nothing_runs_while_nothing_plays_and_the_tail_is_cancelled_after_it():
    playback = PlaybackBuffer(24000)
    now = [0.0]
    canceller = echo_canceller_for("none", playback, lambda: now[0], lambda: 0.0, 20)
    assert canceller is None
    ref = EchoReference(lambda: now[0], source_rate_hz=24000)
    canceller = EchoCanceller(ref, 20, CountingFilter)
    silence = bytes(FRAME * 2)
    for k in range(500):  # 10 s of a quiet room
        now[0] = k * 0.02
        assert canceller.process(silence, now[0] - 0.02) is silence
    assert canceller._filter.calls == 0 and canceller.frames_cancelled == 0
    assert canceller.cpu_s == 0.0
    for k in range(500, 550):  # 1 s of answer
        now[0] = k * 0.02
        ref.played(bytes(960) + b"\x10\x00" * 480)
        canceller.process(silence, now[0] - 0.02)
    played = canceller._filter.calls
    assert played >= 48
    for k in range(550, 650):  # quiet again: only the room's tail goes through the filter
        now[0] = k * 0.02
        canceller.process(silence, now[0] - 0.02)
    tail = canceller._filter.calls - played
    assert 0 < tail <= (120 + REFERENCE_LEAD_MS) // 20 + 8  # its ring + the reference lag
    assert not canceller.active


def test_the_playback_tap_lets_go_when_closed():
    _need_speex()
    playback = PlaybackBuffer(24000)
    now = [0.0]
    canceller = echo_canceller_for("speex", playback, lambda: now[0], lambda: 0.0, 20)
    assert canceller is not None
    playback.write(b"\x01\x00" * 4800, "item")
    for k in range(10):  # the speaker takes a block every 20 ms
        now[0] = k * 0.02
        playback.read(480)
    assert canceller.reference.take(0.0, 1600) is not None
    canceller.close()
    assert playback._read_listeners == []


def test_an_earcon_in_the_reference_is_marked_and_its_echo_judged_as_unlearned():
    """The filter learns the room from answers, whose spectrum need not cover an earcon's
    tones: while an earcon sounds in the reference (within the filter's span) the canceller
    says so, and the endpointer judges that frame as an unlearned echo (no trust, the raw
    echo return), and learns nothing from it."""
    from kiosk.config import VadSettings

    playback = PlaybackBuffer(24000)
    now = [0.0]
    ref = EchoReference(lambda: now[0], source_rate_hz=24000)
    canceller = EchoCanceller(ref, 20, CountingFilter)
    playback.add_read_listener(lambda pcm: ref.played(pcm, playback.earcon_in_last_read))
    playback.write(b"\x00\x10" * 24000, "item")  # 1 s of answer
    silence = bytes(FRAME * 2)
    marked = []
    for k in range(40):
        now[0] = k * 0.02
        if k == 20:
            playback.write(b"\x00\x08" * 4800, None)  # a 200 ms earcon over the answer
        playback.read(480)  # heard at once (no device latency here)
        canceller.process(silence, now[0] - 0.04)  # the frame before last: all played by now
        marked.append(canceller.earcon_audible)
    assert not any(marked[:20]) and all(marked[23:32]), marked
    settings = VadSettings()
    endpointer = Endpointer(lambda f: True, settings, 20)
    endpointer.echo_relearn = True
    endpointer.echo_return_db, endpointer._echo_max_db = -40.0, -38.0  # adapted: trusted
    trusted = endpointer._guard_floor_dbfs(-15.0)
    endpointer.earcon_echo = True
    assert trusted == -15.0 - 40.0 + settings.barge_in_margin_db
    assert endpointer._guard_floor_dbfs(-15.0) == -15.0 + settings.barge_in_margin_db
    endpointer._learn_echo(-30.0, -15.0)  # the earcon's residual teaches nothing
    assert endpointer.echo_return_db == -40.0 and endpointer.echo_cancelled_well


def test_a_barge_in_over_a_loud_echo_is_heard_with_aec_and_the_echo_alone_is_not():
    """-6 dB echo (louder than the guard alone lets a normal voice through) for 6 s; the
    canceller adapts, the guard follows what is left of the echo; a visitor speaking at
    the answer's own level then opens a turn within 300 ms, and the echo alone never does."""
    _need_speex()
    from kiosk.config import VadSettings

    far = speech(9.0)
    far *= 10 ** ((-20.0 + 20 * np.log10(32768) - db(far)) / 20)  # the answer at -20 dBFS
    echo = np.convolve(np.concatenate([np.zeros(int(0.02 * RATE)), far]), room(5, -6.0))[: far.size]
    visitor = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", RATE).astype(np.float64)
    visitor *= 10 ** ((db(far) - db(visitor)) / 20) * 10 ** (-6 / 20)  # 6 dB under the answer
    at = int(6.5 * RATE)
    noise = np.random.default_rng(1).standard_normal(far.size) * 10 ** (-60 / 20) * 32768
    for with_visitor, aec in ((False, True), (True, True), (True, False)):
        mic = echo + noise
        if with_visitor:
            mic[at : at + visitor.size] += visitor[: far.size - at]
        mic16, ref16 = i16(mic), i16(far)
        now = [0.0]
        ref = EchoReference(lambda: now[0], source_rate_hz=RATE)
        canceller = EchoCanceller(ref, 20)
        endpointer = Endpointer(lambda f: _voiced(f), VadSettings(), 20)
        endpointer.echo_relearn = aec
        onsets = []
        for k in range(far.size // FRAME):
            now[0] = k * 0.02
            ref.played(ref16[k * FRAME : (k + 1) * FRAME].tobytes())
            frame = mic16[k * FRAME : (k + 1) * FRAME].tobytes()
            if aec:
                frame = canceller.process(frame, now[0])
            endpointer.guarded = True
            blocks = ref16[max(0, k - 9) * FRAME : (k + 1) * FRAME].reshape(-1, FRAME)
            far_db = max(db(b) for b in blocks) - 20 * np.log10(32768)  # recent_output_dbfs
            for event in endpointer.process(frame, float(far_db)):
                if isinstance(event, Onset):
                    onsets.append(k * 0.02)
        canceller.close()
        if with_visitor and aec:
            assert onsets and 6.5 <= onsets[0] <= 6.5 + 0.8, onsets
        else:  # the echo alone never; nor, without AEC, a visitor no louder than the echo
            assert onsets == [], (with_visitor, aec, onsets)


def _voiced(frame: bytes) -> bool:
    """A crude voice detector for the test: energy above -50 dBFS."""
    return db(np.frombuffer(frame, dtype=np.int16)) > 20 * np.log10(32768) - 50


def test_the_setting_is_validated_in_one_line(monkeypatch):
    with pytest.raises(ConfigError, match=r"audio\.echo_cancel"):
        load_config('[audio]\necho_cancel = "aec3"\n', {}, require_key=False)
    with pytest.raises(ConfigError, match=r"audio\.echo_cancel: the input is already"):
        load_config(
            '[audio]\necho_cancel = "speex"\necho_cancelled = true\n', {}, require_key=False
        )

    def missing() -> None:
        raise ConfigError("audio.echo_cancel", '"speex" needs libspeexdsp.so.1 (sudo apt install libspeexdsp1)')

    monkeypatch.setattr(speexdsp, "load_library", missing)
    with pytest.raises(ConfigError) as err:
        load_config('[audio]\necho_cancel = "speex"\n', {}, require_key=False)
    assert str(err.value).count("\n") == 0
    assert "audio.echo_cancel" in str(err.value) and "libspeexdsp1" in str(err.value)

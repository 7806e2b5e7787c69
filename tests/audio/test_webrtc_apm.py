"""WebRTC's AEC3 (``audio.echo_cancel = "webrtc"``, :mod:`kiosk.audio.webrtc_apm`): on the lobby
bench's room it removes a first answer's echo from its first half second on (no warm-up, where
SpeexDSP needs 1-2 s), a visitor talking over the answer passes, the canceller calls it only
while something plays, and the setting is validated with a one-line error when the package is
missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio import webrtc_apm
from kiosk.audio.echo_cancel import EchoReference, PlaybackEchoCanceller, echo_canceller_for
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.wav import read_wav_mono
from kiosk.config import load_config
from kiosk.errors import ConfigError
from tests.audio.test_echo_cancel import cancel_frames, i16

FIXTURES = Path(__file__).parent.parent / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from lobby_sound import room_ir  # noqa: E402  (the bench's room, not a copy of it)

from .test_echo_cancel import need  # noqa: E402

RATE = 16000
FRAME = 320  # the pipeline's 20 ms


def _need_webrtc() -> None:
    """CI installs the ``aec`` extra (install.sh --dev)."""
    message = f"{webrtc_apm.PACKAGE} missing (pip install 'kiosk[{webrtc_apm.EXTRA}]'; install.sh --dev does)"
    need(webrtc_apm.available(), message)


def clip(name: str) -> np.ndarray:
    return read_wav_mono(FIXTURES / name, RATE).astype(np.float64)


def db(x: np.ndarray) -> float:
    """dBFS of int16-scale samples."""
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-9) - 20 * np.log10(32768)


def first_answer(echo_db: float, visitor_at_s: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A first answer (the canceller has heard nothing before) echoing back through the bench's
    room 30 ms later than the reference says, room noise at -70 dBFS, and maybe a visitor
    ("stop" in Japanese, as loud as a visitor over -12 dB echo) from ``visitor_at_s`` on.
    Returns (microphone, reference, echo, visitor) at 16 kHz."""
    answer = clip("arc-easy-q237-tts.wav")[: 4 * RATE]
    answer = answer / np.sqrt(np.mean(answer**2)) * 10 ** (-18 / 20) * 32768  # -18 dBFS speech
    delay = int(0.03 * RATE)
    echo = np.convolve(np.concatenate([np.zeros(delay), answer]), room_ir(RATE, 1, echo_db))[: answer.size]
    visitor = np.zeros_like(answer)
    if visitor_at_s is not None:
        stop = clip("ja_stop_16k.wav")
        at = int(visitor_at_s * RATE)
        n = min(stop.size, visitor.size - at)
        visitor[at : at + n] = stop[:n] * 2.0
    noise = np.random.default_rng(0).standard_normal(answer.size) * 10 ** (-70 / 20) * 32768
    return i16(echo + visitor + noise), i16(answer), echo, visitor


def run(mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return cancel_frames(webrtc_apm.WebRtcEcho(FRAME, RATE * 120 // 1000, RATE), mic, ref)


@pytest.mark.parametrize("echo_db", [-12.0, -6.0])
def test_a_first_answers_echo_is_removed_from_its_first_half_second(echo_db):
    """No convergence time: over the first 0.5 s of the very first answer the echo is >= 25 dB
    down (SpeexDSP from cold: a few dB there; AEC3 ~35 dB, ad hoc), and no 100 ms stretch of
    the answer leaves more than -40 dBFS (the echo: -22 to -16 dBFS at its loudest)."""
    _need_webrtc()
    mic, ref, echo, _ = first_answer(echo_db, None)
    out = run(mic, ref)
    first = slice(0, RATE // 2)
    assert db(echo[first]) > echo_db - 22  # (the answer does echo there)
    erle = db(mic[first]) - db(out[first])
    assert erle >= 25.0, f"ERLE {erle:.1f} dB over the first 0.5 s at {echo_db} dB echo"
    worst = max(db(out[i : i + RATE // 10]) for i in range(0, 4 * RATE - RATE // 10, RATE // 10))
    assert worst < -40.0, f"a 100 ms stretch of what it left is at {worst:.1f} dBFS"


def test_a_visitor_over_the_first_answer_passes():
    """Double talk 1 s into the first answer: her voice comes through within a few dB, the
    echo around it does not."""
    _need_webrtc()
    mic, ref, echo, visitor = first_answer(-12.0, 1.0)
    out = run(mic, ref).astype(np.float64)
    voiced = np.abs(visitor) > 0
    spoken = slice(int(1.0 * RATE), int(1.0 * RATE) + int(np.flatnonzero(voiced).max() - RATE))
    kept = db(out[spoken]) - db(visitor[spoken])
    assert kept > -6.0, f"her voice came through {kept:.1f} dB down"
    before = slice(0, int(0.9 * RATE))
    assert db(out[before]) < db(visitor[spoken]) - 25


def test_the_canceller_calls_it_only_while_something_plays():
    """Idle, nothing reaches the module (no cost while nothing plays); an answer's frames and
    its ring-out do; the tap lets go when closed."""
    _need_webrtc()
    playback = PlaybackBuffer(24000)
    now = [0.0]
    canceller = echo_canceller_for("webrtc", playback, lambda: now[0], lambda: 0.0, 20)
    assert isinstance(canceller, PlaybackEchoCanceller)
    assert isinstance(canceller._filter, webrtc_apm.WebRtcEcho)
    assert canceller._delay is None  # AEC3 finds the delay itself: never realigned (restarted)
    calls = []
    real = canceller._filter.cancel
    canceller._filter.cancel = lambda mic, ref: calls.append(1) or real(mic, ref)  # type: ignore[method-assign]
    silence = bytes(FRAME * 2)
    for k in range(100):
        now[0] = k * 0.02
        assert canceller.process(silence, now[0] - 0.02) is silence
    assert not calls and canceller.cpu_s == 0.0
    playback.write(b"\x00\x10" * 24000, "item")  # 1 s of answer
    for k in range(100, 200):
        now[0] = k * 0.02
        if not playback.is_idle:
            playback.read(480)
        canceller.process(silence, now[0] - 0.02)
    assert 50 <= len(calls) <= 60 and not canceller.active
    canceller.close()
    assert playback._read_listeners == []


def test_the_setting_is_validated_and_names_the_package_when_it_is_missing(monkeypatch):
    _need_webrtc()
    cfg = load_config('[audio]\necho_cancel = "webrtc"\n', {"OPENAI_API_KEY": "sk-x"})
    assert cfg.audio.echo_cancel == "webrtc"
    with pytest.raises(ConfigError, match="audio.echo_cancel"):
        load_config('[audio]\necho_cancel = "webrtc"\necho_cancelled = true\n', {"OPENAI_API_KEY": "sk-x"})
    monkeypatch.setattr(webrtc_apm, "_rtc", None)
    monkeypatch.setitem(sys.modules, "livekit", None)  # import livekit -> ImportError
    with pytest.raises(ConfigError) as err:
        load_config('[audio]\necho_cancel = "webrtc"\n', {"OPENAI_API_KEY": "sk-x"})
    message = str(err.value)
    assert "audio.echo_cancel" in message and "livekit" in message and "\n" not in message


def test_the_default_config_does_not_load_the_sdk():
    """Its FFI runtime (threads, ~22 MB) is loaded only when "webrtc" is chosen."""
    import subprocess

    code = (
        "import sys\n"
        "from kiosk.config import load_config\n"
        "from kiosk.app import KioskPipeline\n"
        "load_config('', {'OPENAI_API_KEY': 'sk-x'})\n"
        "assert 'livekit' not in sys.modules, 'livekit loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_reset_starts_a_new_module():
    _need_webrtc()
    canceller = webrtc_apm.WebRtcEcho(FRAME, 1920, RATE)
    first = canceller._apm
    canceller.reset()
    assert canceller._apm is not first
    with pytest.raises(ValueError):
        webrtc_apm.WebRtcEcho(100, 1920, RATE)  # not whole 10 ms
    assert EchoReference  # (the reference it shares with SpeexDSP's canceller)

"""webrtcvad as the endpointer's voice detector (``is_speech(frame) -> bool``)."""

from __future__ import annotations

from collections.abc import Callable

from kiosk.errors import ConfigError

VAD_RATES_HZ = (8000, 16000, 32000, 48000)


def webrtc_voice_detector(aggressiveness: int, rate_hz: int, frame_ms: int) -> Callable[[bytes], bool]:
    """A webrtcvad detector for PCM16 mono frames of exactly ``frame_ms`` at ``rate_hz``."""
    import webrtcvad

    if rate_hz not in VAD_RATES_HZ:
        raise ConfigError("audio.capture_rate_hz", f"webrtcvad needs 8/16/32/48 kHz, got {rate_hz}")
    if frame_ms not in (10, 20, 30):
        raise ConfigError("audio.frame_ms", f"webrtcvad needs 10, 20 or 30 ms frames, got {frame_ms}")
    vad = webrtcvad.Vad(aggressiveness)
    frame_bytes = rate_hz * frame_ms // 1000 * 2

    def is_speech(frame: bytes) -> bool:
        if len(frame) != frame_bytes:
            return False  # a short last frame of a file: not worth a turn
        return bool(vad.is_speech(frame, rate_hz))

    return is_speech

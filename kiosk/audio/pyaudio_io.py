"""Live microphone and speaker through PortAudio (pyaudio), in callback mode.

Owns the two stream adapters: :class:`PyAudioSource` (mic -> exact mono int16 frames at the
VAD rate) and :class:`PyAudioSink` (a :class:`~kiosk.audio.playback.PlaybackBuffer` -> the
speaker at whatever rate the device takes), plus noticing that a device died. Input and
output are separate streams on purpose: one full-duplex stream misbehaved on PulseAudio's
null sink (docs/platform-notes.md). Choosing devices and rates is :mod:`kiosk.audio.devices`.

Threads: PortAudio calls the callbacks on its own thread; ``on_frame`` and ``on_error`` run
there (or on the adapter's watchdog thread) and must only hand over, e.g. with
``loop.call_soon_threadsafe``. Nothing here touches the core.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from kiosk.audio.devices import (
    CAPTURE_RATES_HZ,
    PLAYBACK_RATES_HZ,
    DeviceKind,
    PortAudioHost,
    open_pyaudio,
    release_alsa_config,
)
from kiosk.audio.frames import FrameSlicer, first_frame_at_or_above
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.portaudio_stream import ErrorCallback, PortAudioStream
from kiosk.audio.resample import CAPTURE_QUALITY, Resampler

log = logging.getLogger(__name__)

# pyaudio constants, as literals so the module imports without pyaudio.
_PA_CONTINUE = 0
_PA_INPUT_OVERFLOW = 0x2
_PA_OUTPUT_UNDERFLOW = 0x4


class PyAudioSource(PortAudioStream):
    """The microphone as exact ``frame_ms`` frames of mono int16 at ``rate_hz``.

    Opens the input at a rate the device takes (``capture_rate_hz``, or negotiated from
    :data:`~kiosk.audio.devices.CAPTURE_RATES_HZ`), mixes to mono, resamples to ``rate_hz``
    and calls ``on_frame(frame)`` on PortAudio's thread for every whole frame, or
    ``on_frames(frames)`` once per callback with its whole frames (fewer hand-overs when
    ``block_ms`` spans several frames). Neither may block (wrap in
    ``loop.call_soon_threadsafe``).

    With ``on_frames``, the consumer may ask for larger batches while it has nothing to react
    to: :attr:`handover_blocks` > 1 gathers that many callbacks' frames into one hand-over
    (one wake-up of the consumer's thread instead of several), except that a block with a
    frame at or above :attr:`handover_level_dbfs` (someone may be starting to speak) is
    handed over at once, with whatever was gathered before it. A reopen drops what was
    gathered (:meth:`take_pending`).

    When the stream dies (PortAudio stops it, no callback for ``stall_timeout_s``, or no
    first callback for ``start_timeout_s``), ``on_error(DeviceError)`` is called once (from
    the watchdog thread). With ``silence_timeout_s`` > 0, so is a stream that delivers only
    exact zeros that long: PipeWire keeps a stream running on silence when its source goes
    away (leave it 0 where digital silence is normal: a muted codec, a null sink's monitor).
    :meth:`reopen` tries again. :meth:`close` is
    idempotent. Use as a (sync or async) context manager, or call :meth:`start`.
    """

    _kind: DeviceKind = "input"

    def __init__(
        self,
        device_spec: str,
        *,
        rate_hz: int,
        frame_ms: int,
        on_frame: Callable[[bytes], None] | None = None,
        on_error: ErrorCallback | None = None,
        capture_rate_hz: int = 0,
        block_ms: int = 0,
        on_frames: Callable[[list[bytes]], None] | None = None,
        stall_timeout_s: float = 2.0,
        start_timeout_s: float = 5.0,
        silence_timeout_s: float = 0.0,
        pyaudio_factory: Callable[[], PortAudioHost] = open_pyaudio,
    ) -> None:
        super().__init__(
            device_spec,
            preferred_rates_hz=(rate_hz, *(r for r in CAPTURE_RATES_HZ if r != rate_hz)),
            fixed_rate_hz=capture_rate_hz,
            block_ms=block_ms or frame_ms,
            on_error=on_error,
            stall_timeout_s=stall_timeout_s,
            start_timeout_s=start_timeout_s,
            pyaudio_factory=pyaudio_factory,
        )
        self.rate_hz = rate_hz
        self.frame_ms = frame_ms
        if (on_frame is None) == (on_frames is None):
            raise ValueError("give exactly one of on_frame and on_frames")
        self._on_frame = on_frame
        self._on_frames = on_frames
        self._silence_timeout_s = silence_timeout_s
        self._silent_since_s: float | None = None
        self._slicer = FrameSlicer(rate_hz, frame_ms)  # validates rate/frame_ms early
        self._resampler = Resampler(rate_hz, rate_hz)
        self.frames_delivered = 0
        # Set by the consumer (any thread; plain attributes): see the class docstring.
        self.handover_blocks = 1
        self.handover_level_dbfs = -math.inf
        self._gathered: list[bytes] = []
        self._gathered_blocks = 0
        self._gather_lock = threading.Lock()
        self.handovers = 0
        # (stream, block_ms, prompt) last asked of it
        self._block_asked: tuple[Any, int, bool] = (None, 0, False)

    def _prepare(self, rate_hz: int, channels: int) -> None:
        self._resampler = Resampler(rate_hz, self.rate_hz, quality=CAPTURE_QUALITY)
        self._slicer.clear()
        self._silent_since_s = None
        self._block_asked = (None, 0, False)
        self.take_pending()

    def follow_block_ms(self, block_ms: int, *, prompt: bool = False) -> None:
        """Deliver ``block_ms`` device blocks from now on, where the stream can change on
        the fly (PulseAudio: ``set_block_frames``); a PortAudio stream keeps the block it was
        opened with (``block_ms`` of the constructor), and so does a reopened stream until
        the next call. ``prompt``: each block as soon as it is whole, not at the reader's
        own pace (PulseAudio; a few more wake-ups per block). Cheap when nothing changes
        (the consumer calls it every hand-over)."""
        stream = self._stream
        if stream is None or self._block_asked == (stream, block_ms, prompt):
            return
        self._block_asked = (stream, block_ms, prompt)
        set_block_frames = getattr(stream, "set_block_frames", None)
        if set_block_frames is not None and self.device_rate_hz:
            set_block_frames(max(1, self.device_rate_hz * block_ms // 1000), prompt=prompt)

    def take_pending(self) -> list[bytes]:
        """The frames gathered towards the next hand-over (now not handed over by it)."""
        with self._gather_lock:
            frames, self._gathered = self._gathered, []
            self._gathered_blocks = 0
        return frames

    def _hand_over(self, frames: list[bytes]) -> None:
        assert self._on_frames is not None
        with self._gather_lock:
            self._gathered += frames
            self._gathered_blocks += 1
            if self._gathered_blocks < self.handover_blocks and not _loud(
                frames, self.handover_level_dbfs
            ):
                return
            batch, self._gathered = self._gathered, []
            self._gathered_blocks = 0
        self.handovers += 1
        self._on_frames(batch)  # one hand-over (one loop wake-up) per batch

    def _content_problem(self) -> str | None:
        since = self._silent_since_s
        if not self._silence_timeout_s or since is None:
            return None
        silent_s = time.monotonic() - since
        if silent_s <= self._silence_timeout_s:
            return None
        return (
            f"delivers only digital silence for {silent_s:.1f} s "
            "(unplugged, or the sound server moved the stream to a dummy source?)"
        )

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: Any, status: int
    ) -> tuple[bytes | None, int]:
        self._last_callback_s = time.monotonic()
        self.callbacks += 1
        if status & _PA_INPUT_OVERFLOW:
            self.xruns += 1
        try:
            pcm = in_data or b""
            # Exact zeros, not quiet: a live microphone always has some noise.
            if pcm.strip(b"\x00"):
                self._silent_since_s = None
            elif self._silent_since_s is None:
                self._silent_since_s = self._last_callback_s
            if self.channels > 1:
                samples = np.frombuffer(pcm, dtype=np.int16).reshape(-1, self.channels)
                pcm = samples.mean(axis=1).astype(np.int16).tobytes()
            frames = list(self._slicer.push(self._resampler.process(pcm)))
            self.frames_delivered += len(frames)
            if self._on_frames is not None:
                if frames:
                    self._hand_over(frames)
            else:
                assert self._on_frame is not None
                for frame in frames:
                    self._on_frame(frame)
        except Exception:
            self._note_callback_error()
        return None, _PA_CONTINUE

    @property
    def input_latency_ms(self) -> float:
        stream = self._stream
        return float(stream.get_input_latency()) * 1000 if stream is not None else 0.0


def _loud(frames: list[bytes], level_dbfs: float) -> bool:
    """Whether any of ``frames`` (PCM16) has an RMS level of ``level_dbfs`` or more."""
    if level_dbfs == -math.inf:
        return True
    return first_frame_at_or_above(frames, level_dbfs) is not None


class PyAudioSink(PortAudioStream):
    """The speaker, fed from a :class:`PlaybackBuffer` of mono int16 at ``source_rate_hz``.

    Opens the output at a rate the device takes (``playback_rate_hz``, or negotiated from
    :data:`~kiosk.audio.devices.PLAYBACK_RATES_HZ`), and on every PortAudio callback reads
    the buffer, resamples, applies ``volume`` and duplicates to the device's channels. The
    buffer counts what it hands over as played; the audio still in the resampler and the
    device (``output_latency_ms``) is not yet audible. After ``buffer.flush()`` the sink
    drops its own resampler tail too, so barge-in silences within one callback.

    With ``idle_pause_s`` > 0 the stream stops after the buffer has been empty that long
    (no silence rendered, no wake-ups while nothing plays) and starts again as soon as
    something is written to the buffer.

    Device loss and lifecycle as :class:`PyAudioSource`.
    """

    _kind: DeviceKind = "output"

    def __init__(
        self,
        device_spec: str,
        buffer: PlaybackBuffer,
        *,
        source_rate_hz: int = 24000,
        volume: float = 1.0,
        playback_rate_hz: int = 0,
        on_error: ErrorCallback | None = None,
        block_ms: int = 20,
        stall_timeout_s: float = 2.0,
        start_timeout_s: float = 5.0,
        idle_pause_s: float = 0.0,
        pyaudio_factory: Callable[[], PortAudioHost] = open_pyaudio,
    ) -> None:
        if source_rate_hz != buffer.rate_hz:
            raise ValueError(
                f"source_rate_hz {source_rate_hz} differs from the buffer's {buffer.rate_hz}"
            )
        if not 0.0 <= volume <= 4.0:
            raise ValueError(f"volume must be between 0 and 4, got {volume}")
        super().__init__(
            device_spec,
            preferred_rates_hz=(
                source_rate_hz,
                *(r for r in PLAYBACK_RATES_HZ if r != source_rate_hz),
            ),
            fixed_rate_hz=playback_rate_hz,
            block_ms=block_ms,
            on_error=on_error,
            stall_timeout_s=stall_timeout_s,
            start_timeout_s=start_timeout_s,
            pyaudio_factory=pyaudio_factory,
        )
        self.buffer = buffer
        self.source_rate_hz = source_rate_hz
        self.volume = volume
        self._resampler = Resampler(source_rate_hz, source_rate_hz)
        self._pending = bytearray()  # resampled, not yet handed to PortAudio
        self._seen_flushes = buffer.flush_count
        # Device-rate samples taken from the buffer but not yet handed to PortAudio; written
        # by the callback, read by anyone (one float assignment: no lock needed).
        self._held_samples = 0.0
        self._idle_pause_s = idle_pause_s
        self._idle_since_s: float | None = None  # callback time the buffer ran dry
        if idle_pause_s > 0:
            buffer.add_write_listener(self.wake)
        buffer.add_halt_listener(self._drop_device_queue)

    def _prepare(self, rate_hz: int, channels: int) -> None:
        self._resampler = Resampler(self.source_rate_hz, rate_hz)
        self._pending.clear()
        self._seen_flushes = self.buffer.flush_count
        self._held_samples = 0.0

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: Any, status: int
    ) -> tuple[bytes | None, int]:
        self._last_callback_s = time.monotonic()
        self.callbacks += 1
        if status & _PA_OUTPUT_UNDERFLOW:
            self.xruns += 1
        try:
            return self._render(frame_count), _PA_CONTINUE
        except Exception:
            self._note_callback_error()
            return bytes(frame_count * 2 * max(1, self.channels)), _PA_CONTINUE

    def _render(self, frame_count: int) -> bytes:
        flushes = self.buffer.flush_count
        if flushes != self._seen_flushes:
            self._seen_flushes = flushes
            self._pending.clear()
            self._resampler.reset()
        need = frame_count * 2
        ratio = self.source_rate_hz / self.device_rate_hz
        while len(self._pending) < need:
            missing_samples = (need - len(self._pending)) // 2
            self._pending += self._resampler.process(
                self.buffer.read(max(1, math.ceil(missing_samples * ratio)))
            )
        pcm = bytes(self._pending[:need])
        del self._pending[:need]
        self._held_samples = len(self._pending) / 2 + self._resampler.delay_samples()
        if self._idle_pause_s > 0:
            dry = not self._pending and self.buffer.is_idle
            if not dry:
                self._idle_since_s = None
            elif self._idle_since_s is None:
                self._idle_since_s = self._last_callback_s
        if self.volume != 1.0 or self.channels > 1:
            samples = np.frombuffer(pcm, dtype=np.int16)
            if self.volume != 1.0:
                scaled = np.rint(samples.astype(np.float32) * self.volume)
                samples = np.clip(scaled, -32768, 32767).astype(np.int16)
            if self.channels > 1:
                samples = np.repeat(samples, self.channels)
            pcm = samples.tobytes()
        return pcm

    def _drop_device_queue(self, resumes: bool) -> None:
        """The answer paused or was flushed: what the sound server still holds for the
        speaker (~100 ms on PulseAudio), this sink's resampled remainder included, is dropped
        now, so the visitor hears the kiosk stop at once; on a pause it goes back to the
        buffer (:meth:`PlaybackBuffer.rewind`) to be played on resume. A PortAudio stream
        cannot drop its queue without stopping: it plays that out as before."""
        drop = getattr(self._stream, "drop_queued", None)
        if drop is None:
            return

        def dropped(queued_s: float) -> None:  # under the server's lock: no callback runs
            device_samples = self._held_samples + queued_s * self.device_rate_hz
            self._pending.clear()
            self._resampler.reset()
            self._held_samples = 0.0
            if resumes and self.device_rate_hz:
                self.buffer.rewind(round(device_samples * self.source_rate_hz / self.device_rate_hz))
            if self.device_rate_hz:
                self.buffer.dropped(device_samples / self.device_rate_hz)

        drop(dropped)

    def _wants_pause(self) -> bool:
        since = self._idle_since_s
        return (
            since is not None
            and self.buffer.is_idle
            and time.monotonic() - since >= self._idle_pause_s
        )

    def _on_resume(self) -> None:
        self._idle_since_s = None

    @property
    def output_latency_ms(self) -> float:
        stream = self._stream
        return float(stream.get_output_latency()) * 1000 if stream is not None else 0.0

    @property
    def unplayed_ms(self) -> float:
        """Audio the buffer counts as played that is not audible yet: held in the resampler
        and the sink, plus the device's output latency. For the item playing now, what the
        listener heard is about ``buffer.played_ms(item) - sink.unplayed_ms``."""
        if self._stream is None or not self.device_rate_hz:
            return 0.0
        return self._held_samples * 1000 / self.device_rate_hz + self.output_latency_ms


def reopen_streams(*streams: PyAudioSource | PyAudioSink) -> None:
    """Close every stream, then start them all: a full PortAudio re-scan in between; then
    unload the ALSA plugins that scan loaded and no stream uses (:func:`release_alsa_config`).

    Raises:
        DeviceError: from the first stream that cannot open (the others stay as they are:
            call again later; closed streams make it a no-op to close them again).
    """
    for stream in streams:
        stream.close()
    for stream in streams:
        stream.start()
    if release_alsa_config():
        log.debug("= ALSA configuration freed, probed plugins unloaded")

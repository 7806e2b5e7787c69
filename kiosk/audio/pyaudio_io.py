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

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import numpy as np

from kiosk.audio.devices import (
    CAPTURE_RATES_HZ,
    PA_INT16,
    PLAYBACK_RATES_HZ,
    DeviceInfo,
    DeviceKind,
    PortAudioHost,
    find_device,
    is_supported,
    negotiate_channels,
    negotiate_rate,
    open_pyaudio,
)
from kiosk.audio.frames import FrameSlicer
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.resample import Resampler
from kiosk.errors import DeviceError

log = logging.getLogger(__name__)

# pyaudio constants, as literals so the module imports without pyaudio.
_PA_CONTINUE = 0
_PA_INPUT_OVERFLOW = 0x2
_PA_OUTPUT_UNDERFLOW = 0x4

ErrorCallback = Callable[[BaseException], None]


class _PortAudioStream:
    """What source and sink share: open at a negotiated rate, watchdog, close, reopen.

    Subclasses provide ``_kind``, the preferred rates, the stream arguments and the callback.
    """

    _kind: DeviceKind

    def __init__(
        self,
        device_spec: str,
        *,
        preferred_rates_hz: Sequence[int],
        fixed_rate_hz: int,
        block_ms: int,
        on_error: ErrorCallback | None,
        stall_timeout_s: float,
        start_timeout_s: float,
        pyaudio_factory: Callable[[], PortAudioHost],
    ) -> None:
        if fixed_rate_hz < 0:
            raise ValueError(f"rate must be 0 (negotiate) or positive, got {fixed_rate_hz}")
        self.device_spec = device_spec
        self._preferred_rates_hz = tuple(preferred_rates_hz)
        self._fixed_rate_hz = fixed_rate_hz
        self._block_ms = block_ms
        self._on_error = on_error
        self._stall_timeout_s = stall_timeout_s
        self._start_timeout_s = max(start_timeout_s, stall_timeout_s)
        self._pyaudio_factory = pyaudio_factory
        self._pa: PortAudioHost | None = None
        self._stream: Any = None
        self._lifecycle = threading.Lock()  # start/close/reopen vs each other
        self._failed = threading.Event()  # on_error already called for this stream
        self._stop_watchdog = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._last_callback_s = 0.0
        self.callbacks = 0  # PortAudio callbacks since the stream opened
        self._callback_errors = 0
        self.device: DeviceInfo | None = None
        self.device_rate_hz = 0
        self.channels = 0
        self.xruns = 0  # input overflows / output underflows reported by PortAudio

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._stream is not None and not self._failed.is_set()

    def start(self) -> None:
        """Open the device and start streaming.

        Raises:
            DeviceError: no such device, no acceptable format, or PortAudio refused to open.
        """
        with self._lifecycle:
            if self._stream is not None:
                return
            self._open()

    def close(self) -> None:
        """Stop and release the stream and PortAudio. Idempotent; safe from any thread."""
        with self._lifecycle:
            self._close()

    def reopen(self) -> None:
        """Close, re-scan devices and open again (after on_error: device lost, replugged).

        PortAudio re-scans devices only when no PyAudio instance is left in the process: if
        one USB device serves both mic and speaker, use :func:`reopen_streams` so both
        adapters close before either opens.

        Raises:
            DeviceError: the device is still missing or refuses to open.
        """
        with self._lifecycle:
            self._close()
            self._open()
        log.info("%s device reopened: %s", self._kind, self._describe())

    def _open(self) -> None:
        pa = self._pyaudio_factory()
        try:
            device = find_device(self.device_spec, self._kind, pa)
            rate_hz = self._choose_rate(device, pa)
            channels = negotiate_channels(device, self._kind, rate_hz, pa)
            # Set before the stream starts: the first callback may come before open returns.
            self.device, self.device_rate_hz, self.channels = device, rate_hz, channels
            self._prepare(rate_hz, channels)
            frames_per_buffer = max(1, rate_hz * self._block_ms // 1000)
            self._failed.clear()
            self.callbacks = 0
            self._last_callback_s = time.monotonic()
            stream = self._open_stream(pa, device, rate_hz, channels, frames_per_buffer)
        except BaseException:
            pa.terminate()
            raise
        self._pa, self._stream = pa, stream
        self._stop_watchdog.clear()
        self._watchdog = threading.Thread(
            target=self._watch, name=f"kiosk-{self._kind}-watchdog", daemon=True
        )
        self._watchdog.start()
        log.info("%s device open: %s", self._kind, self._describe())

    def _choose_rate(self, device: DeviceInfo, pa: PortAudioHost) -> int:
        if not self._fixed_rate_hz:
            return negotiate_rate(device, self._kind, self._preferred_rates_hz, pa)
        if not any(is_supported(device, self._kind, self._fixed_rate_hz, ch, pa) for ch in (1, 2)):
            raise DeviceError(
                f"{self._kind} device {device.describe()} does not take "
                f"{self._fixed_rate_hz} Hz int16; set the rate to 0 to negotiate"
            )
        return self._fixed_rate_hz

    def _open_stream(
        self, pa: PortAudioHost, device: DeviceInfo, rate_hz: int, channels: int, frames: int
    ) -> Any:
        direction = {"input": True} if self._kind == "input" else {"output": True}
        index_key = f"{self._kind}_device_index"
        try:
            stream = pa.open(
                format=PA_INT16,
                channels=channels,
                rate=rate_hz,
                frames_per_buffer=frames,
                stream_callback=self._callback,
                start=False,
                **direction,
                **{index_key: device.index},
            )
            stream.start_stream()
        except (OSError, ValueError) as exc:
            raise DeviceError(
                f"cannot open {self._kind} device {device.describe()} at {rate_hz} Hz "
                f"x {channels} ch: {_portaudio_message(exc)}"
            ) from exc
        return stream

    def _close(self) -> None:
        self._stop_watchdog.set()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=2.0)
        stream, self._stream = self._stream, None
        pa, self._pa = self._pa, None
        if stream is not None:
            try:
                # Pa_CloseStream aborts an active stream; stop_stream() would wait for the
                # buffers to drain and can hang on a device that has gone away.
                stream.close()
            except (OSError, ValueError) as exc:
                log.debug("= %s stream close: %s", self._kind, _portaudio_message(exc))
            log.info("%s device closed", self._kind)
        if pa is not None:
            pa.terminate()

    def _describe(self) -> str:
        device = self.device.describe() if self.device else "?"
        return f"{device} at {self.device_rate_hz} Hz x {self.channels} ch"

    # -- failure detection ---------------------------------------------------------------

    def _watch(self) -> None:
        interval_s = min(0.25, self._stall_timeout_s / 4)
        while not self._stop_watchdog.wait(interval_s):
            stream = self._stream
            if stream is None or self._failed.is_set():
                return
            try:
                active = bool(stream.is_active())
            except (OSError, ValueError):
                active = False
            silent_s = time.monotonic() - self._last_callback_s
            # The first buffer may take a while (a sound server resuming a suspended sink).
            limit_s = self._stall_timeout_s if self.callbacks else self._start_timeout_s
            if not active:
                self._fail(DeviceError(f"{self._kind} device stopped: {self._describe()}"))
                return
            if silent_s > limit_s:
                self._fail(
                    DeviceError(
                        f"{self._kind} device stalled: no audio for {silent_s:.1f} s "
                        f"({self._describe()})"
                    )
                )
                return
            problem = self._content_problem()
            if problem is not None:
                self._fail(DeviceError(f"{self._kind} device {problem} ({self._describe()})"))
                return

    def _fail(self, exc: BaseException) -> None:
        """Report a dead stream once; the owner decides whether to :meth:`reopen`."""
        if self._failed.is_set():
            return
        self._failed.set()
        log.error("%s", exc)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                log.exception("%s on_error callback raised", self._kind)

    def _note_callback_error(self) -> None:
        # A bug in a callback must not kill PortAudio's thread (pyaudio would abort the
        # stream); log the first with its traceback, then only count.
        self._callback_errors += 1
        if self._callback_errors == 1:
            log.exception("%s callback raised; later errors are only counted", self._kind)

    # -- subclass hooks --------------------------------------------------------------------

    def _content_problem(self) -> str | None:
        """A reason the audio flowing is useless although the stream runs, or None."""
        return None

    def _prepare(self, rate_hz: int, channels: int) -> None:
        raise NotImplementedError

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: Any, status: int
    ) -> tuple[bytes | None, int]:
        raise NotImplementedError

    # -- context managers ------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        # Opening ALSA/PulseAudio takes tens of ms: keep it off the event loop.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)


class PyAudioSource(_PortAudioStream):
    """The microphone as exact ``frame_ms`` frames of mono int16 at ``rate_hz``.

    Opens the input at a rate the device takes (``capture_rate_hz``, or negotiated from
    :data:`~kiosk.audio.devices.CAPTURE_RATES_HZ`), mixes to mono, resamples to ``rate_hz``
    and calls ``on_frame(frame)`` on PortAudio's thread for every whole frame. ``on_frame``
    must not block (wrap it in ``loop.call_soon_threadsafe``).

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
        on_frame: Callable[[bytes], None],
        on_error: ErrorCallback | None = None,
        capture_rate_hz: int = 0,
        stall_timeout_s: float = 2.0,
        start_timeout_s: float = 5.0,
        silence_timeout_s: float = 0.0,
        pyaudio_factory: Callable[[], PortAudioHost] = open_pyaudio,
    ) -> None:
        super().__init__(
            device_spec,
            preferred_rates_hz=(rate_hz, *(r for r in CAPTURE_RATES_HZ if r != rate_hz)),
            fixed_rate_hz=capture_rate_hz,
            block_ms=frame_ms,
            on_error=on_error,
            stall_timeout_s=stall_timeout_s,
            start_timeout_s=start_timeout_s,
            pyaudio_factory=pyaudio_factory,
        )
        self.rate_hz = rate_hz
        self.frame_ms = frame_ms
        self._on_frame = on_frame
        self._silence_timeout_s = silence_timeout_s
        self._silent_since_s: float | None = None
        self._slicer = FrameSlicer(rate_hz, frame_ms)  # validates rate/frame_ms early
        self._resampler = Resampler(rate_hz, rate_hz)
        self.frames_delivered = 0

    def _prepare(self, rate_hz: int, channels: int) -> None:
        self._resampler = Resampler(rate_hz, self.rate_hz)
        self._slicer.clear()
        self._silent_since_s = None

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
            for frame in self._slicer.push(self._resampler.process(pcm)):
                self.frames_delivered += 1
                self._on_frame(frame)
        except Exception:
            self._note_callback_error()
        return None, _PA_CONTINUE

    @property
    def input_latency_ms(self) -> float:
        stream = self._stream
        return float(stream.get_input_latency()) * 1000 if stream is not None else 0.0


class PyAudioSink(_PortAudioStream):
    """The speaker, fed from a :class:`PlaybackBuffer` of mono int16 at ``source_rate_hz``.

    Opens the output at a rate the device takes (``playback_rate_hz``, or negotiated from
    :data:`~kiosk.audio.devices.PLAYBACK_RATES_HZ`), and on every PortAudio callback reads
    the buffer, resamples, applies ``volume`` and duplicates to the device's channels. The
    buffer counts what it hands over as played; the audio still in the resampler and the
    device (``output_latency_ms``) is not yet audible. After ``buffer.flush()`` the sink
    drops its own resampler tail too, so barge-in silences within one callback.

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

    def _prepare(self, rate_hz: int, channels: int) -> None:
        self._resampler = Resampler(self.source_rate_hz, rate_hz)
        self._pending.clear()
        self._seen_flushes = self.buffer.flush_count

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
        if self.volume != 1.0 or self.channels > 1:
            samples = np.frombuffer(pcm, dtype=np.int16)
            if self.volume != 1.0:
                scaled = np.rint(samples.astype(np.float32) * self.volume)
                samples = np.clip(scaled, -32768, 32767).astype(np.int16)
            if self.channels > 1:
                samples = np.repeat(samples, self.channels)
            pcm = samples.tobytes()
        return pcm

    @property
    def output_latency_ms(self) -> float:
        stream = self._stream
        return float(stream.get_output_latency()) * 1000 if stream is not None else 0.0


def reopen_streams(*streams: PyAudioSource | PyAudioSink) -> None:
    """Close every stream, then start them all: a full PortAudio re-scan in between.

    Raises:
        DeviceError: from the first stream that cannot open (the others stay as they are:
            call again later; closed streams make it a no-op to close them again).
    """
    for stream in streams:
        stream.close()
    for stream in streams:
        stream.start()


def _portaudio_message(exc: BaseException) -> str:
    # pyaudio raises OSError(message, code) with the message first: keep it one line.
    if isinstance(exc, OSError) and exc.args:
        return " ".join(str(a) for a in exc.args)
    return str(exc) or type(exc).__name__

"""One PortAudio stream's life: open at a negotiated rate, notice it died, close, reopen.

Owns what :class:`~kiosk.audio.pyaudio_io.PyAudioSource` and
:class:`~kiosk.audio.pyaudio_io.PyAudioSink` share: device lookup and format negotiation
at open, the watchdog thread that reports a stopped or stalled stream once through
``on_error``, idempotent close, and the sync/async context managers. What flows through the
callback (frames in, speaker blocks out) is the subclasses' business.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from kiosk.audio.devices import (
    PA_INT16,
    DeviceInfo,
    DeviceKind,
    PortAudioHost,
    find_device,
    is_supported,
    negotiate_channels,
    negotiate_rate,
)
from kiosk.errors import DeviceError

log = logging.getLogger(__name__)

ErrorCallback = Callable[[BaseException], None]


class PortAudioStream:
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
        self._poke = threading.Event()  # wakes the watchdog early (stop, or audio to play)
        self._watchdog: threading.Thread | None = None
        self._last_callback_s = 0.0
        self._paused = False  # stopped on purpose while idle (see _wants_pause)
        self._callbacks_at_start = 0
        self.pauses = 0
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
            self.callbacks = self._callbacks_at_start = 0
            self._paused = False
            self._last_callback_s = time.monotonic()
            stream = self._open_stream(pa, device, rate_hz, channels, frames_per_buffer)
        except BaseException:
            pa.terminate()
            raise
        self._pa, self._stream = pa, stream
        self._stop_watchdog.clear()
        self._poke.clear()
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
        self._poke.set()
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
        interval_s = min(0.5, self._stall_timeout_s / 4)
        while True:
            # Paused: nothing to watch; sleep until poked (audio written, or close).
            self._poke.wait(None if self._paused else interval_s)
            self._poke.clear()
            stream = self._stream
            if self._stop_watchdog.is_set() or stream is None or self._failed.is_set():
                return
            if self._paused:
                if not self._wants_pause():
                    self._resume(stream)
                continue
            try:
                active = bool(stream.is_active())
            except (OSError, ValueError):
                active = False
            silent_s = time.monotonic() - self._last_callback_s
            # The first buffer may take a while (a sound server resuming a suspended sink).
            first = self.callbacks == self._callbacks_at_start
            limit_s = self._start_timeout_s if first else self._stall_timeout_s
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
            if self._wants_pause():
                self._pause(stream)

    def _pause(self, stream: Any) -> None:
        """Stop the stream while there is nothing to do (on the watchdog thread)."""
        try:
            _abort(stream)
        except (OSError, ValueError) as exc:
            log.debug("%s stream pause: %s", self._kind, _portaudio_message(exc))
            return
        self._paused = True
        self.pauses += 1
        log.debug("%s stream paused (nothing to play)", self._kind)
        self._poke.set()  # audio may have arrived meanwhile: look again at once

    def _resume(self, stream: Any) -> None:
        self._paused = False
        self._callbacks_at_start = self.callbacks
        self._last_callback_s = time.monotonic()
        self._on_resume()
        log.debug("%s stream resumed", self._kind)
        try:
            stream.start_stream()
        except (OSError, ValueError) as exc:
            self._fail(
                DeviceError(f"{self._kind} device cannot restart: {_portaudio_message(exc)}")
            )

    def wake(self) -> None:
        """Ask a paused stream to run again (cheap, from any thread)."""
        if self._paused:
            self._poke.set()

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

    def _wants_pause(self) -> bool:
        """True while the stream may stop (nothing to play); :meth:`wake` restarts it."""
        return False

    def _on_resume(self) -> None:
        """Called on the watchdog thread just before a paused stream starts again."""

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


def _abort(stream: Any) -> None:
    """Pa_AbortStream: stop at once (what is queued is silence). pyaudio exposes only
    Pa_StopStream, which waits for the buffers to drain and can hang on a device that has
    gone away; its C module has abort_stream, and its Stream must then be marked stopped
    or start_stream() would do nothing."""
    abort = getattr(stream, "abort_stream", None)
    if abort is not None:
        abort()
        return
    try:
        import pyaudio

        pyaudio.pa.abort_stream(stream._stream)
        stream._is_running = False
    except (ImportError, AttributeError):
        stream.stop_stream()


def _portaudio_message(exc: BaseException) -> str:
    # pyaudio raises OSError(message, code) with the message first: keep it one line.
    if isinstance(exc, OSError) and exc.args:
        return " ".join(str(a) for a in exc.args)
    return str(exc) or type(exc).__name__

"""PulseAudio streams shaped like PortAudio's, so the same adapters run on either.

:class:`PulseStream` has the slice of ``pyaudio.Stream`` kiosk uses, on a
:class:`~kiosk.audio.libpulse.PulseConnection`; :class:`kiosk.audio.pulse_host.PulseHost`
opens them. :class:`~kiosk.audio.pyaudio_io.PyAudioSource` and
:class:`~kiosk.audio.pyaudio_io.PyAudioSink` keep every behaviour they have on PortAudio
(fixed-size blocks through the same callback, batched hand-over, watchdog, idle pause,
latency for truncation and echo stamping), without PortAudio's ALSA device scan.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk.audio.libpulse import (
    NO_VALUE,
    SAMPLE_S16LE,
    SEEK_RELATIVE,
    STREAM_ADJUST_LATENCY,
    STREAM_AUTO_TIMING_UPDATE,
    STREAM_CREATING,
    STREAM_INTERPOLATE_TIMING,
    STREAM_NOTIFY_CB,
    STREAM_READY,
    STREAM_REQUEST_CB,
    STREAM_START_CORKED,
    BufferAttr,
    PulseConnection,
    SampleSpec,
    unref_operation,
)
from kiosk.audio.pulse_latency import SteadyPlaybackLatency
from kiosk.errors import DeviceError

log = logging.getLogger(__name__)

# The playback buffer the server keeps filled, in callback blocks: 5 x 20 ms = 100 ms.
PLAYBACK_BLOCKS = 5
_INPUT_OVERFLOW = 0x2  # paInputOverflow, as the PortAudio callback's status
_OUTPUT_UNDERFLOW = 0x4  # paOutputUnderflow
# A prompt recording (set_block_frames(prompt=True): a turn or answer in progress) wakes when
# its next block is due, and when it is not whole yet looks every PROMPT_POLL_S (for at most
# PROMPT_WINDOW_S) until it is; each time it was whole on waking, the next wake comes
# PROMPT_CREEP_S earlier, so the reader keeps finding the moment the block comes. A frame then
# waits ~1 ms for the reader (0.6-0.8 ms mean, capture-block-dev11-2026-12-04-2) instead of
# its phase against the server's pushes (a fixed pace: 14.6 ms mean of 20 on a null sink), for
# ~1.2 takes per block (ad hoc).
PROMPT_POLL_S = 0.001
PROMPT_CREEP_S = 0.0005
PROMPT_WINDOW_S = 0.006

StreamCallback = Callable[[bytes | None, int, Any, int], tuple[bytes | None, int]]


class PulseStream:
    """One record or playback stream: calls ``callback`` as PortAudio would, with blocks of
    exactly ``frames_per_buffer`` frames in (record; :meth:`set_block_frames` changes the
    size while it runs, which PortAudio cannot), or as many frames as the server asks for out
    (playback, on libpulse's thread).

    A recording is read by a thread of its own every block (``kiosk-input-pulse``), not from
    libpulse's read callback: the server pushes audio whenever its source renders (a null
    sink's monitor: ~100 pushes a second), and a Python callback per push cost more CPU than
    PortAudio's whole path. On a polled connection that thread is the only one: each block
    it dispatches what the server sent meanwhile (queued in the socket), then takes it; on a
    threaded one libpulse's thread queues the pushes as they come."""

    def __init__(
        self,
        connection: PulseConnection,
        kind: str,
        device: str | None,
        *,
        rate_hz: int,
        channels: int,
        frames_per_buffer: int,
        callback: StreamCallback,
    ) -> None:
        self._connection = connection
        self._kind = kind
        self._callback = callback
        self._frame_bytes = 2 * channels
        self._block_bytes = frames_per_buffer * self._frame_bytes
        self._prompt = False  # see set_block_frames
        self._rate_hz = rate_hz
        self._pending = bytearray()  # recorded, less than one block
        self._status = 0  # over/underflow since the last callback
        self._failed = False  # the callback asked to stop, or raised
        self._corked = True
        self.steady_latency = SteadyPlaybackLatency()  # playback: libpulse's estimate creeps
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        # libpulse keeps these function pointers: they live as long as the stream.
        self._on_data = STREAM_REQUEST_CB(self._write)
        self._on_xrun = STREAM_NOTIFY_CB(self._xrun)
        self._peeked, self._peeked_size = ctypes.c_void_p(), ctypes.c_size_t()
        self._peek_args = (ctypes.byref(self._peeked), ctypes.byref(self._peeked_size))
        lib = connection.lib
        spec = SampleSpec(SAMPLE_S16LE, rate_hz, channels)
        # Timing updates for the latency. ADJUST_LATENCY: playback's tlength is the whole
        # output delay; a recording asks the source for a latency of about one fragment.
        # Without it PulseAudio asks the source for none, and a timer-scheduled ALSA source
        # may then post (and the server push) seconds of audio at a time.
        flags = (
            STREAM_START_CORKED
            | STREAM_INTERPOLATE_TIMING
            | STREAM_AUTO_TIMING_UPDATE
            | STREAM_ADJUST_LATENCY
        )
        with connection.locked():
            self._stream = lib.pa_stream_new(
                connection.context, f"kiosk {kind}".encode(), ctypes.byref(spec), None
            )
            if not self._stream:
                raise OSError(f"cannot create a stream: {connection.error()}")
            target = device.encode() if device else None
            if kind == "input":
                attr = BufferAttr(NO_VALUE, NO_VALUE, NO_VALUE, NO_VALUE, self._block_bytes)
                lib.pa_stream_set_overflow_callback(self._stream, self._on_xrun, None)
                result = lib.pa_stream_connect_record(self._stream, target, attr, flags)
            else:
                tlength = self._block_bytes * PLAYBACK_BLOCKS
                attr = BufferAttr(NO_VALUE, tlength, NO_VALUE, self._block_bytes, NO_VALUE)
                lib.pa_stream_set_write_callback(self._stream, self._on_data, None)
                lib.pa_stream_set_underflow_callback(self._stream, self._on_xrun, None)
                result = lib.pa_stream_connect_playback(
                    self._stream, target, attr, flags, None, None
                )
        try:
            if result < 0:
                raise OSError(f"cannot connect the stream: {connection.error()}")
            connection.wait(self._settled, 5.0, f"the {kind} stream to connect")
            if not self.is_active():
                raise OSError(f"the server refused the stream: {connection.error()}")
        except (OSError, DeviceError) as exc:
            self.close()
            raise OSError(str(exc)) from exc

    def _settled(self) -> bool:
        return bool(self._connection.lib.pa_stream_get_state(self._stream) != STREAM_CREATING)

    # -- the recording's reader thread ---------------------------------------------------

    def _read_loop(self, stop: threading.Event) -> None:
        """Every block: take what the server sent, call back once per whole block. Sleeps
        rather than ``stop.wait``: an Event's timed wait runs a Condition's Python each
        block; closing waits for the current sleep instead (at most one block).

        Prompt (:meth:`set_block_frames`): the reader wakes when the next block is due and,
        if it is not whole yet, looks again every ``PROMPT_POLL_S`` until it is, so a block is
        handed over within ~1 ms of its last sample reaching us (:meth:`_wait_for_block`)."""
        pending = self._pending
        next_s = time.monotonic()
        due_s: float | None = None  # prompt: when the next whole block should be here
        while True:
            block = self._block_bytes  # set_block_frames may change it between wake-ups
            frames = block // self._frame_bytes
            block_s = frames / self._rate_hz
            prompt = self._prompt
            if prompt and due_s is not None:
                next_s = due_s
            elif due_s is not None:  # no longer prompt: the plain pace from now
                next_s, due_s = time.monotonic() + block_s, None
            else:
                next_s += block_s
            delay_s = next_s - time.monotonic()
            if delay_s > 0:
                time.sleep(delay_s)
            elif delay_s < -1.0:
                next_s = time.monotonic()  # after a long stall: no burst of catch-up reads
            if stop.is_set() or self._failed:
                return
            try:
                self._take_recorded()
                if prompt:
                    due_s = self._wait_for_block(block, next_s, stop)
            except OSError:
                return  # closed under us
            while len(pending) >= block and not self._failed and not stop.is_set():
                pcm = bytes(pending[:block])
                del pending[:block]
                status, self._status = self._status, 0
                self._call(pcm, frames, status)

    def _wait_for_block(self, block: int, woke_s: float, stop: threading.Event) -> float:
        """Prompt reading, having taken what came by ``woke_s`` (when the reader meant to
        wake): take what comes every ``PROMPT_POLL_S`` until a whole block is pending (for at
        most ``PROMPT_WINDOW_S``); when the next block is due. The server pushes at its own
        pace, so blocks come a block apart whatever part of the next one is pending already
        (a null sink's 10 ms pushes complete a 20 ms block mid-push). Seen coming within a
        poll: a block later. Whole on waking: the reader may be late by up to a poll, so
        ``PROMPT_CREEP_S`` before that, until it sees a block come again."""
        pending, polls = self._pending, 0
        give_up_s = time.monotonic() + PROMPT_WINDOW_S
        while len(pending) < block and time.monotonic() < give_up_s and not stop.is_set():
            time.sleep(PROMPT_POLL_S)
            self._take_recorded()
            polls += 1
        now = time.monotonic()
        block_s = block / (self._frame_bytes * self._rate_hz)
        if len(pending) < block:  # late (or nothing comes): when the rest should be here
            return now + (block - len(pending)) / block * block_s
        if polls:
            return now + block_s
        return max(woke_s, now - PROMPT_WINDOW_S) + block_s - PROMPT_CREEP_S

    def set_block_frames(self, frames: int, *, prompt: bool = False) -> None:
        """A recording: call back with blocks of ``frames`` from the reader's next wake-up
        on, and ask the server for its audio at least that often (the stream's fragment size,
        which under ADJUST_LATENCY sets a device source's latency: a 60 ms fragment lets an
        ALSA source post 60 ms at a time, whatever the reader's pace). ``prompt``: hand each
        block over as soon as it is whole (a few more wake-ups per block, see
        :meth:`_read_loop`) rather than at the reader's own pace. Playback: nothing."""
        block = max(1, frames) * self._frame_bytes
        if self._kind != "input" or not self._stream:
            return
        self._prompt = prompt
        if block == self._block_bytes:
            return
        self._block_bytes = block
        attr = BufferAttr(NO_VALUE, NO_VALUE, NO_VALUE, NO_VALUE, block)
        try:
            with self._connection.locked() as lib:
                if self._stream:
                    op = lib.pa_stream_set_buffer_attr(self._stream, ctypes.byref(attr), None, None)
                    unref_operation(lib, op)
        except OSError:  # the connection closed: the stream is going away anyway
            pass

    def _take_recorded(self) -> None:
        """Everything the server has sent so far, into ``_pending``."""
        data, size = self._peeked, self._peeked_size
        with self._connection.locked() as lib:
            self._connection.pump()
            stream = self._stream
            peek, drop = lib.pa_stream_peek, lib.pa_stream_drop
            while stream and peek(stream, *self._peek_args) == 0:
                if not size.value:
                    break  # nothing left to read
                if data.value:
                    self._pending += ctypes.string_at(data.value, size.value)
                else:  # a hole (data lost): silence keeps the pace
                    self._pending += bytes(size.value)
                drop(stream)

    def _stop_reader(self) -> None:
        self._stop_reading.set()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=2.0)

    # -- on libpulse's thread (the main loop's lock held) -------------------------------

    def _write(self, stream: Any, nbytes: int, userdata: Any) -> None:
        self._connection.keep_thread_state()
        frames = nbytes // self._frame_bytes
        if frames <= 0 or self._failed:
            return
        status, self._status = self._status, 0
        self.steady_latency.request(nbytes, self._block_bytes * PLAYBACK_BLOCKS)
        out = self._call(None, frames, status)
        if out:
            self._connection.lib.pa_stream_write(stream, out, len(out), None, 0, SEEK_RELATIVE)

    def _xrun(self, stream: Any, userdata: Any) -> None:
        self._connection.keep_thread_state()
        self._status |= _INPUT_OVERFLOW if self._kind == "input" else _OUTPUT_UNDERFLOW

    def _call(self, pcm: bytes | None, frames: int, status: int) -> bytes | None:
        try:
            out, flag = self._callback(pcm, frames, None, status)
        except Exception:  # as pyaudio: a raising callback ends the stream
            log.exception("%s stream callback raised", self._kind)
            self._failed = True
            return None
        if flag != 0:  # paComplete / paAbort
            self._failed = True
        return out

    # -- the pyaudio.Stream slice kiosk uses (any thread) -------------------------------

    def is_active(self) -> bool:
        """Connected, the server has not killed it, and the callback has not stopped it."""
        if not self._stream or self._failed:
            return False
        try:
            with self._connection.locked() as lib:
                self._connection.pump()  # a polled connection: news of a kill, if any
                return bool(lib.pa_stream_get_state(self._stream) == STREAM_READY)
        except OSError:  # the connection closed
            return False

    def start_stream(self) -> None:
        self._cork(False)
        if self._kind == "input" and self._reader is None:
            self._stop_reading = threading.Event()  # this reader's own
            self._reader = threading.Thread(
                target=self._read_loop,
                args=(self._stop_reading,),
                name="kiosk-input-pulse",
                daemon=True,
            )
            self._reader.start()

    def abort_stream(self) -> None:
        """Stop at once and drop what is queued (Pa_AbortStream): cork, then flush."""
        self._stop_reader()
        self._cork(True)

    def drop_queued(self, then: Callable[[float], None]) -> None:
        """Playback: drop what the server holds and has not played yet (``pa_stream_flush``;
        the server also takes back what its sink rendered ahead, where it can), then call
        ``then(seconds)`` with how much that was, under the main loop's lock: the write
        callback holds it too, so the caller's own state changes with the server's. Does
        nothing on a stream that is not playing."""
        if self._kind != "output" or not self._stream:
            return
        with self._connection.locked() as lib:
            if self._corked or lib.pa_stream_get_state(self._stream) != STREAM_READY:
                return
            queued_s = self._latency_s()
            unref_operation(lib, lib.pa_stream_flush(self._stream, None, None))
            then(queued_s)

    def _cork(self, cork: bool) -> None:
        if not self._stream:
            raise OSError("stream closed")
        with self._connection.locked() as lib:
            if lib.pa_stream_get_state(self._stream) != STREAM_READY:
                raise OSError(f"{self._kind} stream is not running")
            unref_operation(lib, lib.pa_stream_cork(self._stream, int(cork), None, None))
            self.steady_latency.restart()
            if cork:
                unref_operation(lib, lib.pa_stream_flush(self._stream, None, None))
                self._pending.clear()
            self._corked = cork

    def _latency_s(self) -> float:
        """Server-side delay: for a recording, from capture to our read; for playback, from
        our write to the speaker. The buffer's nominal size before the first timing update."""
        if not self._stream:
            return 0.0
        usec, negative = ctypes.c_uint64(), ctypes.c_int()
        try:
            with self._connection.locked() as lib:
                got = lib.pa_stream_get_latency(
                    self._stream, ctypes.byref(usec), ctypes.byref(negative)
                )
                if got == 0:
                    # Negative: a monitor source hands over audio before its sink plays it.
                    got_s = 0.0 if negative.value else usec.value / 1e6
                    return self.steady_latency.latency_s(got_s) if self._kind == "output" else got_s
                attr = lib.pa_stream_get_buffer_attr(self._stream)
                if not attr:
                    return 0.0
                a = attr.contents
                nbytes = a.fragsize if self._kind == "input" else a.tlength
        except OSError:  # the connection closed
            return 0.0
        return float(nbytes) / self._frame_bytes / self._rate_hz if nbytes != NO_VALUE else 0.0

    def get_input_latency(self) -> float:
        return self._latency_s()

    def get_output_latency(self) -> float:
        return self._latency_s()

    def close(self) -> None:
        """Disconnect (what is queued is dropped). Idempotent."""
        self._stop_reader()
        stream, self._stream = self._stream, None
        if not stream or self._connection.closed:
            return  # closed with its connection (at exit): libpulse freed what it could
        with self._connection.locked() as lib:
            lib.pa_stream_set_write_callback(stream, STREAM_REQUEST_CB(), None)
            lib.pa_stream_set_overflow_callback(stream, STREAM_NOTIFY_CB(), None)
            lib.pa_stream_set_underflow_callback(stream, STREAM_NOTIFY_CB(), None)
            lib.pa_stream_disconnect(stream)
            lib.pa_stream_unref(stream)

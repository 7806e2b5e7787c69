"""libpulse (the PulseAudio client library) through ctypes: a connection to the sound server.

Owns loading ``libpulse.so.0``, the C prototypes kiosk uses, and :class:`PulseConnection`
(one context on a main loop: connect with a deadline, list sources and sinks, run a call
under the connection's lock, disconnect). Streams are :mod:`kiosk.audio.pulse_stream`'s job.

Why not PortAudio here: PortAudio reaches PulseAudio through alsa-lib's pulse plugin, and
its device scan opens every PCM the ALSA configuration defines, loading libjack, libasound
and ~8 ALSA plugins (a52 pulls in libavcodec): ~8 MB more RSS for the life of the process
and a ~20 MB start-up peak (bench/results/footprint-2026-12-03.json). libpulse alone maps
~3 MB (it still links libsndfile, libX11 and libdbus). Works with PulseAudio and with
PipeWire's pulse server alike (the same protocol).

Threading: a threaded connection runs libpulse's own main-loop thread, which calls back
with the loop's lock held; every other call into libpulse must hold that lock
(:meth:`PulseConnection.locked`). A callback may call in again: on the loop's thread
:meth:`PulseConnection.locked` does not take the loop's lock again (libpulse aborts if it does).
ctypes releases the GIL around each C call, so a Python thread waiting for the lock never
blocks the callback that holds it. A polled connection (``threaded=False``) has no thread:
whoever holds its lock dispatches what the server sent (:meth:`PulseConnection.pump`), and
callbacks run on that thread. A recording uses one, pumped by its reader every block: the
threaded loop woke ~120 times a second, once per push of the server (a null sink's monitor
posts ~10 ms at a time), to queue data the reader took every 60 ms anyway.
"""

from __future__ import annotations

import atexit
import ctypes
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.errors import DeviceError

c_void_p, c_char_p, c_int, c_uint32, c_size_t = (
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_uint32,
    ctypes.c_size_t,
)

# pa_context_state_t / pa_stream_state_t / pa_operation_state_t
CONTEXT_READY, CONTEXT_FAILED, CONTEXT_TERMINATED = 4, 5, 6
STREAM_CREATING, STREAM_READY, STREAM_FAILED, STREAM_TERMINATED = 1, 2, 3, 4
OPERATION_RUNNING = 0
CONTEXT_NOAUTOSPAWN = 0x1
# pa_stream_flags_t
STREAM_START_CORKED = 0x1
STREAM_INTERPOLATE_TIMING = 0x2
STREAM_AUTO_TIMING_UPDATE = 0x8
STREAM_ADJUST_LATENCY = 0x2000
SAMPLE_S16LE = 3
SEEK_RELATIVE = 0
NO_VALUE = 0xFFFFFFFF  # (uint32_t) -1: "the server's default" in pa_buffer_attr

CONNECT_TIMEOUT_S = 3.0
# Dispatches per pump at most (each handles one poll's worth: a packet or a batch of them).
MAX_DISPATCHES = 64


class SampleSpec(ctypes.Structure):
    _fields_ = [("format", c_int), ("rate", c_uint32), ("channels", ctypes.c_uint8)]


class BufferAttr(ctypes.Structure):
    _fields_ = [
        ("maxlength", c_uint32),
        ("tlength", c_uint32),
        ("prebuf", c_uint32),
        ("minreq", c_uint32),
        ("fragsize", c_uint32),
    ]


class _DeviceInfoHead(ctypes.Structure):
    """The first fields of pa_source_info and pa_sink_info (the same in both): the rest is
    never read, so its layout does not matter."""

    _fields_ = [
        ("name", c_char_p),
        ("index", c_uint32),
        ("description", c_char_p),
        ("sample_spec", SampleSpec),
    ]


STREAM_REQUEST_CB = ctypes.CFUNCTYPE(None, c_void_p, c_size_t, c_void_p)
STREAM_NOTIFY_CB = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
_INFO_CB = ctypes.CFUNCTYPE(None, c_void_p, ctypes.POINTER(_DeviceInfoHead), c_int, c_void_p)

_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "pa_threaded_mainloop_new": (c_void_p, []),
    "pa_threaded_mainloop_start": (c_int, [c_void_p]),
    "pa_threaded_mainloop_stop": (None, [c_void_p]),
    "pa_threaded_mainloop_free": (None, [c_void_p]),
    "pa_threaded_mainloop_lock": (None, [c_void_p]),
    "pa_threaded_mainloop_unlock": (None, [c_void_p]),
    "pa_threaded_mainloop_get_api": (c_void_p, [c_void_p]),
    "pa_mainloop_new": (c_void_p, []),
    "pa_mainloop_get_api": (c_void_p, [c_void_p]),
    "pa_mainloop_iterate": (c_int, [c_void_p, c_int, c_void_p]),
    "pa_mainloop_free": (None, [c_void_p]),
    "pa_context_new": (c_void_p, [c_void_p, c_char_p]),
    "pa_context_connect": (c_int, [c_void_p, c_char_p, c_int, c_void_p]),
    "pa_context_get_state": (c_int, [c_void_p]),
    "pa_context_errno": (c_int, [c_void_p]),
    "pa_context_disconnect": (None, [c_void_p]),
    "pa_context_unref": (None, [c_void_p]),
    "pa_context_get_source_info_list": (c_void_p, [c_void_p, _INFO_CB, c_void_p]),
    "pa_context_get_sink_info_list": (c_void_p, [c_void_p, _INFO_CB, c_void_p]),
    "pa_operation_get_state": (c_int, [c_void_p]),
    "pa_operation_unref": (None, [c_void_p]),
    "pa_strerror": (c_char_p, [c_int]),
    "pa_stream_new": (c_void_p, [c_void_p, c_char_p, ctypes.POINTER(SampleSpec), c_void_p]),
    "pa_stream_connect_record": (
        c_int,
        [c_void_p, c_char_p, ctypes.POINTER(BufferAttr), c_int],
    ),
    "pa_stream_connect_playback": (
        c_int,
        [c_void_p, c_char_p, ctypes.POINTER(BufferAttr), c_int, c_void_p, c_void_p],
    ),
    "pa_stream_get_state": (c_int, [c_void_p]),
    "pa_stream_set_write_callback": (None, [c_void_p, STREAM_REQUEST_CB, c_void_p]),
    "pa_stream_set_overflow_callback": (None, [c_void_p, STREAM_NOTIFY_CB, c_void_p]),
    "pa_stream_set_underflow_callback": (None, [c_void_p, STREAM_NOTIFY_CB, c_void_p]),
    "pa_stream_peek": (c_int, [c_void_p, ctypes.POINTER(c_void_p), ctypes.POINTER(c_size_t)]),
    "pa_stream_drop": (c_int, [c_void_p]),
    "pa_stream_write": (c_int, [c_void_p, c_char_p, c_size_t, c_void_p, ctypes.c_int64, c_int]),
    "pa_stream_cork": (c_void_p, [c_void_p, c_int, c_void_p, c_void_p]),
    "pa_stream_flush": (c_void_p, [c_void_p, c_void_p, c_void_p]),
    "pa_stream_get_latency": (
        c_int,
        [c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(c_int)],
    ),
    "pa_stream_get_buffer_attr": (ctypes.POINTER(BufferAttr), [c_void_p]),
    "pa_stream_set_buffer_attr": (
        c_void_p,
        [c_void_p, ctypes.POINTER(BufferAttr), c_void_p, c_void_p],
    ),
    "pa_stream_disconnect": (c_int, [c_void_p]),
    "pa_stream_unref": (None, [c_void_p]),
}

_lib: Any = None


def load_library() -> Any:
    """libpulse with its prototypes declared (loaded once).

    Raises:
        DeviceError: libpulse.so.0 is not installed (apt libpulse0).
    """
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libpulse.so.0")
        except OSError as exc:
            raise DeviceError(f"libpulse not found (apt install libpulse0): {exc}") from exc
        for name, (restype, argtypes) in _PROTOTYPES.items():
            func = getattr(lib, name)
            func.restype, func.argtypes = restype, argtypes
        _lib = lib
    return _lib


@dataclass(frozen=True, slots=True)
class PulseDevice:
    """A source (``kind`` "input") or sink ("output") as the server lists it."""

    name: str
    description: str
    kind: str
    channels: int
    rate_hz: int


class PulseConnection:
    """One main loop and one context connected to the sound server: libpulse's threaded
    main loop, or with ``threaded=False`` a plain one that :meth:`pump` drives.

    Raises (from the constructor):
        DeviceError: libpulse missing, or no server answers within ``timeout_s``.
    """

    def __init__(
        self,
        app_name: str = "kiosk",
        timeout_s: float = CONNECT_TIMEOUT_S,
        *,
        threaded: bool = True,
    ) -> None:
        self.lib = lib = load_library()
        self.threaded = threaded
        if threaded:
            self.mainloop = lib.pa_threaded_mainloop_new()
            api = lib.pa_threaded_mainloop_get_api(self.mainloop) if self.mainloop else None
        else:
            self.mainloop = lib.pa_mainloop_new()
            api = lib.pa_mainloop_get_api(self.mainloop) if self.mainloop else None
        if not self.mainloop:
            raise DeviceError("libpulse: cannot create a main loop")
        self.context = lib.pa_context_new(api, app_name.encode())
        self._started = False
        self._kept_thread = 0
        self._guard = threading.RLock()  # close() cannot free the main loop under a caller
        self._locked = _Locked(self)
        _open_connections.add(self)
        try:
            if not self.context:
                raise DeviceError("libpulse: cannot create a context")
            if lib.pa_context_connect(self.context, None, CONTEXT_NOAUTOSPAWN, None) < 0:
                raise DeviceError(f"no PulseAudio server: {self.error()}")
            if threaded:
                if lib.pa_threaded_mainloop_start(self.mainloop) < 0:
                    raise DeviceError("libpulse: cannot start the main loop thread")
                self._started = True
            self.wait(self._context_settled, timeout_s, "the PulseAudio server to answer")
            if not self.is_ready():
                raise DeviceError(f"no PulseAudio server: {self.error()}")
        except BaseException:
            self.close()
            raise

    def locked(self) -> _Locked:
        """A context manager holding the connection's lock (recursive) and yielding the
        library: the main loop's lock on a threaded connection, only our own on a polled
        one (no other thread runs it).

        Raises (on entering):
            OSError: the connection is closed (at exit, or a stream outliving its host).
        """
        return self._locked

    def pump(self) -> None:
        """On a polled connection, dispatch everything the server has sent so far (never
        blocks; callbacks run here); call under :meth:`locked`. A threaded one needs none."""
        if self.threaded:
            return
        iterate, mainloop = self.lib.pa_mainloop_iterate, self.mainloop
        for _ in range(MAX_DISPATCHES):
            if iterate(mainloop, 0, None) <= 0:
                return

    def wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``done()`` (called under the lock, after a :meth:`pump`) every 5 ms until true.

        Raises:
            DeviceError: ``timeout_s`` passed first.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self.locked():
                self.pump()
                if done():
                    return
            if time.monotonic() > deadline:
                raise DeviceError(f"timed out after {timeout_s:.1f} s waiting for {what}")
            time.sleep(0.005)

    def _context_settled(self) -> bool:
        state = self.lib.pa_context_get_state(self.context)
        return bool(state in (CONTEXT_READY, CONTEXT_FAILED, CONTEXT_TERMINATED))

    def is_ready(self) -> bool:
        with self.locked() as lib:
            return bool(lib.pa_context_get_state(self.context) == CONTEXT_READY)

    def error(self) -> str:
        """The context's last error, as libpulse words it."""
        with self.locked() as lib:
            code = lib.pa_context_errno(self.context) if self.context else 0
        message = self.lib.pa_strerror(code)
        return message.decode(errors="replace") if message else f"error {code}"

    def devices(self, timeout_s: float = CONNECT_TIMEOUT_S) -> list[PulseDevice]:
        """Every source, then every sink, as the server lists them.

        Raises:
            DeviceError: the server did not answer within ``timeout_s``.
        """
        found: list[PulseDevice] = []
        for kind, getter in (
            ("input", self.lib.pa_context_get_source_info_list),
            ("output", self.lib.pa_context_get_sink_info_list),
        ):

            def on_info(_c: Any, info: Any, eol: int, _u: Any, kind: str = kind) -> None:
                if eol or not info:
                    return
                head = info.contents
                found.append(
                    PulseDevice(
                        name=(head.name or b"").decode(errors="replace"),
                        description=(head.description or b"").decode(errors="replace"),
                        kind=kind,
                        channels=int(head.sample_spec.channels),
                        rate_hz=int(head.sample_spec.rate),
                    )
                )

            callback = _INFO_CB(on_info)  # referenced until the operation is done
            with self.locked():
                operation = getter(self.context, callback, None)
            if not operation:
                raise DeviceError(f"PulseAudio refused to list devices: {self.error()}")
            try:
                self.wait(
                    lambda op=operation: self.lib.pa_operation_get_state(op) != OPERATION_RUNNING,
                    timeout_s,
                    "the PulseAudio device list",
                )
            finally:
                with self.locked() as lib:
                    lib.pa_operation_unref(operation)
        return found

    def keep_thread_state(self) -> None:
        """Call first in every libpulse callback: keeps the main-loop thread's Python thread
        state from one callback to the next.

        ctypes enters Python from a foreign thread with PyGILState_Ensure and leaves with
        PyGILState_Release, which creates and destroys a thread state each time, frame stack
        (an mmap and munmap) and all: measured, a bare record callback at 20 calls/s cost
        0.47 % of a core this way, 0.30 % with the state kept. One Ensure never released
        keeps it for the thread's life (one small thread state per connection, left to the
        interpreter when the thread ends). On a polled connection callbacks run on the Python
        thread that pumps, which has its state already."""
        if not self.threaded:
            return
        ident = threading.get_ident()
        if self._kept_thread != ident:
            self._kept_thread = ident
            ctypes.pythonapi.PyGILState_Ensure()

    @property
    def closed(self) -> bool:
        return not self.mainloop

    def close(self) -> None:
        """Disconnect, stop the main-loop thread and free everything. Idempotent; never from
        a libpulse callback. Streams still open stay allocated (closing them is a no-op)."""
        with self._guard:
            _open_connections.discard(self)
            lib = self.lib
            context, self.context = self.context, None
            if context:
                if self._started:
                    lib.pa_threaded_mainloop_lock(self.mainloop)
                    lib.pa_context_disconnect(context)
                    lib.pa_threaded_mainloop_unlock(self.mainloop)
                else:
                    lib.pa_context_disconnect(context)
            if self._started:
                lib.pa_threaded_mainloop_stop(self.mainloop)
                self._started = False
            if context:
                lib.pa_context_unref(context)
            mainloop, self.mainloop = self.mainloop, None
            if mainloop:
                free = lib.pa_threaded_mainloop_free if self.threaded else lib.pa_mainloop_free
                free(mainloop)


class _Locked:
    """:meth:`PulseConnection.locked`: a plain class, not a generator (the reader takes the
    lock every block: contextlib's frames were a fifth of its Python lines)."""

    __slots__ = ("_c",)

    def __init__(self, connection: PulseConnection) -> None:
        self._c = connection

    def __enter__(self) -> Any:
        c = self._c
        # On the loop's own thread (inside a stream callback: the speaker's read listeners ask
        # for its latency) the loop's lock is held already, and libpulse aborts the process if
        # that thread takes it again (an assertion in pa_threaded_mainloop_lock); nor does it
        # take our guard: another thread may hold that while it waits for the loop's lock,
        # i.e. for this callback to return. (close() cannot free the loop under its own thread.)
        if c.threaded and c._kept_thread == threading.get_ident():
            return c.lib
        c._guard.acquire()
        if not c.mainloop:
            c._guard.release()
            raise OSError("PulseAudio connection closed")
        if c.threaded:
            c.lib.pa_threaded_mainloop_lock(c.mainloop)
        return c.lib

    def __exit__(self, *exc_info: object) -> None:
        c = self._c
        if c.threaded and c._kept_thread == threading.get_ident():
            return
        if c.threaded and c.mainloop:  # (closed meanwhile by this thread: freed already)
            c.lib.pa_threaded_mainloop_unlock(c.mainloop)
        c._guard.release()


# Connections still open at exit are closed before the interpreter finalizes: a libpulse
# callback entering a half-torn-down interpreter crashes the process.
_open_connections: weakref.WeakSet[PulseConnection] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for connection in list(_open_connections):
        connection.close()


def unref_operation(lib: Any, operation: Any) -> None:
    """Drop an operation kiosk does not wait for (cork, flush); call under the lock."""
    if operation:
        lib.pa_operation_unref(operation)

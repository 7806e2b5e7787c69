"""pipe46: the room's microphone stream on libpulse, each room block at its room-time offset.

``pacat`` (main's room pipe) writes the room's blocks one after another: when the room falls behind
(the host's steal) the stream underruns, the server stops its read index where the data ends, and
every later block (the echo too) plays later by the stall; the canceller sees its echo path move.

:class:`AbsWriter` writes room block ``k`` at stream byte offset ``base + k * block_bytes``
(``PA_SEEK_ABSOLUTE``: write index = room time) with ``prebuf = 0``. Checked on this machine's
PulseAudio 16.1 (bench/pipe46_check.py, bench/results/pipe46-check-2026-12-07.txt: a click train with a
50 ms stall): the stream does not stop on an underrun, its read index keeps the sink's clock through
it (it runs from the stream's start even before the first write, so ``base`` is where the sink is at
the first write plus ``lead``), the late block is dropped (the server plays silence: a gap) and every
later click lands at its own sample (offset 0), where pacat 20 shifted them by 30-35 ms. The room's mic
sink has ``norewinds=1``: a block behind the read position is lost, not rewound. ``pad_ms`` (silence
kept written beyond the last block, so the queue never runs dry) gave the same clicks; not used.

Per block, :meth:`AbsWriter.write` also records how far ahead of the sink the block landed
(libpulse's interpolated timing: ``pa_stream_get_time`` is the position being heard now, plus the
sink's latency the position the server reads now): ``latency_us`` (room time at the write -> the
block being heard, the pipe's latency, as pacat's "latency" status) and, when the block's offset is
already behind the read position, the lost part as a gap. The underflow callback counts the
server's underruns (the queue ran dry). Uses kiosk.audio.libpulse's ctypes layer (not edited:
the few extra prototypes are declared here on the same library object).
"""

from __future__ import annotations

import bisect
import ctypes
import statistics
import time
from typing import Any

from kiosk.audio.libpulse import (
    NO_VALUE,
    SAMPLE_S16LE,
    STREAM_ADJUST_LATENCY,
    STREAM_AUTO_TIMING_UPDATE,
    STREAM_CREATING,
    STREAM_INTERPOLATE_TIMING,
    STREAM_NOTIFY_CB,
    STREAM_READY,
    BufferAttr,
    PulseConnection,
    SampleSpec,
    unref_operation,
)

SEEK_ABSOLUTE = 1  # PA_SEEK_ABSOLUTE
REBASE_AT, REBASE_SKIP = 50, 20  # AbsWriter._rebase: after this many blocks (0.5 s), from the median of blocks REBASE_SKIP on


class TimeVal(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class TimingInfo(ctypes.Structure):
    """pa_timing_info (pulse/def.h)."""

    _fields_ = [
        ("timestamp", TimeVal), ("synchronized_clocks", ctypes.c_int),
        ("sink_usec", ctypes.c_uint64), ("source_usec", ctypes.c_uint64), ("transport_usec", ctypes.c_uint64),
        ("playing", ctypes.c_int), ("write_index_corrupt", ctypes.c_int), ("write_index", ctypes.c_int64),
        ("read_index_corrupt", ctypes.c_int), ("read_index", ctypes.c_int64),
        ("configured_sink_usec", ctypes.c_uint64), ("configured_source_usec", ctypes.c_uint64),
        ("since_underrun", ctypes.c_int64),
    ]


_EXTRA = {
    "pa_stream_get_time": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)]),
    "pa_stream_get_timing_info": (ctypes.POINTER(TimingInfo), [ctypes.c_void_p]),
    "pa_stream_update_timing_info": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]),
}


def _declare(lib: Any) -> None:
    for name, (restype, argtypes) in _EXTRA.items():
        func = getattr(lib, name)
        func.restype, func.argtypes = restype, argtypes


class AbsWriter:
    """The room's microphone stream (see the module docstring). ``lead_ms``: how far ahead of the
    server's read position block 0 is placed (the pipe's margin against the room's jitter; also the
    stream's tlength); ``pad_ms``: silence kept written beyond the last real block."""

    def __init__(self, sink: str, rate: int, channels: int = 2, lead_ms: int = 20, pad_ms: int = 0,
                 name: str = "pipe46 room") -> None:
        self.rate, self.frame = rate, 2 * channels
        self.bytes_per_s = rate * self.frame
        self.lead = rate * lead_ms // 1000 * self.frame
        self.pad = rate * pad_ms // 1000 * self.frame
        self.padded_to = 0  # stream offset up to which something (data or silence) is written
        self.base: int | None = None  # stream offset of room sample k0 (set at the first write)
        self.k0 = 0
        self.rebased_us = 0  # how much _rebase moved the base (us; + = later)
        self.underflows: list[float] = []  # time.monotonic of each underflow callback
        self.blocks: list[tuple[float, int, int | None, int]] = []  # (mono, room sample, latency us, lost bytes)
        self.sink_us: list[int] = []  # the sink's latency (render-ahead) at each write
        self._zeros = b""
        self.conn = PulseConnection(name, threaded=True)
        lib = self.lib = self.conn.lib
        _declare(lib)
        self._on_underflow = STREAM_NOTIFY_CB(self._underflow)
        spec = SampleSpec(SAMPLE_S16LE, rate, channels)
        tlength = self.lead
        attr = BufferAttr(NO_VALUE, tlength, 0, NO_VALUE, NO_VALUE)  # prebuf 0: never waits to refill
        flags = STREAM_INTERPOLATE_TIMING | STREAM_AUTO_TIMING_UPDATE | STREAM_ADJUST_LATENCY
        with self.conn.locked():
            self.stream = lib.pa_stream_new(self.conn.context, name.encode(), ctypes.byref(spec), None)
            if not self.stream:
                raise OSError(f"pa_stream_new: {self.conn.error()}")
            lib.pa_stream_set_underflow_callback(self.stream, self._on_underflow, None)
            if lib.pa_stream_connect_playback(self.stream, sink.encode(), attr, flags, None, None) < 0:
                raise OSError(f"pa_stream_connect_playback: {self.conn.error()}")
        self.conn.wait(lambda: lib.pa_stream_get_state(self.stream) != STREAM_CREATING, 5.0, "the room stream")
        with self.conn.locked():
            if lib.pa_stream_get_state(self.stream) != STREAM_READY:
                raise OSError(f"room stream refused: {self.conn.error()}")

    def _underflow(self, _stream: Any, _user: Any) -> None:
        self.conn.keep_thread_state()
        self.underflows.append(time.monotonic())

    def _positions_us(self) -> tuple[int, int] | None:
        """(position heard now, position the server reads now) in stream microseconds; None before
        the first timing update."""
        lib, usec = self.lib, ctypes.c_uint64()
        if lib.pa_stream_get_time(self.stream, ctypes.byref(usec)) != 0:
            return None
        info = lib.pa_stream_get_timing_info(self.stream)
        sink_us = int(info.contents.sink_usec) if info else 0
        self.sink_us.append(sink_us)
        return int(usec.value), int(usec.value) + sink_us

    def write(self, k: int, pcm: bytes) -> tuple[int | None, int]:
        """Room block starting at room sample ``k``: at its offset, then the padding. Returns the
        block's latency (us; None before timing is known) and how many of its bytes were already
        behind the server's read position (lost: the listener hears the padding's silence there)."""
        lib = self.lib
        if self.base is None:  # the read index runs from the stream's start (prebuf 0): room time starts here
            called = time.monotonic()
            self.sync_timing()
            with self.conn.locked():
                pos = self._positions_us()
            # heard lead_ms after this call (the timing round trip taken off: the room's pace runs from the call)
            heard_us = 0 if pos is None else pos[0] - round((time.monotonic() - called) * 1e6)
            heard_b = max(0, heard_us) * self.bytes_per_s // 1_000_000 // self.frame * self.frame
            self.base, self.k0 = heard_b + self.lead, k
        offset = self.base + (k - self.k0) * self.frame
        end = offset + len(pcm)
        with self.conn.locked():
            lib.pa_stream_write(self.stream, pcm, len(pcm), None, offset, SEEK_ABSOLUTE)
            start = max(end, self.padded_to)
            if self.pad and end + self.pad > start:
                n = end + self.pad - start
                if len(self._zeros) < n:
                    self._zeros = bytes(n)
                lib.pa_stream_write(self.stream, self._zeros[:n], n, None, start, SEEK_ABSOLUTE)
            self.padded_to = max(self.padded_to, end + self.pad if self.pad else end)
            pos = self._positions_us()
            unref_operation(lib, lib.pa_stream_update_timing_info(self.stream, None, None))  # for the next block
        latency_us, lost = None, 0
        if pos is not None:
            at_us = offset * 1_000_000 // self.bytes_per_s
            latency_us = at_us - pos[0]
            behind = pos[1] * self.bytes_per_s // 1_000_000 - offset
            lost = max(0, min(len(pcm), behind // self.frame * self.frame))
        self.blocks.append((time.monotonic(), k, latency_us, lost))
        if len(self.blocks) == REBASE_AT:
            self._rebase()
        return latency_us, lost

    def _rebase(self) -> None:
        """Once, REBASE_AT blocks in (0.5 s, before any answer plays): move the base so the blocks'
        median latency is ``lead`` (the first write's phase against the room's steady pace is chance:
        seen 29.5 ms for a 20 ms lead). A smaller latency drops that much room audio once, a larger
        one plays that much silence once; after it the stream keeps its schedule."""
        lats = [b[2] for b in self.blocks[REBASE_SKIP:] if b[2] is not None]
        if not lats or self.base is None:
            return
        want_us = self.lead * 1_000_000 // self.bytes_per_s
        move = round((want_us - statistics.median(lats)) * self.bytes_per_s / 1e6) // self.frame * self.frame
        if abs(move) >= self.bytes_per_s // 1000:  # >= 1 ms
            self.base += move
            self.rebased_us = move * 1_000_000 // self.bytes_per_s

    def update_timing(self) -> None:
        with self.conn.locked() as lib:
            unref_operation(lib, lib.pa_stream_update_timing_info(self.stream, None, None))

    def sync_timing(self, timeout_s: float = 2.0) -> None:
        """A timing update, waited for (the server's read index now)."""
        with self.conn.locked() as lib:
            op = lib.pa_stream_update_timing_info(self.stream, None, None)
        if not op:
            return
        try:
            self.conn.wait(lambda: self.lib.pa_operation_get_state(op) != 0, timeout_s, "a timing update")
        finally:
            with self.conn.locked() as lib:
                lib.pa_operation_unref(op)

    def close(self) -> None:
        if self.stream is None:
            return
        stream, self.stream = self.stream, None
        if not self.conn.closed:
            with self.conn.locked() as lib:
                lib.pa_stream_set_underflow_callback(stream, STREAM_NOTIFY_CB(), None)
                lib.pa_stream_disconnect(stream)
                lib.pa_stream_unref(stream)
        self.conn.close()


def gaps(blocks: list[tuple[float, int, int | None, int]], rate: int, frame: int) -> list[tuple[float, float, float]]:
    """Runs of blocks with lost bytes: (monotonic at the first, room s of the first, lost ms in all)."""
    out: list[tuple[float, float, float]] = []
    prev = False
    for mono, k, _lat, lost in blocks:
        if lost:
            ms = lost / frame / rate * 1000
            if prev:
                m, s, total = out[-1]
                out[-1] = (m, s, round(total + ms, 2))
            else:
                out.append((round(mono, 4), round(k / rate, 3), round(ms, 2)))
        prev = bool(lost)
    return out


START_S = 0.3  # underflows this soon after the first write: the empty stream before it (not a glitch)
NEAR_GAP_S = 0.2  # an underflow this near a gap is that gap


class RoomPipe:
    """pulse_room's view of an :class:`AbsWriter`: the slice of ``subprocess.Popen`` (a pacat) the room
    loop uses (``stdin.write``/``flush``, ``terminate``, ``wait``, ``kill``), each block placed at the room
    sample the room has just handled; :meth:`report` gives the row's pipe keys."""

    def __init__(self, writer: AbsWriter, room: Any) -> None:
        self.writer, self.room = writer, room
        self.stdin = self

    def write(self, pcm: bytes) -> int:
        self.writer.write(self.room.k - len(pcm) // self.writer.frame, pcm)  # room.step has advanced k
        return len(pcm)

    def flush(self) -> None:
        pass

    def terminate(self) -> None:
        self.writer.close()

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def kill(self) -> None:
        pass

    def report(self, glitches: Any) -> dict[str, Any]:
        """The writer's glitches as pacat's: ``pacat_underruns`` = each gap (room blocks already behind
        the sink when written) and each underflow not near one, as (monotonic, room s), from the rebase
        on (before it, 0.5 s into the room, no speech plays: the first block may land behind the sink
        while the stream starts; those are ``abs_start_gaps``, not glitches; seen 3 of 24 rows, 9-27 ms
        at room 0.0 s in hold P1); beside them
        ``abs_gaps`` (monotonic, room s, lost ms), ``abs_underflows``, ``abs_lost_ms``; latency samples
        (room s, us: written -> heard, + half a block as pacat's status lines average) into ``glitches``."""
        w, rate = self.writer, self.room.rate
        blocks = w.blocks
        found = gaps(blocks, rate, w.frame)
        start_s = REBASE_AT * self.room.block / rate  # the stream's start (before the rebase; no speech yet)
        start = [g for g in found if g[1] < start_s]
        found = [g for g in found if g[1] >= start_s]
        monos = [b[0] for b in blocks]

        def room_s(mono: float) -> float:
            i = max(0, min(len(blocks) - 1, bisect.bisect_right(monos, mono) - 1))
            return round(blocks[i][1] / rate, 3) if blocks else 0.0

        flows = [u for u in w.underflows if blocks and monos[0] + START_S < u <= monos[-1] + 0.05
                 and room_s(u) >= start_s]
        under = [(round(u, 4), room_s(u)) for u in flows]
        lone = [x for x in under if all(abs(x[0] - g[0]) > NEAR_GAP_S for g in found)]
        # pacat's status line: from a random moment between writes to the end of what is written heard,
        # i.e. on average a block's start latency (ours, taken just after its write) + half a block
        half = self.room.block * 500_000 // rate
        glitches.latency_samples.extend((round(k / rate, 3), lat + half) for _m, k, lat, _l in blocks if lat is not None)
        per_s: dict[int, list[int]] = {}
        for _m, k, lat, _l in blocks:
            if lat is not None:
                per_s.setdefault(k // rate, []).append(lat + half)
        return {
            "pacat_underruns": sorted([(g[0], g[1]) for g in found] + lone),
            "abs_gaps": found, "abs_start_gaps": start, "abs_underflows": under,
            "abs_lost_ms": round(sum(g[2] for g in found), 2),
            "abs_blocks": len(blocks), "abs_rebased_ms": round(w.rebased_us / 1000, 2),
            "pacat_latency_ms_per_s": [(s, round(statistics.median_high(v) / 1000, 1)) for s, v in sorted(per_s.items())],
        }

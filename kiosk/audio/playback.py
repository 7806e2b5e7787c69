"""The speaker's queue: answer audio and earcons waiting to be played, and what was played.

Owns the hand-over between the asyncio side (writes decoded answer deltas and earcons) and
the PortAudio callback thread (reads fixed-size blocks), the instant flush for barge-in, and
the per-item count of milliseconds actually handed to the speaker that
``conversation.item.truncate`` needs (``audio_end_ms``). No PortAudio here: the sink
(:class:`~kiosk.audio.pyaudio_io.PyAudioSink`) or a WAV writer pulls from it.

Answer audio plays in order, one item after another. Earcons play at once, mixed over any
answer audio, and are never counted for truncation. All PCM is mono int16 at ``rate_hz``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

# Speaker blocks remembered for the echo reference (10 x 20 ms: the device latency span).
RECENT_LEVEL_BLOCKS = 10

# Answer audio remembered after the speaker took it: a sink that drops what its device still
# holds when the answer pauses (PulseAudio keeps ~100 ms) hands that much back (rewind), so
# the answer resumes where the listener stopped hearing it.
REWIND_KEEP_MS = 400

# played_ms is kept for this many recent items; older ones report 0 (truncate only ever
# concerns the item playing now, so a short memory is enough and the dict cannot grow forever).
_ITEMS_REMEMBERED = 64


class _Chunk:
    __slots__ = ("item_id", "offset", "pcm")

    def __init__(self, item_id: str | None, pcm: bytes) -> None:
        self.item_id = item_id
        self.pcm = pcm
        self.offset = 0  # bytes already read

    @property
    def remaining(self) -> int:
        return len(self.pcm) - self.offset


class PlaybackBuffer:
    """Thread-safe FIFO of answer audio plus an earcon lane, read by the speaker.

    Calling contract: the asyncio side calls :meth:`write` and :meth:`flush`; exactly one
    consumer (the PortAudio callback) calls :meth:`read`. Every method takes one short lock,
    none blocks on I/O, so it is safe from a real-time callback. Properties are snapshots.
    """

    def __init__(self, rate_hz: int = 24000) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.rate_hz = rate_hz
        self._lock = threading.Lock()
        self._speech: deque[_Chunk] = deque()
        self._earcons: deque[_Chunk] = deque()
        self._speech_pending_bytes = 0
        self._earcon_pending_bytes = 0
        self._played_samples: OrderedDict[str, int] = OrderedDict()
        self._earcon_in_last_read = False
        self._recent_levels: deque[float] = deque(maxlen=RECENT_LEVEL_BLOCKS)
        self._held = False
        self._flush_count = 0
        self._write_listeners: list[Callable[[], None]] = []
        self._read_listeners: list[Callable[[bytes], None]] = []
        self._halt_listeners: list[Callable[[bool], None]] = []
        self._drop_listeners: list[Callable[[float], None]] = []
        # Answer audio taken lately, oldest first (item, pcm): what rewind() can hand back.
        self._taken: deque[tuple[str | None, bytes]] = deque()
        self._taken_bytes = 0
        self._overflowed_item: str | None = None  # the item whose overflow was logged

    def add_write_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (on the writer's thread, must not block) after each write:
        a speaker that stopped while idle starts again."""
        self._write_listeners.append(listener)

    def add_read_listener(self, listener: Callable[[bytes], None]) -> None:
        """Call ``listener(pcm)`` (on the speaker's thread, must not block) with every block
        :meth:`read` hands out that has sound in it: the echo canceller's reference."""
        self._read_listeners.append(listener)

    def remove_read_listener(self, listener: Callable[[bytes], None]) -> None:
        if listener in self._read_listeners:
            self._read_listeners.remove(listener)

    def add_halt_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(resumes)`` (on the caller's thread, must not block) when the answer
        pauses (``resumes`` True: it may go on, see :meth:`rewind`) or is flushed (False):
        a sink then drops what its device still holds, so the speaker falls silent now and
        not a device buffer later."""
        self._halt_listeners.append(listener)

    def remove_halt_listener(self, listener: Callable[[bool], None]) -> None:
        if listener in self._halt_listeners:
            self._halt_listeners.remove(listener)

    def add_drop_listener(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(seconds)`` (on the sink's caller's thread, must not block) when the
        speaker dropped the last ``seconds`` it had taken before they were heard
        (:meth:`dropped`): the echo canceller's reference cuts them."""
        self._drop_listeners.append(listener)

    def remove_drop_listener(self, listener: Callable[[float], None]) -> None:
        if listener in self._drop_listeners:
            self._drop_listeners.remove(listener)

    def dropped(self, seconds: float) -> None:
        """The sink dropped the last ``seconds`` of what it took from here before they were
        heard (its sound server flushed the queue on a pause or a flush): tell the drop
        listeners. On a pause the sink also puts the answer audio back (:meth:`rewind`)."""
        for listener in list(self._drop_listeners):
            listener(seconds)

    def write(
        self, pcm: bytes, item_id: str | None = None, *, limit_ms: float | None = None
    ) -> int:
        """Queue PCM. ``item_id`` names the answer item it belongs to; ``None`` = an earcon.

        ``limit_ms``: answer audio beyond this much queued is dropped, with one log line per
        item (a server can send audio far faster than it plays; the queue must not grow
        without bound).
        A trailing odd byte (not a whole int16 sample) is dropped with a warning.
        Returns how many bytes were dropped for ``limit_ms``.
        """
        if len(pcm) % 2:
            log.warning("playback: dropping odd trailing byte of a %d-byte chunk", len(pcm))
            pcm = pcm[:-1]
        dropped = 0
        with self._lock:
            if limit_ms is not None and item_id is not None:
                room = int(limit_ms * self.rate_hz / 1000) * 2 - self._speech_pending_bytes
                keep = max(0, min(len(pcm), room))
                dropped, pcm = len(pcm) - keep, pcm[:keep]
            first_overflow = bool(dropped) and self._overflowed_item != item_id
            if first_overflow:
                self._overflowed_item = item_id
            if pcm:
                self._queue(item_id, pcm)
        if first_overflow:  # logged outside the lock: the speaker callback never waits on I/O
            log.warning(
                "answer audio: more than %.0f s queued; dropping what comes beyond",
                (limit_ms or 0) / 1000,
            )
        if pcm:
            for listener in self._write_listeners:
                listener()
        return dropped

    def _queue(self, item_id: str | None, pcm: bytes) -> None:
        """Append under the lock (held by the caller)."""
        chunk = _Chunk(item_id, bytes(pcm))
        if item_id is None:
            self._earcons.append(chunk)
            self._earcon_pending_bytes += len(chunk.pcm)
        else:
            self._speech.append(chunk)
            self._speech_pending_bytes += len(chunk.pcm)
            self._played_samples.setdefault(item_id, 0)
            self._played_samples.move_to_end(item_id)
            while len(self._played_samples) > _ITEMS_REMEMBERED:
                self._played_samples.popitem(last=False)

    def read(self, n_samples: int) -> bytes:
        """Take the next ``n_samples`` for the speaker: always ``n_samples * 2`` bytes.

        Answer audio comes in order; earcons are mixed on top (saturating); silence pads
        whatever is missing. The answer samples returned count as played for their item.
        """
        if n_samples <= 0:
            return b""
        n_bytes = n_samples * 2
        with self._lock:
            if self._held:
                # Paused on a suspected barge-in: silence, nothing consumed or counted.
                self._recent_levels.append(-math.inf)
                return bytes(n_bytes)
            speech = self._take(self._speech, n_bytes, count=True)
            self._speech_pending_bytes -= len(speech)
            earcon = self._take(self._earcons, n_bytes, count=False)
            self._earcon_pending_bytes -= len(earcon)
            self._earcon_in_last_read = bool(earcon)
        if not earcon:
            out = speech + bytes(n_bytes - len(speech))
        elif not speech:
            out = earcon + bytes(n_bytes - len(earcon))
        else:
            mixed = np.zeros(n_samples, dtype=np.int32)
            mixed[: len(speech) // 2] += np.frombuffer(speech, dtype=np.int16)
            mixed[: len(earcon) // 2] += np.frombuffer(earcon, dtype=np.int16)
            out = np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()
        if speech or earcon:
            samples = np.frombuffer(out, dtype=np.int16).astype(np.float32)
            rms = float(np.sqrt(np.mean(samples * samples)))
            level = 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf
        else:
            level = -math.inf
        with self._lock:
            self._recent_levels.append(level)
        if speech or earcon:
            for listener in self._read_listeners:
                listener(out)
        return out

    @property
    def recent_output_dbfs(self) -> float:
        """Loudest block handed to the speaker over the last ~200 ms (-inf: silence).

        The half-duplex guard compares the microphone with this: the speaker's echo
        arrives a device latency later, so the loudest recent block is the reference.
        """
        with self._lock:
            return max(self._recent_levels, default=-math.inf)

    def _take(self, lane: deque[_Chunk], n_bytes: int, *, count: bool) -> bytes:
        out = bytearray()
        while lane and len(out) < n_bytes:
            chunk = lane[0]
            part = chunk.pcm[chunk.offset : chunk.offset + n_bytes - len(out)]
            chunk.offset += len(part)
            out += part
            if count and chunk.item_id is not None and chunk.item_id in self._played_samples:
                self._played_samples[chunk.item_id] += len(part) // 2
            if count and part:
                self._remember_taken(chunk.item_id, part)
            if chunk.remaining == 0:
                lane.popleft()
        return bytes(out)

    def _remember_taken(self, item_id: str | None, part: bytes) -> None:
        """Under the lock: ``part`` of ``item_id`` was just taken (kept REWIND_KEEP_MS)."""
        self._taken.append((item_id, part))
        self._taken_bytes += len(part)
        keep = REWIND_KEEP_MS * self.rate_hz // 1000 * 2
        while self._taken and self._taken_bytes - len(self._taken[0][1]) >= keep:
            self._taken_bytes -= len(self._taken.popleft()[1])

    def rewind(self, n_samples: int) -> int:
        """Put the last ``n_samples`` of answer audio taken back at the head of the queue: the
        sink dropped them before they were heard (a pause). They play again on resume and
        no longer count as played. Returns the samples put back (at most what is kept,
        ``REWIND_KEEP_MS``; earcons are not kept)."""
        back = 0
        with self._lock:
            want = max(0, n_samples) * 2
            while want > 0 and self._taken:
                item_id, pcm = self._taken.pop()
                self._taken_bytes -= len(pcm)
                if len(pcm) > want:  # only its tail goes back
                    self._taken.append((item_id, pcm[: len(pcm) - want]))
                    self._taken_bytes += len(pcm) - want
                    pcm = pcm[len(pcm) - want :]
                self._speech.appendleft(_Chunk(item_id, pcm))
                self._speech_pending_bytes += len(pcm)
                if item_id in self._played_samples:
                    self._played_samples[item_id] -= len(pcm) // 2
                want -= len(pcm)
                back += len(pcm) // 2
        return back

    def hold(self, held: bool) -> None:
        """Pause (True) or resume (False) the speaker without dropping anything.

        The app holds on the first loud syllable during an answer, so the kiosk falls silent
        within tens of milliseconds; :meth:`flush` follows if it proves to be a barge-in,
        otherwise (a cough) the answer resumes where it paused.
        """
        with self._lock:
            paused = held and not self._held
            self._held = held
        if paused:
            for listener in self._halt_listeners:
                listener(True)

    @property
    def held(self) -> bool:
        with self._lock:
            return self._held

    def flush(self) -> None:
        """Drop everything pending, answer audio and earcons alike (barge-in).

        Counts of what was already played are kept: truncate needs them after the flush.
        """
        with self._lock:
            dropped_ms = self._speech_pending_bytes * 500 / self.rate_hz
            self._speech.clear()
            self._earcons.clear()
            self._speech_pending_bytes = 0
            self._earcon_pending_bytes = 0
            self._earcon_in_last_read = False
            self._held = False
            self._flush_count += 1
            self._taken.clear()
            self._taken_bytes = 0
        for listener in self._halt_listeners:
            listener(False)
        log.debug("= playback flushed, %.0f ms of answer audio dropped", dropped_ms)

    def restart_item(self, item_id: str) -> None:
        """A new answer begins under ``item_id``: count its playback from zero. Ids are
        only unique per connection (a fake or local server restarts them), and a count
        carried over would truncate the new answer past what was sent."""
        with self._lock:
            self._played_samples.pop(item_id, None)

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` handed to the speaker so far (0 if unknown)."""
        with self._lock:
            samples = self._played_samples.get(item_id, 0)
        return samples * 1000 // self.rate_hz

    @property
    def flush_count(self) -> int:
        """How many times :meth:`flush` ran: a reader holding audio of its own (a resampler's
        tail) drops it when this changes."""
        with self._lock:
            return self._flush_count

    @property
    def pending_ms(self) -> float:
        """Milliseconds still queued (the longer of the answer and earcon lanes)."""
        with self._lock:
            pending = max(self._speech_pending_bytes, self._earcon_pending_bytes)
        return pending * 500 / self.rate_hz

    @property
    def is_idle(self) -> bool:
        """Nothing pending in either lane."""
        with self._lock:
            return not self._speech and not self._earcons

    @property
    def playing_item(self) -> str | None:
        """The answer item the speaker is on: the one at the head of the queue.

        Before the first read of a fresh item this is already that item (it is next);
        ``None`` when no answer audio is pending.
        """
        with self._lock:
            return self._speech[0].item_id if self._speech else None

    @property
    def earcon_in_last_read(self) -> bool:
        """The block the speaker took last had an earcon in it (read listeners: that block)."""
        with self._lock:
            return self._earcon_in_last_read

    @property
    def earcon_active(self) -> bool:
        """An earcon is pending or was in the block the speaker took last (mute the VAD)."""
        with self._lock:
            return bool(self._earcons) or self._earcon_in_last_read

"""WAV files as the daemon's microphone and speaker (``kiosk run --input-wav/--output-wav``).

Both keep real time on the event loop, as the PortAudio adapters do on their threads: the
microphone hands over ``block_ms`` of frames per wake-up, the speaker pulls 20 ms blocks
while something plays and sleeps while nothing does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from kiosk.audio.frames import first_frame_at_or_above
from kiosk.audio.playback import PlaybackBuffer


class WavMicrophone:
    """A WAV file as the microphone: paced frames, then silence until stopped.

    Wakes every ``block_ms`` (a multiple of ``frame_ms``) and delivers that many frames, as
    PortAudio does with :data:`kiosk.daemon.MIC_BLOCK_MS` blocks; with ``on_frames`` they
    come as one list per wake-up, and ``blocks_per_wake()`` (asked before each wake-up) may
    make a wake-up span several blocks (while the kiosk has nothing to react to), ended
    early by a block with a frame at ``handover_level_dbfs()`` or louder: as
    :class:`~kiosk.audio.pyaudio_io.PyAudioSource` batches its hand-overs. A 16-bit mono
    file at the VAD rate is read as it plays (an hour-long soak file costs no memory); other
    formats are converted up front.
    """

    def __init__(
        self,
        path: Path,
        frame_ms: int,
        on_frame: Callable[[bytes], None] | None = None,
        block_ms: int = 0,
        rate_hz: int = 16000,
        *,
        on_frames: Callable[[list[bytes]], None] | None = None,
        blocks_per_wake: Callable[[], int] | None = None,
        handover_level_dbfs: Callable[[], float] | None = None,
    ) -> None:
        if (on_frame is None) == (on_frames is None):
            raise ValueError("give exactly one of on_frame and on_frames")
        self._frame_bytes = rate_hz * frame_ms // 1000 * 2
        self._frames_per_block = max(1, (block_ms or frame_ms) // frame_ms)
        self._frame_s = frame_ms / 1000
        if on_frames is None:
            assert on_frame is not None
            each = on_frame

            def on_frames(frames: list[bytes]) -> None:
                for frame in frames:
                    each(frame)

        self._on_frames = on_frames
        self._blocks_per_wake = blocks_per_wake or (lambda: 1)
        self._handover_level = handover_level_dbfs
        self._ahead: list[bytes] = []  # read from the file, not yet due (a batch's rest)
        self._pcm = b""
        self._pos = 0
        from kiosk.audio.wav import WavReader, read_wav_mono

        # Refuses devices, FIFOs, bad headers and absurd rates in one line, without blocking.
        reader = WavReader(path)
        self._reader: WavReader | None = reader
        self._frames = reader.frames_of(rate_hz, self._frame_bytes // 2)
        if (reader.bits, reader.channels, reader.rate_hz) != (16, 1, rate_hz):
            reader.close()
            self._reader = None
            self._pcm = read_wav_mono(path, rate_hz).astype("<i2").tobytes()

    @property
    def at_end(self) -> bool:
        """The whole file has been handed over (silence follows)."""
        return self._reader is None and self._pos >= len(self._pcm) and not self._ahead

    def _next_frame(self) -> bytes:
        if self._reader is not None:
            frame = next(self._frames, b"")
            if len(frame) < self._frame_bytes:
                self._reader.close()
                self._reader = None
        else:
            frame = self._pcm[self._pos : self._pos + self._frame_bytes]
            self._pos += len(frame)
        return frame if len(frame) == self._frame_bytes else bytes(self._frame_bytes)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        t = loop.time()
        per_block = self._frames_per_block
        try:
            while True:
                n = per_block * max(1, self._blocks_per_wake())
                while len(self._ahead) < n:
                    self._ahead.append(self._next_frame())
                if n > per_block and self._handover_level is not None:
                    # As PyAudioSource: a block loud enough for an onset ends the batch.
                    n = per_block * blocks_until_loud(
                        self._ahead[:n], per_block, self._handover_level()
                    )
                frames = self._ahead[:n]
                del self._ahead[:n]
                t += self._frame_s * n
                await asyncio.sleep(max(0.0, t - loop.time()))
                self._on_frames(frames)
        finally:
            if self._reader is not None:
                self._reader.close()


def blocks_until_loud(frames: list[bytes], frames_per_block: int, level_dbfs: float) -> int:
    """Blocks of ``frames`` up to and including the first with a frame at ``level_dbfs`` or
    louder (all of them if none is)."""
    first = first_frame_at_or_above(frames, level_dbfs)
    if first is not None:
        return first // frames_per_block + 1
    return max(1, len(frames) // frames_per_block)


class WavSpeaker:
    """The speaker as a WAV file: pulls real-time blocks from the buffer, writes what plays.

    Like the PortAudio speaker with an idle pause, it does not wake while nothing plays."""

    def __init__(self, path: Path, playback: PlaybackBuffer, block_ms: int = 20) -> None:
        from kiosk.audio.wav import WavSink

        self._sink = WavSink(path, playback.rate_hz)
        self._playback = playback
        self._block = playback.rate_hz * block_ms // 1000
        self._block_s = block_ms / 1000

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        written = asyncio.Event()
        self._playback.add_write_listener(lambda: loop.call_soon_threadsafe(written.set))
        t = loop.time()
        try:
            while True:
                if self._playback.is_idle:  # nothing plays: sleep until something is written
                    written.clear()
                    await written.wait()
                    t = loop.time()
                t += self._block_s
                await asyncio.sleep(max(0.0, t - loop.time()))
                if not self._playback.is_idle:
                    self._sink.write(self._playback.read(self._block))
        finally:
            self._sink.close()

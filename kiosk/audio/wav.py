"""WAV files: read any PCM WAV as mono int16 at a chosen rate, write mono int16 WAV.

Owns file-level audio: questions fed to ``kiosk simulate``, recorded answers, test fixtures.
Reads 8/16/24/32-bit integer PCM and 32/64-bit float, mono or multi-channel (channels are
averaged), plain ``WAVE_FORMAT_PCM`` or ``WAVE_FORMAT_EXTENSIBLE`` (which Python 3.11's
``wave`` module refuses, hence the small RIFF reader here). Anything else raises
:class:`AudioFileError` with one line naming the file. Live streams are not handled here.

Bounded by design: only regular files are opened (``/dev/zero``, a FIFO or a folder is
refused before reading), sample rates outside 8-192 kHz are refused (a 1 Hz header
would resample 20 KB into gigabytes), and samples are decoded and resampled in blocks
(:class:`WavReader`), so reading costs one block of memory plus what the caller keeps;
:func:`read_wav_mono`, which keeps everything, refuses files over ``max_seconds``.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
# WAVE_FORMAT_EXTENSIBLE carries the real format in the first two bytes of its GUID.
_MAX_CHANNELS = 32
# Telephone speech to studio masters; anything else is a broken or hostile header.
MIN_RATE_HZ = 8_000
MAX_RATE_HZ = 192_000
# read_wav_mono keeps the whole result in memory (2 bytes a sample): 2 h at 16 kHz is 230 MB.
MAX_WHOLE_FILE_S = 2 * 3600
# Samples decoded per step when streaming (~1.4 s at 48 kHz; float64 working copies ~1.5 MB).
BLOCK_FRAMES = 1 << 16
_MAX_CHUNKS = 1000  # chunk headers walked before "data"; real files have a handful
_MAX_FMT_BYTES = 1024


class AudioFileError(KioskError, ValueError):
    """An audio file is missing, unreadable or in a format kiosk does not read.

    ``str(err)`` is one line: ``<path>: <problem>``.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_wav_mono(
    path: str | os.PathLike[str], rate_hz: int, max_seconds: float = MAX_WHOLE_FILE_S
) -> Int16Array:
    """Read a whole WAV file as mono int16 samples at ``rate_hz``.

    Channels are averaged; a different file rate is converted with soxr (HQ). A 16-bit mono
    file already at ``rate_hz`` comes back sample-exact. Memory: the result plus one block;
    stream with :class:`WavReader` when the caller does not need it all at once.

    Raises:
        AudioFileError: missing/unreadable/non-regular file, not RIFF/WAVE, no
            ``fmt``/``data`` chunk, an unsupported encoding or sample rate, or longer than
            ``max_seconds``.
    """
    with WavReader(path) as reader:
        if reader.duration_s > max_seconds:
            raise AudioFileError(
                path, f"{reader.duration_s:.0f} s long, over the {max_seconds:.0f} s limit"
            )
        # The resampler's output length is within a few samples of this; grow if not.
        out: Int16Array = np.empty(round(reader.frames * rate_hz / reader.rate_hz) + 64, np.int16)
        n = 0
        for block in reader.blocks(rate_hz):
            if n + block.size > out.size:
                out = np.concatenate([out[:n], np.empty(block.size + 64, np.int16)])
            out[n : n + block.size] = block
            n += block.size
    log.debug(
        "read %s: %d Hz %d ch %d bit -> %d samples at %d Hz",
        path,
        reader.rate_hz,
        reader.channels,
        reader.bits,
        n,
        rate_hz,
    )
    return out[:n]  # a view: copying would briefly double the memory


def wav_info(path: str | os.PathLike[str]) -> tuple[int, int, int, float]:
    """``(rate_hz, channels, bits, duration_s)`` of a WAV file (header only); AudioFileError."""
    with WavReader(path) as reader:
        return reader.rate_hz, reader.channels, reader.bits, reader.duration_s


class WavReader:
    """A WAV file opened for streaming: the header is checked now, samples read in blocks.

    Use as a context manager (or call :meth:`close`). Not thread-safe.

    Raises:
        AudioFileError: as :func:`read_wav_mono`, at construction.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._file = _open_regular(path)
        try:
            self._fmt, self._data_offset, self._data_bytes = _parse_header(path, self._file)
        except BaseException:
            self._file.close()
            raise

    @property
    def rate_hz(self) -> int:
        return self._fmt.rate_hz

    @property
    def channels(self) -> int:
        return self._fmt.channels

    @property
    def bits(self) -> int:
        return self._fmt.bits

    @property
    def frames(self) -> int:
        return self._data_bytes // self._fmt.block_align

    @property
    def duration_s(self) -> float:
        return self.frames / self._fmt.rate_hz

    def blocks(self, rate_hz: int, block_frames: int = BLOCK_FRAMES) -> Iterator[Int16Array]:
        """Mono int16 samples at ``rate_hz``, in blocks, from the start of the data."""
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        fmt = self._fmt
        resampler = None
        if fmt.rate_hz != rate_hz:
            import soxr  # its extension only when converting (see kiosk.audio.resample)

            resampler = soxr.ResampleStream(fmt.rate_hz, rate_hz, 1, dtype="float64", quality="HQ")
        self._file.seek(self._data_offset)
        left = self._data_bytes
        while True:
            raw = self._file.read(min(left, block_frames * fmt.block_align))
            raw = raw[: len(raw) - len(raw) % fmt.block_align]  # the file may have shrunk
            left = left - len(raw) if raw else 0
            signal = _decode(self.path, fmt, raw)
            if resampler is not None:
                signal = resampler.resample_chunk(signal, last=left == 0)
            if signal.size:
                yield np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
            if left == 0:
                return

    def frames_of(self, rate_hz: int, frame_samples: int) -> Iterator[bytes]:
        """Consecutive whole frames of ``frame_samples`` little-endian int16 samples."""
        frame_bytes = frame_samples * 2
        pending = b""
        for block in self.blocks(rate_hz):
            data = pending + block.astype("<i2").tobytes()
            whole = len(data) - len(data) % frame_bytes
            for i in range(0, whole, frame_bytes):
                yield data[i : i + frame_bytes]
            pending = data[whole:]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_wavs(paths: Iterable[str | os.PathLike[str]]) -> list[WavReader]:
    """A reader per path, all headers checked; on any error none is left open."""
    readers: list[WavReader] = []
    try:
        for path in paths:
            readers.append(WavReader(path))
    except BaseException:
        for reader in readers:
            reader.close()
        raise
    return readers


def _open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (devices and FIFOs never block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise AudioFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise AudioFileError(path, "not a regular file (devices, pipes and folders are refused)")
    return f


def write_wav(
    path: str | os.PathLike[str], pcm: bytes | bytearray | memoryview | Int16Array, rate_hz: int
) -> None:
    """Write mono int16 PCM (raw bytes or an int16 array) as a 16-bit WAV file."""
    with WavSink(path, rate_hz) as sink:
        sink.write(pcm)


class WavSink:
    """Appends mono int16 PCM to a WAV file; :meth:`close` finalises the header.

    Use as a context manager. :meth:`close` is idempotent; writing after it raises
    ValueError. Not thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], rate_hz: int) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.path = Path(path)
        self.rate_hz = rate_hz
        self._samples = 0
        # Open the file ourselves: wave.open(path) failing half-way leaves a Wave_write whose
        # __del__ raises an "unraisable" AttributeError.
        try:
            self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115
        except OSError as exc:
            raise AudioFileError(path, f"cannot write: {exc.strerror or exc}") from exc
        self._wav: wave.Wave_write | None = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate_hz)

    def write(self, pcm: bytes | bytearray | memoryview | Int16Array) -> None:
        if self._wav is None:
            raise ValueError(f"{self.path}: WavSink is closed")
        if isinstance(pcm, np.ndarray):
            if pcm.dtype != np.int16:
                raise TypeError(f"expected an int16 array, got {pcm.dtype}")
            data = np.ascontiguousarray(pcm).astype("<i2", copy=False).tobytes()
        else:
            data = bytes(pcm)
        if len(data) % 2:
            raise ValueError(f"{self.path}: PCM must be whole int16 samples, got {len(data)} bytes")
        self._wav.writeframesraw(data)
        self._samples += len(data) // 2

    @property
    def duration_ms(self) -> int:
        return self._samples * 1000 // self.rate_hz

    def close(self) -> None:
        if self._wav is not None:
            wav, self._wav = self._wav, None
            try:
                wav.close()
            finally:
                self._file.close()

    def __enter__(self) -> WavSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Format:
    __slots__ = ("bits", "block_align", "channels", "code", "rate_hz")

    def __init__(self, code: int, channels: int, rate_hz: int, block_align: int, bits: int) -> None:
        self.code = code
        self.channels = channels
        self.rate_hz = rate_hz
        self.block_align = block_align
        self.bits = bits


def _parse_header(
    path: str | os.PathLike[str], f: BinaryIO
) -> tuple[_Format, int, int]:
    """``(format, data offset, data bytes)``, walking chunk headers without reading samples."""
    size = os.fstat(f.fileno()).st_size
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioFileError(path, "not a WAV file (no RIFF/WAVE header)")
    fmt: _Format | None = None
    data: tuple[int, int] | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size:
            break
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
        if chunk_id == b"fmt ":
            if chunk_size > _MAX_FMT_BYTES:
                raise AudioFileError(path, f"WAV 'fmt ' chunk of {chunk_size} bytes is implausible")
            fmt = _parse_fmt(path, f.read(chunk_size))
        elif chunk_id == b"data":
            # A truncated file (recording cut off) still has its samples: take what is there.
            data = (pos + 8, min(chunk_size, size - pos - 8))
            if fmt is not None:
                break
        pos += 8 + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    if fmt is None:
        raise AudioFileError(path, "WAV file has no 'fmt ' chunk")
    if data is None:
        raise AudioFileError(path, "WAV file has no 'data' chunk")
    offset, length = data
    return fmt, offset, length - length % fmt.block_align


def _parse_fmt(path: str | os.PathLike[str], body: bytes) -> _Format:
    if len(body) < 16:
        raise AudioFileError(path, "WAV 'fmt ' chunk is too short")
    code, channels, rate_hz, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if code == _FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise AudioFileError(path, "WAV extensible 'fmt ' chunk is too short")
        (code,) = struct.unpack_from("<H", body, 24)
    if not 1 <= channels <= _MAX_CHANNELS:
        raise AudioFileError(path, f"unsupported channel count {channels}")
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise AudioFileError(
            path, f"sample rate {rate_hz} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz"
        )
    if code == _FORMAT_PCM:
        if bits not in (8, 16, 24, 32):
            raise AudioFileError(path, f"unsupported PCM sample width {bits} bit (8/16/24/32 only)")
    elif code == _FORMAT_FLOAT:
        if bits not in (32, 64):
            raise AudioFileError(path, f"unsupported float sample width {bits} bit")
    else:
        raise AudioFileError(
            path, f"unsupported WAV encoding 0x{code:04x} (integer PCM or float only)"
        )
    if block_align != channels * bits // 8:
        raise AudioFileError(
            path, f"inconsistent block align {block_align} for {channels} ch x {bits} bit"
        )
    return _Format(code, channels, rate_hz, block_align, bits)


def _decode(path: str | os.PathLike[str], fmt: _Format, raw: bytes) -> npt.NDArray[np.float64]:
    """Samples as float64 on the int16 scale (full scale = 32768), channels averaged."""
    if fmt.code == _FORMAT_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if fmt.bits == 32 else "<f8")
        samples = floats.astype(np.float64) * 32768.0
    elif fmt.bits == 8:  # 8-bit WAV is unsigned, centred on 128
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif fmt.bits == 16:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif fmt.bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        samples = ints.astype(np.float64) / 256.0
    else:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    if not np.all(np.isfinite(samples)):
        raise AudioFileError(path, "WAV file contains NaN or infinite samples")
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1)
    return samples

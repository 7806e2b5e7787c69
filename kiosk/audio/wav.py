"""WAV files: read any PCM WAV as mono int16 at a chosen rate, write mono int16 WAV.

Owns file-level audio: questions fed to ``kiosk simulate``, recorded answers, test fixtures.
Reads 8/16/24/32-bit integer PCM and 32/64-bit float, mono or multi-channel (channels are
averaged), plain ``WAVE_FORMAT_PCM`` or ``WAVE_FORMAT_EXTENSIBLE`` (which Python 3.11's
``wave`` module refuses, hence the small RIFF reader here). Anything else raises
:class:`AudioFileError` with one line naming the file. Live streams are not handled here.
"""

from __future__ import annotations

import logging
import os
import struct
import wave
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soxr

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
# WAVE_FORMAT_EXTENSIBLE carries the real format in the first two bytes of its GUID.
_MAX_CHANNELS = 32


class AudioFileError(KioskError, ValueError):
    """An audio file is missing, unreadable or in a format kiosk does not read.

    ``str(err)`` is one line: ``<path>: <problem>``.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_wav_mono(path: str | os.PathLike[str], rate_hz: int) -> Int16Array:
    """Read a WAV file as mono int16 samples at ``rate_hz``.

    Channels are averaged; a different file rate is converted with soxr (HQ). A 16-bit mono
    file already at ``rate_hz`` comes back sample-exact.

    Raises:
        AudioFileError: missing/unreadable file, not RIFF/WAVE, no ``fmt``/``data`` chunk,
            or an unsupported encoding (compressed formats, odd sample widths).
    """
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise AudioFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    fmt, data = _parse_riff(path, raw)
    signal = _decode(path, fmt, data)  # float64, shape (frames,), scaled so int16 maps 1:1
    if fmt.rate_hz != rate_hz and signal.size:
        signal = soxr.resample(signal, fmt.rate_hz, rate_hz, quality="HQ")
    out: Int16Array = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    log.debug(
        "read %s: %d Hz %d ch %d bit -> %d samples at %d Hz",
        path,
        fmt.rate_hz,
        fmt.channels,
        fmt.bits,
        out.size,
        rate_hz,
    )
    return out


def wav_info(path: str | os.PathLike[str]) -> tuple[int, int, int, float]:
    """``(rate_hz, channels, bits, duration_s)`` of a WAV file; raises AudioFileError."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise AudioFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    fmt, data = _parse_riff(path, raw)
    frames = len(data) // fmt.block_align
    return fmt.rate_hz, fmt.channels, fmt.bits, frames / fmt.rate_hz


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


def _parse_riff(path: str | os.PathLike[str], raw: bytes) -> tuple[_Format, memoryview]:
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise AudioFileError(path, "not a WAV file (no RIFF/WAVE header)")
    view = memoryview(raw)
    fmt: _Format | None = None
    data: memoryview | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id = bytes(view[pos : pos + 4])
        (size,) = struct.unpack_from("<I", raw, pos + 4)
        body = view[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(path, bytes(body))
        elif chunk_id == b"data":
            # A truncated file (recording cut off) still has its samples: take what is there.
            data = body
            if fmt is not None:
                break
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None:
        raise AudioFileError(path, "WAV file has no 'fmt ' chunk")
    if data is None:
        raise AudioFileError(path, "WAV file has no 'data' chunk")
    usable = len(data) - len(data) % fmt.block_align
    return fmt, data[:usable]


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
    if rate_hz <= 0:
        raise AudioFileError(path, f"invalid sample rate {rate_hz}")
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


def _decode(
    path: str | os.PathLike[str], fmt: _Format, data: memoryview
) -> npt.NDArray[np.float64]:
    """Samples as float64 on the int16 scale (full scale = 32768), channels averaged."""
    raw = bytes(data)
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

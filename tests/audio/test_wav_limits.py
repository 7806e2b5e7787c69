"""Hostile and huge WAV input is refused in one line or streamed (issue 12, item 4).

Real files (sparse where they are big: no disk used), a real FIFO, ``/dev/zero`` and the
real ``kiosk simulate`` in a subprocess with an address-space limit, so a regression
fails with MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.wav import AudioFileError, WavReader, read_wav_mono, wav_info

FIXTURES = Path(__file__).parent.parent / "fixtures"
GIB = 1 << 30


def sparse_wav(path: Path, rate_hz: int, seconds: float, channels: int = 1) -> Path:
    """A 16-bit PCM WAV of silence whose data is a hole in the file (no disk used)."""
    block = channels * 2
    n = int(rate_hz * seconds) * block
    fmt = struct.pack("<HHIIHH", 1, channels, rate_hz, rate_hz * block, block, 16)
    header = (
        b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", n)
    )  # fmt: skip
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + n)
    return path


def limited(argv: list[str], address_space: int = 2 * GIB) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, preexec_fn=limit
    )


@pytest.mark.parametrize("rate_hz", [1, 2, 100, 7_999, 192_001, 4_000_000_000])
def test_absurd_sample_rates_are_refused_in_one_line(tmp_path: Path, rate_hz: int) -> None:
    path = sparse_wav(tmp_path / "odd.wav", 8000, 0.05)
    with open(path, "r+b") as f:  # patch the rate (and byte rate) in the fmt chunk
        f.seek(24)
        f.write(struct.pack("<II", rate_hz, (rate_hz * 2) & 0xFFFFFFFF))
    with pytest.raises(AudioFileError) as err:
        read_wav_mono(path, 16000)
    assert str(err.value) == f"{path}: sample rate {rate_hz} Hz is outside 8000-192000 Hz"


@pytest.mark.parametrize("rate_hz", [8_000, 192_000])
def test_the_extreme_plausible_rates_are_read(tmp_path: Path, rate_hz: int) -> None:
    path = sparse_wav(tmp_path / "ok.wav", rate_hz, 0.5)
    assert read_wav_mono(path, 16000).size == pytest.approx(8000, abs=2)


def test_simulate_refuses_dev_zero_and_a_fifo_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "question.wav"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    for source in ("/dev/zero", str(fifo)):
        proc = limited(
            [sys.executable, "-m", "kiosk.cli", "simulate", "--config", "/dev/null", "--fast",
             "--input", source, "--output", str(tmp_path / "out.wav")]
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-2000:]
        refused = "not a regular file (devices, pipes and folders are refused)"
        assert proc.stderr == f"kiosk: {source}: {refused}\n"


def test_a_one_hour_wav_streams_in_little_memory(tmp_path: Path) -> None:
    path = sparse_wav(tmp_path / "hour.wav", 24_000, 3600)  # 173 MB of samples
    assert wav_info(path) == (24_000, 1, 16, 3600.0)
    code = textwrap.dedent(
        f"""
        from kiosk.audio.wav import WavReader
        with WavReader({str(path)!r}) as reader:
            frames = sum(1 for _ in reader.frames_of(16000, 320))
        # VmHWM, not ru_maxrss: that one keeps the forking parent's (pytest's) peak.
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(frames, int(status.split()[0]) // 1024)
        """
    )
    proc = limited([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames, peak_mib = map(int, proc.stdout.split())
    assert frames == 3600 * 50
    # Before: the whole file, as float64 twice over, then resampled: 1.5 GB. Streaming
    # holds one block; the rest is the interpreter with numpy and soxr (~30 MB).
    assert peak_mib < 100, f"peak RSS {peak_mib} MiB"


def test_whole_file_reads_have_a_duration_limit(tmp_path: Path) -> None:
    path = sparse_wav(tmp_path / "long.wav", 16_000, 3.0)
    with pytest.raises(AudioFileError, match=r"long\.wav: 3 s long, over the 2 s limit$"):
        read_wav_mono(path, 16000, max_seconds=2)


def test_streamed_frames_match_the_whole_file_read() -> None:
    path = FIXTURES / "whats_the_weather_pcm16_24khz_mono.wav"
    whole = read_wav_mono(path, 16000)
    with WavReader(path) as reader:
        frames = list(reader.frames_of(16000, 320))
        again = np.concatenate(list(reader.blocks(16000, block_frames=1000)))
    streamed = np.frombuffer(b"".join(frames), dtype="<i2")
    assert streamed.size == whole.size // 320 * 320
    np.testing.assert_array_equal(streamed, whole[: streamed.size])
    np.testing.assert_array_equal(again, whole)  # block size does not change the result


def test_a_file_that_shrinks_while_streaming_ends_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    original = (np.arange(160_000) % 30_000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(original.tobytes())
    with WavReader(path) as reader:
        os.truncate(path, 44 + 1001)  # half a sample at the end
        samples = np.concatenate(list(reader.blocks(16000)))
    # What was read (and buffered) before the cut, never more: no error, no garbage.
    assert 500 <= samples.size < 20_000
    np.testing.assert_array_equal(samples, original[: samples.size])

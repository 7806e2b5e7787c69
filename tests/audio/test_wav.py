import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.wav import AudioFileError, WavSink, read_wav_mono, wav_info, write_wav
from kiosk.errors import KioskError
from tests.audio.helpers import dominant_freq_hz, rms_dbfs, tone

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _riff(fmt_body: bytes, data: bytes, extra_chunks: bytes = b"") -> bytes:
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + extra_chunks
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _fmt(code: int, channels: int, rate_hz: int, bits: int) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", code, channels, rate_hz, rate_hz * block, block, bits)


def _extensible_fmt(channels: int, rate_hz: int, bits: int, sub_code: int = 1) -> bytes:
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    ext = struct.pack("<HHI", 22, bits, 0x3) + struct.pack("<H", sub_code) + guid_tail
    return _fmt(0xFFFE, channels, rate_hz, bits) + ext


def _raw_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def test_16k_mono_fixture_read_at_16k_is_sample_exact() -> None:
    path = FIXTURES / "en_restroom_espeak_16k.wav"

    samples = read_wav_mono(path, 16000)

    assert samples.dtype == np.int16
    np.testing.assert_array_equal(samples, _raw_samples(path))


@pytest.mark.parametrize(
    "name",
    ["whats_the_weather_pcm16_24khz_mono.wav", "arc-easy-q237-tts.wav", "lobby_noise_16k.wav"],
)
def test_fixture_read_at_16k_has_duration_and_level_of_the_original(name: str) -> None:
    path = FIXTURES / name
    _rate_hz, channels, bits, duration_s = wav_info(path)
    original = _raw_samples(path)

    samples = read_wav_mono(path, 16000)

    assert (channels, bits) == (1, 16)
    assert samples.size == pytest.approx(duration_s * 16000, abs=2)
    assert rms_dbfs(samples) == pytest.approx(rms_dbfs(original), abs=1.0)


def test_stereo_file_is_averaged_to_mono(tmp_path: Path) -> None:
    left = tone(1000, 16000, 0.5, amplitude=0.4)
    right = np.zeros_like(left)
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())

    samples = read_wav_mono(path, 16000)

    assert samples.size == left.size
    assert np.abs(samples.astype(np.int32) - left.astype(np.int32) // 2).max() <= 1


@pytest.mark.parametrize("bits", [8, 24, 32])
def test_integer_pcm_of_other_widths_reads_as_the_same_tone(tmp_path: Path, bits: int) -> None:
    reference = tone(440, 8000, 0.5, amplitude=0.5)
    scaled = reference.astype(np.int64) << (bits - 16) if bits > 16 else reference
    if bits == 8:
        data = ((reference.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        ints = scaled.astype("<i4").tobytes()
        data = b"".join(ints[i : i + 3] for i in range(0, len(ints), 4))
    else:
        data = scaled.astype("<i4").tobytes()
    path = tmp_path / f"tone{bits}.wav"
    path.write_bytes(_riff(_fmt(1, 1, 8000, bits), data))

    samples = read_wav_mono(path, 8000)

    tolerance = 256 if bits == 8 else 0
    assert np.abs(samples.astype(np.int32) - reference).max() <= tolerance


def test_extensible_24_bit_stereo_at_48k_reads_as_mono_16k(tmp_path: Path) -> None:
    mono = tone(1000, 48000, 0.5, amplitude=0.5).astype(np.int32) << 8
    stereo = np.column_stack([mono, mono]).reshape(-1).astype("<i4").tobytes()
    data = b"".join(stereo[i : i + 3] for i in range(0, len(stereo), 4))
    path = tmp_path / "ext24.wav"
    # A LIST chunk before data, as many editors write: it must be skipped.
    list_chunk = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    path.write_bytes(_riff(_extensible_fmt(2, 48000, 24), data, extra_chunks=list_chunk))

    samples = read_wav_mono(path, 16000)

    assert samples.size == pytest.approx(8000, abs=2)
    assert dominant_freq_hz(samples[800:-800], 16000) == pytest.approx(1000, abs=2)
    assert rms_dbfs(samples[800:-800]) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)


def test_float32_file_reads_at_int16_scale(tmp_path: Path) -> None:
    floats = np.array([0.0, 0.5, -0.5, 1.0], dtype="<f4")
    path = tmp_path / "float.wav"
    path.write_bytes(_riff(_fmt(3, 1, 16000, 32), floats.tobytes()))

    assert read_wav_mono(path, 16000).tolist() == [0, 16384, -16384, 32767]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not a WAV file"),
        (b"ID3\x03 this is an mp3" * 4, "not a WAV file"),
        (_riff(_fmt(2, 1, 16000, 4), b"\x00" * 64), "unsupported WAV encoding 0x0002"),
        (_riff(_fmt(1, 1, 16000, 12), b"\x00" * 64), "unsupported PCM sample width 12"),
        (_riff(_extensible_fmt(1, 16000, 16, sub_code=0x55), b"\x00" * 64), "encoding 0x0055"),
        (_riff(_fmt(1, 0, 16000, 16), b""), "unsupported channel count 0"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no 'fmt ' chunk"),
    ],
)
def test_bad_file_raises_one_line_audio_file_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)

    with pytest.raises(AudioFileError, match=problem) as info:
        read_wav_mono(path, 16000)

    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, KioskError)
    assert isinstance(info.value, ValueError)


def test_file_without_data_chunk_raises_audio_file_error(tmp_path: Path) -> None:
    path = tmp_path / "nodata.wav"
    body = _fmt(1, 1, 16000, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 12 + 16) + b"WAVEfmt " + b"\x10\0\0\0" + body)

    with pytest.raises(AudioFileError, match="no 'data' chunk"):
        read_wav_mono(path, 16000)


def test_missing_file_raises_audio_file_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"

    with pytest.raises(AudioFileError, match=r"nope\.wav: cannot read"):
        read_wav_mono(path, 16000)


def test_truncated_data_chunk_reads_the_samples_present(tmp_path: Path) -> None:
    good = _riff(_fmt(1, 1, 16000, 16), tone(300, 16000, 0.1).tobytes())
    path = tmp_path / "cut.wav"
    path.write_bytes(good[: len(good) - 101])  # cut mid-sample, as a killed recorder leaves it

    samples = read_wav_mono(path, 16000)

    assert samples.size == 1600 - 51


def test_wav_sink_appends_frames_and_close_writes_a_readable_header(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    pcm = tone(500, 24000, 0.3)

    with WavSink(path, 24000) as sink:
        sink.write(pcm[:1000].tobytes())
        sink.write(pcm[1000:])
        assert sink.duration_ms == 300

    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
    np.testing.assert_array_equal(_raw_samples(path), pcm)


def test_wav_sink_write_after_close_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    sink = WavSink(tmp_path / "x.wav", 16000)
    sink.close()
    sink.close()

    with pytest.raises(ValueError, match="closed"):
        sink.write(b"\x00\x00")


def test_wav_sink_into_missing_directory_raises_audio_file_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="cannot write"):
        WavSink(tmp_path / "no" / "such" / "dir.wav", 16000)


def test_write_wav_round_trips_through_read_wav_mono(tmp_path: Path) -> None:
    path = tmp_path / "rt.wav"
    pcm = tone(800, 16000, 0.25)

    write_wav(path, pcm, 16000)

    np.testing.assert_array_equal(read_wav_mono(path, 16000), pcm)

import numpy as np
import pytest

from kiosk.audio.resample import Resampler
from tests.audio.helpers import dominant_freq_hz, tone


def _run_chunked(resampler: Resampler, pcm: bytes, chunk_bytes: int) -> bytes:
    out = bytearray()
    for start in range(0, len(pcm), chunk_bytes):
        out += resampler.process(pcm[start : start + chunk_bytes])
    out += resampler.flush()
    return bytes(out)


def _max_abs_diff(a: bytes, b: bytes) -> int:
    assert len(a) == len(b)
    x = np.frombuffer(a, dtype=np.int16).astype(np.int32)
    y = np.frombuffer(b, dtype=np.int16).astype(np.int32)
    return int(np.abs(x - y).max())


def test_equal_rates_pass_bytes_through_untouched() -> None:
    resampler = Resampler(16000, 16000)
    pcm = tone(440, 16000, 0.1).tobytes()

    assert resampler.is_passthrough
    assert resampler.process(pcm) == pcm
    assert resampler.flush() == b""


@pytest.mark.parametrize(
    ("in_rate_hz", "out_rate_hz"),
    [(24000, 16000), (48000, 16000), (44100, 16000), (16000, 24000), (24000, 48000)],
)
def test_streamed_tone_keeps_length_ratio_and_frequency(in_rate_hz: int, out_rate_hz: int) -> None:
    pcm = tone(1000, in_rate_hz, 1.0).tobytes()

    # 20 ms chunks plus one odd-sized chunk stream, as a PortAudio callback would deliver.
    out = _run_chunked(Resampler(in_rate_hz, out_rate_hz), pcm, in_rate_hz // 50 * 2)
    samples = np.frombuffer(out, dtype=np.int16)

    assert abs(samples.size - out_rate_hz) <= 2
    # Skip the filter's edges; the body of the tone must still be 1 kHz at the same level.
    body = samples[out_rate_hz // 10 : -out_rate_hz // 10]
    assert dominant_freq_hz(body, out_rate_hz) == pytest.approx(1000, abs=2)
    assert np.abs(body).max() == pytest.approx(0.5 * 32767, rel=0.02)


def test_chunks_split_inside_a_sample_give_the_same_output_as_whole_chunks() -> None:
    pcm = tone(700, 24000, 0.5).tobytes()

    whole = _run_chunked(Resampler(24000, 16000), pcm, 960)
    odd = _run_chunked(Resampler(24000, 16000), pcm, 957)

    # soxr's int16 rounding depends on block boundaries: a few LSB, never a lost sample.
    assert _max_abs_diff(odd, whole) <= 4


def test_reset_forgets_previous_stream() -> None:
    pcm = tone(500, 24000, 0.2).tobytes()
    fresh = _run_chunked(Resampler(24000, 16000), pcm, 960)
    resampler = Resampler(24000, 16000)
    resampler.process(tone(3000, 24000, 0.2).tobytes())

    resampler.reset()

    assert _max_abs_diff(_run_chunked(resampler, pcm, 960), fresh) <= 4


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), [(0, 16000), (16000, -1)])
def test_non_positive_rate_raises_value_error(in_rate_hz: int, out_rate_hz: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(in_rate_hz, out_rate_hz)


def test_soxr_loads_only_when_a_rate_is_converted() -> None:
    """An idle kiosk never maps soxr's extension (~0.45 MB RSS): importing the daemon, the
    link and the audio modules, a pass-through Resampler, and a lazy converting one nothing
    went through yet (the echo reference's, built at start-up), leave it unimported; its first
    chunk imports it (an eager one, a microphone's, at once)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import kiosk.daemon, kiosk.net.link, kiosk.audio.wav, kiosk.audio.pyaudio_io\n"
        "import kiosk.audio.pulse_host\n"
        "from kiosk.audio.resample import Resampler\n"
        "Resampler(16000, 16000).process(bytes(640))\n"
        "print('soxr' in sys.modules)\n"
        "r = Resampler(24000, 16000, lazy=True)\n"
        "assert r.flush() == b'' and r.delay_samples() == 0.0 and not r.is_passthrough\n"
        "r.reset()\n"
        "print('soxr' in sys.modules)\n"
        "r.process(bytes(480))\n"
        "print('soxr' in sys.modules)\n"
        "assert Resampler(16000, 24000)._stream is not None\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]

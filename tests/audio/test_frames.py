import pytest

from kiosk.audio.frames import FrameSlicer, frame_bytes, iter_frames


def test_frame_bytes_of_20_ms_at_16_khz_is_640() -> None:
    assert frame_bytes(16000, 20) == 640


def test_frame_that_is_not_whole_samples_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not a whole number"):
        frame_bytes(22050, 10)


def test_slicer_yields_exact_frames_and_keeps_the_remainder() -> None:
    slicer = FrameSlicer(16000, 10)  # 320-byte frames
    pcm = bytes(range(256)) * 4  # 1024 bytes

    first = list(slicer.push(pcm[:100]))
    rest = list(slicer.push(pcm[100:]))

    assert first == []
    assert rest == [pcm[0:320], pcm[320:640], pcm[640:960]]
    assert slicer.pending_bytes == 64


def test_slicer_clear_drops_partial_frame() -> None:
    slicer = FrameSlicer(16000, 10)
    list(slicer.push(b"\x01" * 300))

    slicer.clear()

    assert list(slicer.push(b"\x02" * 320)) == [b"\x02" * 320]


def test_iter_frames_drops_partial_tail_unless_padded() -> None:
    pcm = b"\x01" * 700  # two 320-byte frames and 60 bytes

    assert list(iter_frames(pcm, 16000, 10)) == [b"\x01" * 320] * 2
    padded = list(iter_frames(pcm, 16000, 10, pad=True))
    assert padded[-1] == b"\x01" * 60 + bytes(260)
    assert len(padded) == 3


def test_first_frame_at_or_above_agrees_with_the_endpointers_levels() -> None:
    """The hand-over rule (math.hypot, no numpy) finds the frame frame_levels_dbfs would,
    just above and just below each frame's own level, and for silence and empty frames."""
    import math

    import numpy as np

    from kiosk.audio.frames import first_frame_at_or_above
    from kiosk.core.endpointing import frame_levels_dbfs

    rng = np.random.default_rng(11)
    for _ in range(300):
        amplitude = 10 ** rng.uniform(0, 4.3)
        frames = [
            rng.normal(0, amplitude, 320).clip(-32768, 32767).astype(np.int16).tobytes()
            for _ in range(int(rng.integers(1, 5)))
        ]
        levels = frame_levels_dbfs(frames)
        for level in levels:
            for nudge in (-0.01, 0.01):
                want = next((i for i, x in enumerate(levels) if x >= level + nudge), None)
                assert first_frame_at_or_above(frames, level + nudge) == want
    silence = bytes(640)
    assert first_frame_at_or_above([silence, b"\x00\x40" * 320], -90.0) == 1
    assert first_frame_at_or_above([silence], -math.inf) == 0
    assert first_frame_at_or_above([b"\x01", silence], -200.0) is None
    assert first_frame_at_or_above([], -50.0) is None

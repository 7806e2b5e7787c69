"""The AEC bench's room process (bench/pulse_room.py) on synthetic blocks: no sound server.

A click the speaker plays comes back into the microphone through the room's impulse response
with its delay and gain; the visitor's onset lands where the room says it wrote it; the
speaker's silence after a pause is found on the room's clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def _room(ir: np.ndarray, rate: int = 48000, seconds: float = 1.0, **spec: object) -> object:
    from pulse_room import Room

    audio = np.zeros((int(seconds * rate), 2))
    clip = spec.pop("clip", None)
    return Room({"rate": rate, **spec}, audio, ir, clip)  # type: ignore[arg-type]


def test_a_click_comes_back_with_the_rooms_delay_and_gain() -> None:
    rate, delay = 48000, 700  # 14.6 ms: the echo spans two 10 ms blocks
    ir = np.zeros(2000)
    ir[delay] = 10 ** (-12 / 20)
    room = _room(ir, rate)
    block = room.block  # type: ignore[attr-defined]
    speaker = np.zeros(block * 6, dtype="<i2")
    speaker[block + 5] = 20000  # a click in the second block
    mic = np.concatenate([room.step(speaker[i : i + block]) for i in range(0, speaker.size, block)])  # type: ignore[attr-defined]
    assert mic.shape == (block * 6, 2)
    peak = int(np.argmax(np.abs(mic[:, 0])))
    assert peak == block + 5 + delay
    gain_db = 20 * np.log10(abs(int(mic[peak, 0])) / 20000)
    assert gain_db == pytest.approx(-12, abs=0.05)
    assert np.array_equal(mic[:, 0], mic[:, 1])  # the echo reaches both channels


def test_the_visitors_onset_is_placed_after_the_answer_became_audible() -> None:
    rate = 48000
    clip = np.zeros(rate)
    clip[int(0.25 * rate) :] = 3000.0  # speech starts 0.25 s into the clip
    spec = {"interruption": {"after_answer_s": 0.5, "onset_in_clip_s": 0.25, "end_in_clip_s": 0.9}}
    room = _room(np.array([0.0, 0.0]), rate, seconds=3.0, clip=clip, **spec)
    block = room.block  # type: ignore[attr-defined]
    quiet = np.zeros(block, dtype="<i2")
    loud = np.full(block, 3000, dtype="<i2")
    out = [room.step(quiet) for _ in range(10)]  # type: ignore[attr-defined]
    room.command("answer")  # type: ignore[attr-defined]
    out += [room.step(quiet) for _ in range(5)]  # type: ignore[attr-defined]
    out += [room.step(loud) for _ in range(150)]  # type: ignore[attr-defined]
    audible = 15 * block
    assert room.audible_k == audible  # type: ignore[attr-defined]
    assert room.onset_k == audible + int(0.5 * rate)  # type: ignore[attr-defined]
    mic = np.concatenate(out)[:, 0]
    first = int(np.nonzero(np.abs(mic) > 100)[0][0])
    assert first == room.onset_k  # type: ignore[attr-defined]
    assert room.onset_mono is not None  # type: ignore[attr-defined]


def test_silence_after_a_pause_is_found_on_the_rooms_clock() -> None:
    from pulse_room import silent_from

    rate, block = 48000, 480
    speaker = np.full(rate, 1000, dtype="<i2")
    speaker[20_000:20_500] = 0  # a word gap (10 ms): not a pause
    speaker[30_000:] = 0  # the pause
    block_mono = 100.0 + np.arange(rate // block) * 0.01  # block i handled at 100 + i*10 ms
    t_stop = 100.0 + 30_500 / rate  # the kiosk paused just before the room saw the silence
    assert silent_from(speaker, block_mono, block, t_stop, from_k=25_000, rate=rate) == 30_000
    # never before the visitor's onset
    assert silent_from(speaker, block_mono, block, t_stop, from_k=31_000, rate=rate) == 31_000
    # a paused speaker that never fell silent in the recording
    assert silent_from(np.full(rate, 1000, dtype="<i2"), block_mono, block, t_stop, 0, rate=rate) is None


def test_the_rigs_pipe_glitches_are_counted_from_pacat_and_parec_status_lines() -> None:
    """pacat/parec -v rewrite a "Time: ...; Latency: N usec." status line with \\r and print
    "Stream underrun." / "Stream overrun." when the rig's own pipe glitches."""
    from pulse_room import PipeGlitches, pipe_glitch_counts

    room = _room(np.array([1.0]), 48000, seconds=3.0)
    glitches = PipeGlitches(room)  # type: ignore[arg-type]
    for us in (15556, 9876, 14876):
        glitches.hear(f"Time: 0.1 sec; Latency: {us} usec.", "pacat")
    assert pipe_glitch_counts([glitches.seen]) == {"pacat_underruns": 0, "parec_overruns": 0}
    room.k = 48000  # type: ignore[attr-defined]  # room time 1 s
    glitches.hear("Time: 1.0 sec; Latency: 9846 usec.        Stream underrun.\x1b[K", "pacat")
    glitches.hear("Time: 1.1 sec; Latency: 19793 usec.", "pacat")
    glitches.hear("Time: 1.2 sec; Latency: 19693 usec.", "pacat")
    glitches.hear("Time: 1.2 sec; Latency: 90000 usec.", "parec")  # parec's own: not the mic's
    glitches.hear("Stream overrun.", "parec")
    glitches.close_second()
    assert pipe_glitch_counts([glitches.seen]) == {"pacat_underruns": 1, "parec_overruns": 1}
    assert glitches.seen["pacat_underruns"][0][1] == 1.0
    assert glitches.seen["pacat_latency_ms_per_s"] == [(0, 14.9), (1, 19.7)]

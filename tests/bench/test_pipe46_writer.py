"""pipe46: the room's seek-absolute microphone writer's plumbing, without a sound server: the pipe
option's parsing, the room spec's keys, and how a row reports the writer's gaps and latencies."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def test_abs_pipes_parse_beside_pacat_ones_and_main_stays_the_default() -> None:
    from pulse_aec import DEFAULT_PIPE, parse_pipes, pipe_spec
    from pulse_room import pipe_setting

    assert parse_pipes("abs20,80") == ["abs20", "80"]
    assert pipe_spec("abs20") == {"abs_ms": 20, "rt": False}
    assert pipe_spec("80") == {"pacat_ms": 80, "rt": False}
    with pytest.raises(ValueError):
        parse_pipes("abs")
    assert DEFAULT_PIPE == "20"
    assert pipe_setting({}) == {"pacat_ms": 20, "parec_ms": 10, "rt": False}  # old commands, old rows
    assert pipe_setting(pipe_spec("abs20")) == {"pacat_ms": None, "parec_ms": 10, "rt": False, "abs_ms": 20}


def test_lost_blocks_in_a_row_make_one_gap_with_their_length() -> None:
    from pipe46_writer import gaps

    rate, frame, block = 48000, 4, 480
    blocks = [(1.0 + i / 100, i * block, 20000, 0) for i in range(10)]
    blocks[3] = (1.03, 3 * block, -5000, block * frame)  # a whole block lost
    blocks[4] = (1.04, 4 * block, 5000, 240 * frame)  # half of the next
    blocks[8] = (1.08, 8 * block, -1000, 48 * frame)
    assert gaps(blocks, rate, frame) == [(1.03, 0.03, 15.0), (1.08, 0.08, 1.0)]


def test_a_row_reports_gaps_and_lone_underflows_as_pacat_underruns() -> None:
    from pipe46_writer import RoomPipe

    rate, block, frame = 48000, 480, 4
    blocks = [(100.0 + i / 100, i * block, 20000, 0) for i in range(300)]
    blocks[150] = (101.5, 150 * block, -2000, block * frame)
    writer = SimpleNamespace(blocks=blocks, frame=frame, rebased_us=-3000,
                             underflows=[100.05, 101.52, 102.5])  # start / with the gap / alone
    room = SimpleNamespace(rate=rate, block=block, k=0)
    glitches = SimpleNamespace(latency_samples=[])
    out = RoomPipe(writer, room).report(glitches)  # type: ignore[arg-type]
    assert out["abs_gaps"] == [(101.5, 1.5, 10.0)]
    assert out["abs_underflows"] == [(101.52, 1.52), (102.5, 2.5)]
    assert out["pacat_underruns"] == [(101.5, 1.5), (102.5, 2.5)]
    assert out["abs_lost_ms"] == 10.0 and out["abs_rebased_ms"] == -3.0
    # pacat's status-line latency: a block's start latency + half a block (5 ms)
    assert glitches.latency_samples[0] == (0.0, 25000)
    assert out["pacat_latency_ms_per_s"][0] == (0, 25.0)


def test_a_gap_while_the_stream_starts_is_no_glitch() -> None:
    from pipe46_writer import RoomPipe

    rate, block, frame = 48000, 480, 4
    blocks = [(100.0 + i / 100, i * block, 20000, 0) for i in range(300)]
    blocks[0] = (100.0, 0, -1000, 200 * frame)  # block 0 behind the sink at the first write
    writer = SimpleNamespace(blocks=blocks, frame=frame, rebased_us=0, underflows=[])
    room = SimpleNamespace(rate=rate, block=block, k=0)
    out = RoomPipe(writer, room).report(SimpleNamespace(latency_samples=[]))  # type: ignore[arg-type]
    assert out["pacat_underruns"] == [] and out["abs_gaps"] == []
    assert out["abs_start_gaps"] == [(100.0, 0.0, 4.17)]

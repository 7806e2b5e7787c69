import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.audio.playback import PlaybackBuffer


def _pcm(value: int, n_samples: int) -> bytes:
    return np.full(n_samples, value, dtype=np.int16).tobytes()


def _samples(pcm: bytes) -> list[int]:
    return np.frombuffer(pcm, dtype=np.int16).tolist()


def test_empty_buffer_reads_silence_of_the_exact_size() -> None:
    buffer = PlaybackBuffer()

    assert buffer.read(480) == bytes(960)
    assert buffer.is_idle
    assert buffer.playing_item is None


def test_read_returns_items_in_order_and_zero_pads_the_tail() -> None:
    buffer = PlaybackBuffer()
    buffer.write(_pcm(1, 3), "a")
    buffer.write(_pcm(2, 2), "b")

    out = buffer.read(8)

    assert _samples(out) == [1, 1, 1, 2, 2, 0, 0, 0]
    assert buffer.is_idle


def test_partial_reads_split_chunks_without_losing_samples() -> None:
    buffer = PlaybackBuffer()
    buffer.write(np.arange(10, dtype=np.int16).tobytes(), "a")

    parts = [buffer.read(3) for _ in range(4)]

    assert _samples(b"".join(parts)) == [*range(10), 0, 0]


def test_a_recycled_item_id_counts_the_new_answer_from_zero() -> None:
    # Item ids are unique per connection only: after a reconnect the next answer may reuse
    # one, and a carried-over count would truncate it past the audio sent (soak: 20000 ms
    # of an answer that had sent 400, refused by the server).
    buffer = PlaybackBuffer(rate_hz=24000)
    buffer.write(_pcm(1, 4800), "item_0001")
    buffer.read(4800)
    assert buffer.played_ms("item_0001") == 200
    buffer.restart_item("item_0001")
    buffer.write(_pcm(2, 2400), "item_0001")
    buffer.read(1200)
    assert buffer.played_ms("item_0001") == 50


def test_played_ms_counts_only_samples_read_per_item() -> None:
    buffer = PlaybackBuffer(rate_hz=24000)
    buffer.write(_pcm(1, 2400), "item_a")  # 100 ms
    buffer.write(_pcm(2, 4800), "item_b")  # 200 ms

    buffer.read(1200)  # 50 ms of a
    assert buffer.played_ms("item_a") == 50
    assert buffer.played_ms("item_b") == 0
    assert buffer.playing_item == "item_a"

    buffer.read(2400)  # rest of a, 50 ms of b
    assert buffer.played_ms("item_a") == 100
    assert buffer.played_ms("item_b") == 50
    assert buffer.playing_item == "item_b"
    assert buffer.pending_ms == pytest.approx(150)


def test_flush_drops_pending_audio_and_keeps_played_ms() -> None:
    buffer = PlaybackBuffer(rate_hz=24000)
    buffer.write(_pcm(5, 24000), "item_a")
    buffer.read(7200)  # 300 ms played

    buffer.flush()

    assert buffer.is_idle
    assert buffer.pending_ms == 0
    assert buffer.playing_item is None
    assert buffer.read(100) == bytes(200)
    assert buffer.played_ms("item_a") == 300


def test_earcon_plays_at_once_mixed_over_answer_and_is_not_counted() -> None:
    buffer = PlaybackBuffer(rate_hz=1000)
    buffer.write(_pcm(100, 10), "item_a")
    buffer.write(_pcm(7, 4))  # earcon

    assert buffer.earcon_active
    out = _samples(buffer.read(6))

    assert out == [107, 107, 107, 107, 100, 100]
    assert buffer.played_ms("item_a") == 6
    assert buffer.pending_ms == pytest.approx(4)


def test_earcon_alone_is_played_and_stays_active_for_the_block_that_carried_it() -> None:
    buffer = PlaybackBuffer(rate_hz=1000)
    buffer.write(_pcm(9, 5))

    assert _samples(buffer.read(3)) == [9, 9, 9]
    assert buffer.earcon_active
    assert _samples(buffer.read(3)) == [9, 9, 0]
    assert buffer.earcon_active  # its tail is in the speaker's block right now
    assert buffer.is_idle

    buffer.read(3)
    assert not buffer.earcon_active
    assert buffer.playing_item is None


def test_mixing_saturates_instead_of_wrapping() -> None:
    buffer = PlaybackBuffer()
    buffer.write(_pcm(30000, 2), "a")
    buffer.write(_pcm(30000, 2))
    buffer.write(_pcm(-30000, 1), "b")
    buffer.write(_pcm(-30000, 1))

    assert _samples(buffer.read(3)) == [32767, 32767, -32768]


def test_odd_byte_chunk_drops_only_the_trailing_byte() -> None:
    buffer = PlaybackBuffer(rate_hz=1000)

    buffer.write(_pcm(3, 2) + b"\x01", "a")

    assert _samples(buffer.read(3)) == [3, 3, 0]


def test_played_ms_of_unknown_item_is_zero() -> None:
    assert PlaybackBuffer().played_ms("never") == 0


def test_played_ms_memory_is_bounded_to_recent_items() -> None:
    buffer = PlaybackBuffer(rate_hz=1000)
    for i in range(100):
        buffer.write(_pcm(1, 1), f"item_{i}")
    buffer.read(100)

    assert buffer.played_ms("item_99") == 1
    assert buffer.played_ms("item_0") == 0


def test_concurrent_writer_and_reader_lose_and_duplicate_nothing() -> None:
    """Smoke test: an asyncio-side writer and a callback-side reader at full speed."""
    buffer = PlaybackBuffer(rate_hz=24000)
    total_samples = 240_000
    chunk = 480
    reads: list[bytes] = []
    writer_done = threading.Event()

    def writer() -> None:
        for start in range(0, total_samples, chunk):
            values = (np.arange(start, start + chunk) % 30000 + 1).astype(np.int16)
            buffer.write(values.tobytes(), "item")
        writer_done.set()

    def reader() -> None:
        while not (writer_done.is_set() and buffer.is_idle):
            reads.append(buffer.read(256))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)

    played = np.frombuffer(b"".join(reads), dtype=np.int16)
    played = played[played != 0]  # underrun padding
    expected = (np.arange(total_samples) % 30000 + 1).astype(np.int16)
    np.testing.assert_array_equal(played, expected)
    assert buffer.played_ms("item") == total_samples * 1000 // 24000


def test_non_positive_read_returns_nothing() -> None:
    buffer = PlaybackBuffer()
    buffer.write(_pcm(1, 4), "a")

    assert buffer.read(0) == b""
    assert buffer.pending_ms > 0


@st.composite
def _operations(draw: st.DrawFn) -> list[tuple[str, int, str | None]]:
    ops = st.one_of(
        st.tuples(st.just("write"), st.integers(1, 50), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("earcon"), st.integers(1, 50), st.none()),
        st.tuples(st.just("read"), st.integers(1, 80), st.none()),
        st.tuples(st.just("flush"), st.just(0), st.none()),
    )
    return draw(st.lists(ops, max_size=40))


@given(_operations())
def test_buffer_matches_a_simple_model_under_any_operation_sequence(
    operations: list[tuple[str, int, str | None]],
) -> None:
    """Answer samples come out in order, once; earcons add on top; played counts add up."""
    buffer = PlaybackBuffer(rate_hz=1000)
    speech: list[tuple[int, str]] = []  # (value, item) per pending sample
    earcon: list[int] = []
    played: dict[str, int] = {}
    counter = 0
    for op, n, item in operations:
        if op == "write" and item is not None:
            values = list(range(counter + 1, counter + n + 1))
            counter += n
            buffer.write(np.array(values, dtype=np.int16).tobytes(), item)
            speech += [(v, item) for v in values]
            played.setdefault(item, 0)
        elif op == "earcon":
            buffer.write(_pcm(1000, n))
            earcon += [1000] * n
        elif op == "read":
            out = _samples(buffer.read(n))
            taken, speech = speech[:n], speech[n:]
            tone, earcon = earcon[:n], earcon[n:]
            expected = [0] * n
            for i, (value, owner) in enumerate(taken):
                expected[i] += value
                played[owner] += 1
            for i, value in enumerate(tone):
                expected[i] += value
            assert out == [max(-32768, min(32767, v)) for v in expected]
        else:
            buffer.flush()
            speech, earcon = [], []
        assert buffer.is_idle == (not speech and not earcon)
        assert buffer.playing_item == (speech[0][1] if speech else None)
    for item, samples in played.items():
        assert buffer.played_ms(item) == samples


def test_hold_outputs_silence_without_consuming_or_counting_then_resumes() -> None:
    from kiosk.audio.playback import PlaybackBuffer

    buf = PlaybackBuffer(1000)
    buf.write(b"\x01\x00" * 100, "item")
    assert buf.read(10) == b"\x01\x00" * 10
    buf.hold(True)
    assert buf.held and buf.read(10) == bytes(20)
    assert buf.played_ms("item") == 10 and buf.pending_ms == 90
    buf.hold(False)
    assert buf.read(90) == b"\x01\x00" * 90
    assert buf.played_ms("item") == 100 and buf.is_idle


def test_flush_releases_a_hold() -> None:
    from kiosk.audio.playback import PlaybackBuffer

    buf = PlaybackBuffer(1000)
    buf.write(b"\x01\x00" * 100, "item")
    buf.hold(True)
    buf.flush()
    assert not buf.held


def test_rewind_puts_the_last_samples_taken_back_in_order_and_uncounts_them() -> None:
    # A sink that dropped what its device still held on a pause hands it back: the answer
    # resumes exactly where the listener stopped hearing it, across items, and truncate's
    # count is what was heard.
    buf = PlaybackBuffer(1000)
    buf.write(np.arange(1, 31, dtype=np.int16).tobytes(), "a")
    buf.write(np.arange(100, 120, dtype=np.int16).tobytes(), "b")
    assert _samples(buf.read(40)) == [*range(1, 31), *range(100, 110)]
    buf.hold(True)
    assert buf.rewind(15) == 15
    assert buf.played_ms("a") == 25 and buf.played_ms("b") == 0
    assert buf.playing_item == "a" and buf.pending_ms == 25
    buf.hold(False)
    assert _samples(buf.read(25)) == [*range(26, 31), *range(100, 120)]
    assert buf.played_ms("a") == 30 and buf.played_ms("b") == 20 and buf.is_idle


def test_rewind_gives_back_at_most_what_is_kept_and_no_earcons() -> None:
    from kiosk.audio.playback import REWIND_KEEP_MS

    buf = PlaybackBuffer(1000)
    keep = REWIND_KEEP_MS  # samples at 1 kHz
    buf.write(_pcm(3, keep * 3), "a")
    buf.write(_pcm(9, 50))  # an earcon, mixed over the answer
    for _ in range(keep * 2 // 10):
        buf.read(10)
    back = buf.rewind(keep * 3)
    assert keep <= back < keep + 10
    assert buf.played_ms("a") == keep * 2 - back
    assert _samples(buf.read(back)) == [3] * back  # the answer alone, no earcon again


def test_a_flush_forgets_what_could_be_rewound() -> None:
    buf = PlaybackBuffer(1000)
    buf.write(_pcm(1, 100), "a")
    buf.read(50)
    buf.flush()
    assert buf.rewind(50) == 0 and buf.is_idle


def test_halt_listeners_hear_each_pause_once_and_every_flush() -> None:
    buf = PlaybackBuffer(1000)
    heard: list[bool] = []
    buf.add_halt_listener(heard.append)
    buf.write(_pcm(1, 100), "a")
    buf.hold(True)
    buf.hold(True)  # still the same pause
    buf.hold(False)
    buf.hold(False)
    buf.hold(True)
    buf.flush()
    assert heard == [True, True, False]
    buf.remove_halt_listener(heard.append)
    buf.flush()
    assert heard == [True, True, False]

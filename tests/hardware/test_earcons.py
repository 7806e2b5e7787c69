"""Generated earcons: every cue renders, is short, click-free, at the asked volume, and
the pitch moves the way the cue promises (up for wake / unmute, down for end / mute)."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.audio.earcons import EARCON_NAMES, earcon_ms, render_earcon


def samples(name: str, rate_hz: int = 24000, volume: float = 0.3) -> np.ndarray:
    return np.frombuffer(render_earcon(name, rate_hz, volume), dtype="<i2").astype(np.float64)


def dominant_hz(x: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate_hz)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("name", EARCON_NAMES)
def test_each_earcon_is_short_and_starts_and_ends_silent(name: str) -> None:
    x = samples(name)
    assert 50 <= earcon_ms(name) <= 700
    assert abs(x[0]) <= 1 and abs(x[-1]) <= 1  # no click at either end
    assert np.max(np.abs(x)) == pytest.approx(0.3 * 32767, abs=2)


@pytest.mark.parametrize("name", EARCON_NAMES)
def test_volume_scales_the_peak_and_zero_is_silence(name: str) -> None:
    assert np.max(np.abs(samples(name, volume=1.0))) == pytest.approx(32767, abs=2)
    assert not np.any(samples(name, volume=0.0))


@pytest.mark.parametrize(("name", "direction"), [("wake", 1), ("listening_end", -1), ("error", -1)])
def test_two_note_cues_move_in_pitch_the_right_way(name: str, direction: int) -> None:
    x = samples(name)
    half = len(x) * 7 // 18  # the first note is 70 of 180 ms (140 of 360 for error)
    first, second = dominant_hz(x[:half], 24000), dominant_hz(x[half:], 24000)
    assert (second - first) * direction > 100


@pytest.mark.parametrize(("name", "direction"), [("mute_on", -1), ("mute_off", 1)])
def test_mute_glides_fall_for_on_and_rise_for_off(name: str, direction: int) -> None:
    x = samples(name)
    q = len(x) // 4
    assert (dominant_hz(x[-q:], 24000) - dominant_hz(x[:q], 24000)) * direction > 50


def test_thinking_tick_is_mostly_silence_so_it_loops_calmly() -> None:
    x = samples("thinking")
    loud = np.abs(x) > 0.01 * 32767
    assert loud.mean() < 0.1
    assert earcon_ms("thinking") == pytest.approx(600, abs=5)


def test_render_at_16k_has_the_same_duration() -> None:
    assert earcon_ms("wake", 16000) == pytest.approx(earcon_ms("wake", 24000), abs=1)


@pytest.mark.parametrize(
    ("name", "rate_hz", "volume", "message"),
    [
        ("beep", 24000, 0.3, "unknown earcon 'beep'"),
        ("wake", 100, 0.3, "rate_hz"),
        ("wake", 24000, 1.5, "volume"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(
    name: str, rate_hz: int, volume: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_earcon(name, rate_hz, volume)


def test_thinking_plays_once_when_a_search_starts_before_the_answer() -> None:
    from kiosk.audio.earcons import earcon_subscriber
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.core.events import State, StateChanged, ToolCallStarted

    playback = PlaybackBuffer(24000)
    on_event = earcon_subscriber(playback, 0.3, 24000)
    tick = len(render_earcon("thinking", 24000, 0.3)) // 2

    on_event(ToolCallStarted(0.0, 1, "search"))  # idle: not a turn's search
    assert playback.is_idle
    on_event(StateChanged(1.0, State.LISTENING, State.THINKING, "speech ended", 1))
    on_event(ToolCallStarted(1.1, 1, "search"))
    on_event(ToolCallStarted(1.2, 1, "report_grounding"))  # once per turn
    assert any(playback.read(10 * tick))  # the tick, then silence padding
    assert playback.is_idle
    on_event(StateChanged(2.0, State.THINKING, State.SPEAKING, "answer", 1))
    on_event(ToolCallStarted(2.1, 1, "search"))  # the answer has begun: no tick over it
    assert playback.is_idle

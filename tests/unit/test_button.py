"""Button gesture classification with a float clock (kiosk.core.button)."""

from __future__ import annotations

from typing import cast

import pytest

from kiosk.core.button import (
    ButtonGestures,
    ButtonPressed,
    ButtonTapped,
    Gesture,
    MuteSwitchChanged,
    MuteSwitchGestures,
    MuteToggled,
    PushToTalkEnded,
    PushToTalkStarted,
)


def near(x: float) -> float:
    """pytest.approx typed as the float field it stands in for (gesture times are sums)."""
    return cast(float, pytest.approx(x))


def run_until(g: ButtonGestures | MuteSwitchGestures, until: float) -> list[Gesture]:
    """Fire every deadline up to ``until`` the way the adapter's loop.call_at would."""
    out: list[Gesture] = []
    while (d := g.next_deadline()) is not None and d <= until:
        out += g.on_deadline(d)
    return out


def press_for(g: ButtonGestures, start: float, held_s: float) -> list[Gesture]:
    out = g.edge(True, start)
    out += run_until(g, start + held_s)
    out += g.edge(False, start + held_s)
    return out + run_until(g, start + held_s + 1.0)


def kinds(gestures: list[Gesture]) -> list[str]:
    return [type(x).__name__ for x in gestures]


def test_short_press_emits_pressed_then_tapped() -> None:
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    out = press_for(g, 10.0, 0.2)
    assert out == [ButtonPressed(t_s=10.0), ButtonTapped(t_s=10.2, held_s=near(0.2))]


def test_pressed_is_emitted_on_the_press_edge_itself() -> None:
    g = ButtonGestures()
    assert g.edge(True, 1.0) == [ButtonPressed(t_s=1.0)]


def test_hold_past_hold_s_starts_push_to_talk_and_release_ends_it() -> None:
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    out = press_for(g, 0.0, 1.5)
    assert out == [
        ButtonPressed(t_s=0.0),
        PushToTalkStarted(t_s=0.5),
        PushToTalkEnded(t_s=1.5, held_s=near(1.5)),
    ]


def test_hold_past_long_press_toggles_mute_and_release_emits_nothing_more() -> None:
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    g.edge(True, 0.0)
    assert run_until(g, 2.99) == [PushToTalkStarted(t_s=0.5)]
    assert run_until(g, 3.0) == [MuteToggled(t_s=3.0)]
    assert g.edge(False, 4.2) == []
    assert g.next_deadline() is not None  # the release's lock-out window
    assert run_until(g, 10.0) == []


def test_long_press_threshold_is_configurable() -> None:
    g = ButtonGestures(hold_s=0.4, long_press_s=1.0, debounce_ms=0)
    assert kinds(press_for(g, 0.0, 1.2)) == ["ButtonPressed", "PushToTalkStarted", "MuteToggled"]


def test_contact_chatter_inside_debounce_window_is_one_tap() -> None:
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    out: list[Gesture] = []
    # press with bounce: down, up, down within 10 ms
    for t, level in [(0.000, True), (0.004, False), (0.008, True), (0.012, False), (0.015, True)]:
        out += g.edge(level, t)
    out += run_until(g, 0.2)
    # release with bounce
    for t, level in [(0.200, False), (0.203, True), (0.206, False)]:
        out += g.edge(level, t)
    out += run_until(g, 1.0)
    assert kinds(out) == ["ButtonPressed", "ButtonTapped"]
    assert out[1] == ButtonTapped(t_s=0.2, held_s=near(0.2))


def test_release_inside_lockout_window_is_not_lost() -> None:
    # A genuine 20 ms blip: the release arrives inside the 30 ms window and nothing follows.
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    out = g.edge(True, 0.0) + g.edge(False, 0.020)
    assert g.next_deadline() == pytest.approx(0.030)
    out += run_until(g, 5.0)
    assert kinds(out) == ["ButtonPressed", "ButtonTapped"]
    assert out[1].t_s == pytest.approx(0.030)
    assert not g.is_pressed


def test_late_deadline_call_still_classifies_release_after_hold_as_push_to_talk() -> None:
    # The adapter's timer never fired (busy loop): the release edge catches up first.
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    g.edge(True, 0.0)
    out = g.edge(False, 1.0)
    assert out == [PushToTalkStarted(t_s=0.5), PushToTalkEnded(t_s=1.0, held_s=near(1.0))]


def test_repeated_same_level_edges_are_ignored() -> None:
    g = ButtonGestures(debounce_ms=0)
    assert g.edge(True, 0.0) == [ButtonPressed(t_s=0.0)]
    assert g.edge(True, 0.1) == []
    assert g.edge(False, 0.2) == [ButtonTapped(t_s=0.2, held_s=near(0.2))]
    assert g.edge(False, 0.3) == []


def test_two_taps_in_a_row_give_two_taps() -> None:
    g = ButtonGestures(hold_s=0.5, long_press_s=3.0, debounce_ms=30)
    out = press_for(g, 0.0, 0.1) + press_for(g, 2.0, 0.1)
    assert kinds(out) == ["ButtonPressed", "ButtonTapped", "ButtonPressed", "ButtonTapped"]


def test_idle_button_has_no_deadline() -> None:
    assert ButtonGestures().next_deadline() is None


@pytest.mark.parametrize(
    ("hold_s", "long_press_s", "debounce_ms"),
    [(0.0, 3.0, 30), (0.5, 0.5, 30), (0.5, 0.4, 30), (0.5, 3.0, -1), (0.5, 3.0, 500)],
)
def test_contradictory_timings_raise_value_error(
    hold_s: float, long_press_s: float, debounce_ms: float
) -> None:
    with pytest.raises(ValueError, match="need"):
        ButtonGestures(hold_s=hold_s, long_press_s=long_press_s, debounce_ms=debounce_ms)


def test_mute_switch_closing_and_opening_reports_position() -> None:
    s = MuteSwitchGestures(debounce_ms=30)
    out = s.edge(True, 1.0) + s.edge(False, 1.01) + s.edge(True, 1.02)  # chatter
    out += run_until(s, 2.0)
    out += s.edge(False, 5.0) + run_until(s, 6.0)
    assert out == [MuteSwitchChanged(t_s=1.0, muted=True), MuteSwitchChanged(t_s=5.0, muted=False)]


def test_mute_switch_starting_closed_reports_only_changes() -> None:
    s = MuteSwitchGestures(debounce_ms=30, initially_muted=True)
    assert s.muted
    assert s.edge(True, 0.0) == []
    assert s.edge(False, 1.0) == [MuteSwitchChanged(t_s=1.0, muted=False)]


def test_mute_switch_blip_shorter_than_window_settles_back() -> None:
    s = MuteSwitchGestures(debounce_ms=30)
    out = s.edge(True, 0.0) + s.edge(False, 0.01) + run_until(s, 1.0)
    assert out == [
        MuteSwitchChanged(t_s=0.0, muted=True),
        MuteSwitchChanged(t_s=near(0.03), muted=False),
    ]

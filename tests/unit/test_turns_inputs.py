"""kiosk.core.turns: button gestures mapped to turn inputs, the invariants any input sequence
keeps (hypothesis), tool rounds after a spoken preamble and the device-error latch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core import button
from kiosk.core.events import State, TurnStarted
from kiosk.core.turns import (
    INPUT_TYPES,
    AnswerAudioReceived,
    ButtonPressed,
    ButtonTapped,
    CancelResponse,
    DeviceRecovered,
    EndTurn,
    FlushPlayback,
    MuteToggled,
    PlaybackDrained,
    Publish,
    PushToTalkEnded,
    PushToTalkStarted,
    StartUpstream,
    StopUpstream,
    ToolRoundFinished,
    TurnInput,
    TurnMachine,
    UpstreamFailed,
    turn_input_for_gesture,
)
from tests.unit.helpers import (
    assert_effects,
    assert_state_change,
)

from .turns_expected import (
    T0,
    TIMEOUTS,
    S,
    machine_in,
    make_input,
)

# --- button gestures to turn inputs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("gesture", "expected"),
    [
        (button.ButtonPressed(t_s=1.0), ButtonPressed()),
        (button.ButtonTapped(t_s=1.0, held_s=0.2), ButtonTapped()),
        (button.PushToTalkStarted(t_s=1.0), PushToTalkStarted()),
        (button.PushToTalkEnded(t_s=1.0, held_s=2.0), PushToTalkEnded()),
        (button.MuteToggled(t_s=1.0), MuteToggled()),
    ],
    ids=lambda v: type(v).__name__,
)
def test_button_gesture_maps_to_its_turn_input(gesture: object, expected: TurnInput) -> None:
    assert turn_input_for_gesture(gesture, S.IDLE) == expected


@pytest.mark.parametrize(
    ("muted", "state", "toggles"),
    [
        (True, S.IDLE, True),
        (True, S.MUTED, False),
        (False, S.MUTED, True),
        (False, S.SPEAKING, False),
    ],
)
def test_mute_switch_toggles_only_when_position_differs_from_state(
    muted: bool, state: State, toggles: bool
) -> None:
    result = turn_input_for_gesture(button.MuteSwitchChanged(t_s=1.0, muted=muted), state)
    assert result == (MuteToggled() if toggles else None)


def test_unknown_gesture_maps_to_nothing() -> None:
    assert turn_input_for_gesture(object(), S.IDLE) is None


# --- any sequence: the invariants the adapter relies on ---------------------------------------

STEPS = st.one_of(
    st.sampled_from(INPUT_TYPES).map(make_input),
    st.just("deadline"),
    st.just("early_deadline"),
)


@settings(max_examples=400, deadline=None)
@given(wake=st.sampled_from(["vad", "button", "wakeword"]), steps=st.lists(STEPS, max_size=40))
def test_any_input_sequence_keeps_turns_and_upstream_consistent(
    wake: str, steps: list[TurnInput | str]
) -> None:
    m = TurnMachine(TIMEOUTS, wake=wake, now=T0)
    now = T0
    streaming = False
    open_turn: int | None = None
    for step in steps:
        now += 0.25
        if step == "deadline":
            deadline = m.next_deadline()
            if deadline is None:
                continue
            now = max(now, deadline)
            effects = m.on_deadline(now)
        elif step == "early_deadline":
            deadline = m.next_deadline()
            if deadline is not None and now >= deadline:
                continue
            assert m.on_deadline(now) == []  # early, or none armed: nothing happens
            continue
        else:
            assert isinstance(step, TurnInput)
            effects = m.handle(step, now)  # the table is complete: never InvalidTransition
        for effect in effects:
            if isinstance(effect, EndTurn):
                assert effect.turn_id == open_turn, f"ended turn {effect.turn_id}, open {open_turn}"
                open_turn = None
            elif isinstance(effect, Publish) and isinstance(effect.event, TurnStarted):
                assert open_turn is None, "a turn started before the previous one ended"
                open_turn = effect.event.turn_id
            elif isinstance(effect, StartUpstream):
                streaming = True
            elif isinstance(effect, StopUpstream):
                streaming = False
        # No stuck states: only the resting states wait without a deadline.
        assert (m.next_deadline() is None) == (m.state in (S.IDLE, S.MUTED))
        # Audio leaves the kiosk only while listening.
        assert streaming == (m.state is S.LISTENING), (m.state, streaming)
        # A turn is open exactly while the kiosk listens, thinks or speaks.
        assert (open_turn is not None) == (m.state in (S.LISTENING, S.THINKING, S.SPEAKING))
        if open_turn is not None:
            assert open_turn == m.turn_id


# --- a tool round after a spoken preamble ----------------------------------------------------


def test_tool_round_while_speaking_waits_answer_timeout_not_stall_for_next_audio() -> None:
    # "Let me look that up" plays, the response ends with a tool call, the tool runs: the
    # pause until the model speaks again is an answer wait, not a stall inside an answer.
    m = machine_in(S.SPEAKING)
    assert m.handle(ToolRoundFinished(), T0 + 1) == []
    assert m.handle(PlaybackDrained(), T0 + 2) == []
    assert m.next_deadline() == pytest.approx(T0 + 2 + 12.0)
    assert m.on_deadline(T0 + 2 + 4.0) == []
    assert m.state is S.SPEAKING
    m.handle(AnswerAudioReceived(), T0 + 8)  # the answer proper
    assert m.next_deadline() == pytest.approx(T0 + 90.0)
    # Once the answer speaks again, a gap in it is a stall as usual.
    m.handle(PlaybackDrained(), T0 + 10)
    assert m.next_deadline() == pytest.approx(T0 + 14.0)


def test_tool_round_reported_after_preamble_drained_extends_wait() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(PlaybackDrained(), T0 + 1)  # stall armed for T0 + 5
    m.handle(ToolRoundFinished(), T0 + 1.5)
    assert m.next_deadline() == pytest.approx(T0 + 1.5 + 12.0)


def test_no_audio_after_tool_round_while_speaking_ends_turn_in_idle() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(ToolRoundFinished(), T0 + 1)
    m.handle(PlaybackDrained(), T0 + 2)
    effects = m.on_deadline(T0 + 14)
    assert_effects(effects, CancelResponse(), FlushPlayback(), EndTurn(1, "stalled"))
    assert_state_change(effects, S.SPEAKING, S.IDLE)


def test_device_error_latches_error_until_the_device_is_back() -> None:
    m = machine_in(S.IDLE)
    m.handle(UpstreamFailed("audio device failed", latch=True), T0)
    assert m.state is S.ERROR
    for k in range(1, 6):  # far past error_hold_s: still ERROR, never a silent IDLE
        m.on_deadline(m.next_deadline() or T0 + 100 * k)
        assert m.state is S.ERROR
    effects = m.handle(DeviceRecovered(), T0 + 60)
    assert_state_change(effects, S.ERROR, S.IDLE)
    assert m.state is S.IDLE


def test_unlatched_error_still_times_out_and_recovery_is_a_no_op_elsewhere() -> None:
    m = machine_in(S.IDLE)
    m.handle(UpstreamFailed("link lost"), T0)
    assert m.handle(DeviceRecovered(), T0 + 0.1) == []  # not latched: ERROR keeps its timer
    m.on_deadline(m.next_deadline() or 0.0)
    assert m.state is S.IDLE


@pytest.mark.parametrize(
    ("outcomes", "succeeded"),
    [
        (["answered"], True),
        (["continued", "answered"], True),  # one question in two parts, answered
        (["answered", "continued"], False),  # the rest of the question got no answer
        (["continued", "no_answer"], False),
        ([], False),
    ],
)
def test_simulate_judges_a_continued_turn_by_the_turn_that_follows(
    outcomes: list[str], succeeded: bool
) -> None:
    from kiosk.cli import simulation_succeeded

    assert simulation_succeeded({"turns": [{"outcome": o} for o in outcomes]}) is succeeded

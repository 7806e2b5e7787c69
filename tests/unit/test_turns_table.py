"""kiosk.core.turns: every (state, input) pair against the expected table, and the deadlines
that keep any active state from getting stuck."""

from __future__ import annotations

import pytest

from kiosk.core.events import State, StateChanged
from kiosk.core.turns import (
    INPUT_TYPES,
    NO_OPS,
    TRANSITIONS,
    AnswerAudioReceived,
    AnswerFinished,
    CancelResponse,
    CommitInput,
    EndTurn,
    FlushPlayback,
    PlaybackDrained,
    StopUpstream,
    ToolRoundFinished,
)
from kiosk.errors import InvalidTransition
from tests.unit.helpers import (
    assert_effects,
    assert_state_change,
    earcons,
    published,
)

from .turns_expected import (
    ALL_PAIRS,
    EXPECTED,
    T0,
    S,
    machine_in,
    make_input,
)

# --- the table -----------------------------------------------------------------------------------


def test_expected_table_names_every_state_and_input() -> None:
    assert set(EXPECTED) == set(State)
    for state, row in EXPECTED.items():
        assert set(row) == set(INPUT_TYPES), state


def test_table_and_no_ops_cover_every_pair_exactly_once() -> None:
    assert not set(TRANSITIONS) & NO_OPS
    assert set(TRANSITIONS) | NO_OPS == set(ALL_PAIRS)


@pytest.mark.parametrize(
    ("state", "kind"), ALL_PAIRS, ids=lambda v: getattr(v, "name", getattr(v, "__name__", v))
)
def test_every_state_input_pair_reaches_its_expected_state(state: State, kind: type) -> None:
    m = machine_in(state)
    deadline_before = m.next_deadline()
    target = EXPECTED[state][kind]
    effects = m.handle(make_input(kind), T0 + 1.0)
    if target is None:
        assert (state, kind) in NO_OPS
        assert effects == []
        assert m.state is state
        assert m.next_deadline() == deadline_before
    else:
        assert (state, kind) in TRANSITIONS
        assert m.state is target
        changes = published(effects, StateChanged)
        if target is state:
            assert changes == []
        else:
            assert [(c.old, c.new) for c in changes] == [(state, target)]
            assert changes[0].t_s == T0 + 1.0


def test_pair_missing_from_table_raises_invalid_transition_and_keeps_state() -> None:
    class Unknown:
        pass

    m = machine_in(S.SPEAKING)
    with pytest.raises(InvalidTransition, match="Unknown in state SPEAKING"):
        m.handle(Unknown(), T0)  # type: ignore[arg-type]
    assert m.state is S.SPEAKING
    assert isinstance(InvalidTransition("x"), AssertionError)


# --- deadlines: no stuck states ------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.IDLE, S.MUTED])
def test_resting_states_have_no_deadline(state: State) -> None:
    assert machine_in(state).next_deadline() is None


@pytest.mark.parametrize(
    ("state", "after_s"),
    [(S.LISTENING, 15.0), (S.THINKING, 12.0), (S.SPEAKING, 90.0), (S.ERROR, 3.0)],
)
def test_every_active_state_has_a_deadline_that_leaves_it(state: State, after_s: float) -> None:
    m = machine_in(state)
    assert m.next_deadline() == pytest.approx(T0 + after_s)
    assert m.on_deadline(T0 + after_s - 0.001) == []  # early call: nothing
    assert m.state is state
    effects = m.on_deadline(T0 + after_s)
    assert m.state is not state
    assert published(effects, StateChanged)[0].old is state


def test_max_utterance_while_listening_commits_and_thinks() -> None:
    m = machine_in(S.LISTENING)
    effects = m.on_deadline(T0 + 15.0)
    assert_effects(effects, StopUpstream(), CommitInput())
    assert_state_change(effects, S.LISTENING, S.THINKING)
    assert earcons(effects) == ["listening_end"]


def test_answer_timeout_while_thinking_gives_up_with_error_earcon() -> None:
    m = machine_in(S.THINKING)
    effects = m.on_deadline(T0 + 12.0)
    assert_effects(
        effects, CancelResponse(), FlushPlayback(), StopUpstream(), EndTurn(1, "no_answer")
    )
    assert earcons(effects) == ["error"]
    assert_state_change(effects, S.THINKING, S.IDLE)
    assert m.next_deadline() is None


def test_tool_round_while_thinking_restarts_answer_timeout() -> None:
    m = machine_in(S.THINKING)
    assert m.handle(ToolRoundFinished(), T0 + 10.0) == []
    assert m.next_deadline() == pytest.approx(T0 + 22.0)
    assert m.on_deadline(T0 + 12.0) == []
    assert m.state is S.THINKING


def test_audio_stall_after_drained_ends_answer_in_idle() -> None:
    m = machine_in(S.SPEAKING)
    assert m.handle(PlaybackDrained(), T0 + 2.0) == []
    assert m.state is S.SPEAKING
    assert m.next_deadline() == pytest.approx(T0 + 6.0)
    effects = m.on_deadline(T0 + 6.0)
    assert_effects(effects, CancelResponse(), FlushPlayback(), EndTurn(1, "stalled"))
    assert_state_change(effects, S.SPEAKING, S.IDLE)


def test_audio_after_stall_armed_restores_max_answer_deadline() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(PlaybackDrained(), T0 + 2.0)
    m.handle(AnswerAudioReceived(), T0 + 3.0)
    assert m.next_deadline() == pytest.approx(T0 + 90.0)
    assert m.on_deadline(T0 + 6.0) == []
    assert m.state is S.SPEAKING


def test_max_answer_while_speaking_stops_answer() -> None:
    m = machine_in(S.SPEAKING)
    for i in range(1, 89):
        m.handle(AnswerAudioReceived(), T0 + i)  # a steady stream does not postpone the cap
    effects = m.on_deadline(T0 + 90.0)
    assert_effects(effects, CancelResponse(), FlushPlayback(), EndTurn(1, "too_long"))
    assert_state_change(effects, S.SPEAKING, S.IDLE)


def test_error_hold_returns_to_idle() -> None:
    m = machine_in(S.ERROR)
    effects = m.on_deadline(T0 + 3.0)
    assert_effects(effects)
    assert_state_change(effects, S.ERROR, S.IDLE)
    assert m.next_deadline() is None


def test_stale_deadline_call_after_state_moved_on_does_nothing() -> None:
    m = machine_in(S.THINKING)
    m.handle(AnswerAudioReceived(), T0 + 1.0)
    m.handle(AnswerFinished(), T0 + 2.0)
    m.handle(PlaybackDrained(), T0 + 3.0)
    assert m.state is S.IDLE
    assert m.on_deadline(T0 + 12.0) == []

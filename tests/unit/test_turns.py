"""kiosk.core.turns: the turn machine's table, deadlines and the gestures around an answer.

No event loop: a float clock the test advances, inputs in, effects checked with helpers.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core import button
from kiosk.core.events import State, StateChanged, TurnStarted
from kiosk.core.turns import (
    INPUT_TYPES,
    NO_OPS,
    TRANSITIONS,
    AnswerAudioReceived,
    AnswerFinished,
    ButtonPressed,
    ButtonTapped,
    CancelResponse,
    ClearInput,
    CommitInput,
    EndTurn,
    FlushPlayback,
    MuteToggled,
    PlaybackDrained,
    Publish,
    PushToTalkEnded,
    PushToTalkStarted,
    SpeechEnded,
    SpeechStarted,
    StartUpstream,
    StopUpstream,
    ToolRoundFinished,
    TurnInput,
    TurnMachine,
    TurnTimeouts,
    UpstreamFailed,
    DeviceRecovered,
    WakeWordDetected,
    turn_input_for_gesture,
)
from kiosk.errors import InvalidTransition
from tests.unit.helpers import (
    assert_effects,
    assert_no_state_change,
    assert_state_change,
    assert_turn_started,
    commands,
    earcons,
    published,
)

S = State
T0 = 100.0
TIMEOUTS = TurnTimeouts(
    max_utterance_s=15.0,
    answer_timeout_s=12.0,
    audio_stall_s=4.0,
    max_answer_s=90.0,
    error_hold_s=3.0,
)


def make_input(kind: type) -> TurnInput:
    return UpstreamFailed("link lost") if kind is UpstreamFailed else kind()


def machine_in(state: State, *, wake: str = "vad") -> TurnMachine:
    """A machine driven into ``state`` through real inputs (at T0)."""
    m = TurnMachine(TIMEOUTS, wake=wake, now=T0)
    opener: TurnInput = SpeechStarted() if wake == "vad" else ButtonTapped()
    steps: dict[State, list[TurnInput]] = {
        S.IDLE: [],
        S.LISTENING: [opener],
        S.THINKING: [opener, SpeechEnded()],
        S.SPEAKING: [opener, SpeechEnded(), AnswerAudioReceived()],
        S.MUTED: [MuteToggled()],
        S.ERROR: [UpstreamFailed("link lost")],
    }
    for step in steps[state]:
        m.handle(step, T0)
    assert m.state is state
    return m


# What each (state, input) must lead to in "vad" wake mode, written from the design
# (docs/architecture.md, the brief), not read back from TRANSITIONS. None = explicit no-op.
EXPECTED: dict[State, dict[type, State | None]] = {
    S.IDLE: {
        SpeechStarted: S.LISTENING,
        SpeechEnded: None,
        ButtonPressed: None,
        ButtonTapped: S.LISTENING,
        PushToTalkStarted: S.LISTENING,
        PushToTalkEnded: None,
        MuteToggled: S.MUTED,
        WakeWordDetected: S.IDLE,
        AnswerAudioReceived: None,
        ToolRoundFinished: None,
        AnswerFinished: None,
        PlaybackDrained: None,
        UpstreamFailed: S.ERROR,
        DeviceRecovered: S.IDLE,  # a handler: only a latched ERROR leaves
    },
    S.LISTENING: {
        SpeechStarted: None,
        SpeechEnded: S.THINKING,
        ButtonPressed: None,
        ButtonTapped: S.THINKING,
        PushToTalkStarted: S.LISTENING,
        PushToTalkEnded: S.LISTENING,
        MuteToggled: S.MUTED,
        WakeWordDetected: None,
        AnswerAudioReceived: None,
        ToolRoundFinished: None,
        AnswerFinished: None,
        PlaybackDrained: None,
        UpstreamFailed: S.ERROR,
        DeviceRecovered: S.LISTENING,  # a handler: only a latched ERROR leaves
    },
    S.THINKING: {
        SpeechStarted: S.LISTENING,
        SpeechEnded: None,
        ButtonPressed: S.IDLE,
        ButtonTapped: None,
        PushToTalkStarted: S.LISTENING,
        PushToTalkEnded: None,
        MuteToggled: S.MUTED,
        WakeWordDetected: S.THINKING,  # a handler: interrupts only in wakeword mode
        AnswerAudioReceived: S.SPEAKING,
        ToolRoundFinished: S.THINKING,
        AnswerFinished: S.IDLE,
        PlaybackDrained: None,
        UpstreamFailed: S.ERROR,
        DeviceRecovered: S.THINKING,  # a handler: only a latched ERROR leaves
    },
    S.SPEAKING: {
        SpeechStarted: S.LISTENING,
        SpeechEnded: None,
        ButtonPressed: S.IDLE,
        ButtonTapped: None,
        PushToTalkStarted: S.LISTENING,
        PushToTalkEnded: None,
        MuteToggled: S.MUTED,
        WakeWordDetected: S.SPEAKING,  # a handler: interrupts only in wakeword mode
        AnswerAudioReceived: S.SPEAKING,
        ToolRoundFinished: S.SPEAKING,
        AnswerFinished: S.SPEAKING,
        PlaybackDrained: S.SPEAKING,
        UpstreamFailed: S.ERROR,
        DeviceRecovered: S.SPEAKING,  # a handler: only a latched ERROR leaves
    },
    S.MUTED: {
        **{kind: None for kind in INPUT_TYPES},
        MuteToggled: S.IDLE,
        DeviceRecovered: S.MUTED,  # a handler: only a latched ERROR leaves
    },
    S.ERROR: {
        SpeechStarted: S.ERROR,
        SpeechEnded: None,
        ButtonPressed: None,
        ButtonTapped: S.LISTENING,
        PushToTalkStarted: S.LISTENING,
        PushToTalkEnded: None,
        MuteToggled: S.MUTED,
        WakeWordDetected: None,
        AnswerAudioReceived: None,
        ToolRoundFinished: None,
        AnswerFinished: None,
        PlaybackDrained: None,
        UpstreamFailed: S.ERROR,  # a handler: may latch a device error
        DeviceRecovered: S.ERROR,  # a handler: only a latched ERROR leaves
    },
}

ALL_PAIRS = [(state, kind) for state in State for kind in INPUT_TYPES]


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


# --- a whole answered turn -----------------------------------------------------------------------


def test_speech_turn_answered_then_drained_ends_answered() -> None:
    m = TurnMachine(TIMEOUTS, now=T0)
    effects = m.handle(SpeechStarted(), T0)
    assert_effects(effects, StartUpstream(with_preroll=True))
    assert_turn_started(effects, 1, "vad")
    assert earcons(effects) == []  # speech onset needs no wake cue
    assert_effects(m.handle(SpeechEnded(), T0 + 2), StopUpstream(), CommitInput())
    assert_effects(m.handle(AnswerAudioReceived(), T0 + 3))
    assert_effects(m.handle(AnswerFinished(), T0 + 4))
    assert m.state is S.SPEAKING  # still playing
    effects = m.handle(PlaybackDrained(), T0 + 6)
    assert_effects(effects, EndTurn(1, "answered"))
    assert_state_change(effects, S.SPEAKING, S.IDLE)


def test_answer_finished_after_playback_drained_ends_answered() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(PlaybackDrained(), T0 + 1)
    effects = m.handle(AnswerFinished(), T0 + 2)
    assert_effects(effects, EndTurn(1, "answered"))
    assert m.state is S.IDLE


def test_answer_finished_without_audio_while_thinking_ends_turn() -> None:
    m = machine_in(S.THINKING)
    effects = m.handle(AnswerFinished(had_audio=False), T0 + 1)
    assert_effects(effects, StopUpstream(), EndTurn(1, "no_audio"))
    assert m.state is S.IDLE


def test_empty_utterance_clears_input_and_returns_idle() -> None:
    m = machine_in(S.LISTENING)
    effects = m.handle(SpeechEnded(no_speech=True), T0 + 5)
    assert_effects(effects, StopUpstream(), ClearInput(), EndTurn(1, "empty"))
    assert_state_change(effects, S.LISTENING, S.IDLE)


# --- barge-in and the button ---------------------------------------------------------------------


def test_speech_before_any_answer_is_heard_continues_the_question() -> None:
    # A pause inside the question ended the utterance; the visitor goes on before the
    # answer starts: no answer was heard, so the turn is "continued", not "interrupted".
    m = machine_in(S.THINKING)
    effects = m.handle(SpeechStarted(), T0 + 1)
    assert_effects(
        effects,
        FlushPlayback(),
        CancelResponse(),
        EndTurn(1, "continued"),
        StartUpstream(with_preroll=True),
    )
    assert_turn_started(effects, 2, "continuation")
    assert_state_change(effects, S.THINKING, S.LISTENING)


def test_barge_in_while_speaking_stops_answer_and_listens_to_new_turn() -> None:
    m = machine_in(S.SPEAKING)
    effects = m.handle(SpeechStarted(), T0 + 1)
    assert_effects(
        effects,
        FlushPlayback(),
        CancelResponse(),
        EndTurn(1, "interrupted"),
        StartUpstream(with_preroll=True),
    )
    assert_turn_started(effects, 2, "barge_in")
    assert_state_change(effects, S.SPEAKING, S.LISTENING)
    assert m.turn_id == 2
    # Audio of the cancelled answer still in flight is dropped without complaint.
    assert m.handle(AnswerAudioReceived(), T0 + 1.1) == []
    assert m.handle(AnswerFinished(), T0 + 1.2) == []


@pytest.mark.parametrize("answering", [S.THINKING, S.SPEAKING])
def test_button_press_while_answering_stops_answer_and_its_tap_starts_nothing(
    answering: State,
) -> None:
    m = machine_in(answering)
    effects = m.handle(ButtonPressed(), T0 + 1)
    assert_effects(
        effects, FlushPlayback(), CancelResponse(), EndTurn(1, "stopped_by_button"), StopUpstream()
    )
    assert_state_change(effects, answering, S.IDLE)
    assert m.handle(ButtonTapped(), T0 + 1.2) == []  # the release of that same press
    assert m.state is S.IDLE
    assert m.turn_id == 1
    # The next press and tap is a new gesture: it starts a turn.
    assert m.handle(ButtonPressed(), T0 + 5) == []
    effects = m.handle(ButtonTapped(), T0 + 5.2)
    assert_turn_started(effects, 2, "button")
    assert_state_change(effects, S.IDLE, S.LISTENING)


def test_press_that_stopped_answer_then_mute_switch_does_not_eat_a_later_tap() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(ButtonPressed(), T0 + 1)
    m.handle(MuteToggled(), T0 + 1.1)  # mute switch flipped while the button was down
    m.handle(ButtonTapped(), T0 + 1.2)  # ignored: muted
    m.handle(MuteToggled(), T0 + 10)
    assert m.state is S.IDLE
    m.handle(ButtonPressed(), T0 + 20)
    effects = m.handle(ButtonTapped(), T0 + 20.2)
    assert_turn_started(effects, 2, "button")


def test_speech_between_stopping_press_and_its_release_keeps_new_turn_listening() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(ButtonPressed(), T0 + 1)
    m.handle(SpeechStarted(), T0 + 1.2)  # "wait—" while still holding the button
    assert m.state is S.LISTENING
    assert m.handle(ButtonTapped(), T0 + 1.3) == []  # that release is not "done talking"
    assert m.state is S.LISTENING
    # A later tap of a new press does end the turn.
    m.handle(ButtonPressed(), T0 + 3)
    effects = m.handle(ButtonTapped(), T0 + 3.2)
    assert_effects(effects, StopUpstream(), CommitInput())
    assert_state_change(effects, S.LISTENING, S.THINKING)


def test_tap_in_idle_starts_turn_without_preroll_with_wake_earcon() -> None:
    m = machine_in(S.IDLE)
    effects = m.handle(ButtonTapped(), T0)
    assert_effects(effects, StartUpstream(with_preroll=False))
    assert_turn_started(effects, 1, "button")
    assert earcons(effects) == ["wake"]
    assert m.state is S.LISTENING


def test_tap_while_listening_commits_utterance() -> None:
    m = machine_in(S.LISTENING)
    effects = m.handle(ButtonTapped(), T0 + 2)
    assert_effects(effects, StopUpstream(), CommitInput())
    assert m.state is S.THINKING


def test_tap_in_error_starts_turn() -> None:
    m = machine_in(S.ERROR)
    effects = m.handle(ButtonTapped(), T0 + 1)
    assert_turn_started(effects, 1, "button")
    assert m.state is S.LISTENING


def test_push_to_talk_start_streams_until_release_commits() -> None:
    m = machine_in(S.IDLE)
    effects = m.handle(PushToTalkStarted(), T0)
    assert_effects(effects, StartUpstream(with_preroll=False))
    assert_turn_started(effects, 1, "push_to_talk")
    assert m.push_to_talk
    # Pauses while the button is held do not end the turn.
    assert m.handle(SpeechEnded(), T0 + 3) == []
    assert m.handle(SpeechEnded(no_speech=True), T0 + 5) == []
    assert m.state is S.LISTENING
    assert m.next_deadline() == pytest.approx(T0 + 60.0)  # a generous cap while held
    effects = m.handle(PushToTalkEnded(), T0 + 8)
    assert_effects(effects, StopUpstream(), CommitInput())
    assert_state_change(effects, S.LISTENING, S.THINKING)
    assert not m.push_to_talk


def test_push_to_talk_during_speech_turn_keeps_turn_and_release_commits() -> None:
    m = machine_in(S.LISTENING)
    assert_effects(m.handle(PushToTalkStarted(), T0 + 1))
    assert m.turn_id == 1
    assert m.handle(SpeechEnded(), T0 + 2) == []
    assert_effects(m.handle(PushToTalkEnded(), T0 + 3), StopUpstream(), CommitInput())


def test_push_to_talk_end_without_push_to_talk_changes_nothing() -> None:
    m = machine_in(S.LISTENING)
    assert m.handle(PushToTalkEnded(), T0 + 1) == []
    assert m.state is S.LISTENING


@pytest.mark.parametrize("answering", [S.THINKING, S.SPEAKING])
def test_push_to_talk_while_answering_interrupts_and_starts_turn(answering: State) -> None:
    m = machine_in(answering)
    effects = m.handle(PushToTalkStarted(), T0 + 1)
    assert_effects(
        effects,
        FlushPlayback(),
        CancelResponse(),
        EndTurn(1, "interrupted"),
        StartUpstream(with_preroll=False),
    )
    assert_turn_started(effects, 2, "push_to_talk")


def test_hold_after_stopping_press_starts_push_to_talk_turn() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(ButtonPressed(), T0 + 1)
    effects = m.handle(PushToTalkStarted(), T0 + 1.5)
    assert_turn_started(effects, 2, "push_to_talk")
    effects = m.handle(PushToTalkEnded(), T0 + 4)
    assert_effects(effects, StopUpstream(), CommitInput())


# --- mute ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (S.IDLE, []),
        (S.LISTENING, [StopUpstream(), ClearInput(), EndTurn(1, "cancelled")]),
        (S.THINKING, [FlushPlayback(), CancelResponse(), EndTurn(1, "cancelled"), StopUpstream()]),
        (S.SPEAKING, [FlushPlayback(), CancelResponse(), EndTurn(1, "cancelled"), StopUpstream()]),
        (S.ERROR, []),
    ],
)
def test_mute_from_each_state_stops_upstream_and_answer(
    state: State, expected: list[object]
) -> None:
    m = machine_in(state)
    effects = m.handle(MuteToggled(), T0 + 1)
    assert commands(effects) == expected
    assert earcons(effects) == ["mute_on"]
    assert_state_change(effects, state, S.MUTED)
    assert m.next_deadline() is None
    assert not m.push_to_talk


def test_mute_during_push_to_talk_then_unmute_leaves_no_push_to_talk() -> None:
    m = machine_in(S.IDLE)
    m.handle(PushToTalkStarted(), T0)
    m.handle(MuteToggled(), T0 + 3)
    effects = m.handle(MuteToggled(), T0 + 10)
    assert earcons(effects) == ["mute_off"]
    assert_state_change(effects, S.MUTED, S.IDLE)
    m.handle(SpeechStarted(), T0 + 11)
    assert not m.push_to_talk
    assert m.next_deadline() == pytest.approx(T0 + 11 + 15.0)


def test_muted_ignores_speech_button_and_server_traffic() -> None:
    m = machine_in(S.MUTED)
    for event in (
        SpeechStarted(),
        ButtonTapped(),
        PushToTalkStarted(),
        AnswerAudioReceived(),
        UpstreamFailed("x"),
    ):
        assert m.handle(event, T0 + 1) == []
    assert m.state is S.MUTED


# --- wake modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wake", ["button", "wakeword"])
def test_speech_onset_in_idle_is_ignored_outside_vad_wake_mode(wake: str) -> None:
    m = machine_in(S.IDLE, wake=wake)
    assert m.handle(SpeechStarted(), T0) == []
    assert m.state is S.IDLE
    assert m.turn_id == 0


@pytest.mark.parametrize("wake", ["button", "wakeword"])
@pytest.mark.parametrize("answering", [S.THINKING, S.SPEAKING])
def test_speech_while_answering_does_not_barge_in_outside_vad_wake_mode(
    wake: str, answering: State
) -> None:
    m = machine_in(answering, wake=wake)
    assert m.handle(SpeechStarted(), T0 + 1) == []
    assert m.state is answering


def test_wake_word_in_wakeword_mode_starts_turn_without_preroll() -> None:
    m = machine_in(S.IDLE, wake="wakeword")
    effects = m.handle(WakeWordDetected(), T0)
    assert_effects(effects, StartUpstream(with_preroll=False))
    assert_turn_started(effects, 1, "wakeword")
    assert earcons(effects) == ["wake"]
    # The endpointer ends a wake-word turn like a speech turn.
    assert_effects(m.handle(SpeechEnded(), T0 + 3), StopUpstream(), CommitInput())


@pytest.mark.parametrize("answering", [S.THINKING, S.SPEAKING])
def test_wake_word_while_answering_in_wakeword_mode_interrupts_and_listens(
    answering: State,
) -> None:
    m = machine_in(answering, wake="wakeword")
    effects = m.handle(WakeWordDetected(), T0 + 1)
    assert_effects(
        effects,
        FlushPlayback(),
        CancelResponse(),
        EndTurn(1, "interrupted"),
        StartUpstream(with_preroll=False),
    )
    assert_turn_started(effects, 2, "wakeword")
    assert m.state is S.LISTENING


@pytest.mark.parametrize("wake", ["vad", "button"])
def test_wake_word_outside_wakeword_mode_is_ignored(wake: str) -> None:
    m = machine_in(S.IDLE, wake=wake)
    assert m.handle(WakeWordDetected(), T0) == []
    assert m.state is S.IDLE


def test_button_tap_starts_turn_in_button_wake_mode() -> None:
    m = machine_in(S.IDLE, wake="button")
    effects = m.handle(ButtonTapped(), T0)
    assert_turn_started(effects, 1, "button")


# --- upstream failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.LISTENING, S.THINKING, S.SPEAKING])
def test_upstream_failed_while_active_ends_turn_with_error(state: State) -> None:
    m = machine_in(state)
    effects = m.handle(UpstreamFailed("connection lost: 1006"), T0 + 1)
    assert_effects(effects, StopUpstream(), FlushPlayback(), EndTurn(1, "error"))
    assert earcons(effects) == ["error"]
    change = assert_state_change(effects, state, S.ERROR)
    assert change.reason == "connection lost: 1006"
    assert m.next_deadline() == pytest.approx(T0 + 1 + 3.0)


def test_link_lost_mid_answer_plays_what_arrived_then_ends_in_error() -> None:
    m = machine_in(S.SPEAKING)  # answer audio queued, not drained
    effects = m.handle(UpstreamFailed("connection lost: 1006", after_playback=True), T0 + 1)
    assert_effects(effects)  # nothing flushed, the turn goes on
    assert m.state is S.SPEAKING
    effects = m.handle(PlaybackDrained(), T0 + 2)
    assert_effects(effects, EndTurn(1, "error"))
    assert earcons(effects) == ["error"]
    assert assert_state_change(effects, S.SPEAKING, S.ERROR).reason == "connection lost: 1006"


def test_link_lost_mid_answer_with_nothing_left_to_play_errors_at_once() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(PlaybackDrained(), T0 + 1)  # a tool round's silence: nothing queued
    effects = m.handle(UpstreamFailed("connection lost", after_playback=True), T0 + 2)
    assert_effects(effects, StopUpstream(), FlushPlayback(), EndTurn(1, "error"))
    assert m.state is S.ERROR


def test_barge_in_after_a_mid_answer_loss_starts_a_clean_turn() -> None:
    m = machine_in(S.SPEAKING)
    m.handle(UpstreamFailed("connection lost", after_playback=True), T0 + 1)
    m.handle(SpeechStarted(), T0 + 1.5)  # barge-in while what arrived still plays
    assert m.state is S.LISTENING
    m.handle(SpeechEnded(), T0 + 3)
    m.handle(AnswerAudioReceived(), T0 + 4)
    effects = m.handle(PlaybackDrained(), T0 + 5)
    assert S.ERROR not in [c.new for c in published(effects, StateChanged)]


def test_upstream_failed_in_idle_shows_error_without_ending_a_turn() -> None:
    m = machine_in(S.IDLE)
    effects = m.handle(UpstreamFailed("prewarm failed"), T0)
    assert_effects(effects)
    assert_state_change(effects, S.IDLE, S.ERROR)


def test_error_state_ignores_speech_until_hold_passes_then_listens_again() -> None:
    m = machine_in(S.ERROR)
    assert m.handle(SpeechStarted(), T0 + 1) == []
    assert m.state is S.ERROR
    m.on_deadline(T0 + 3)
    effects = m.handle(SpeechStarted(), T0 + 4)
    assert_turn_started(effects, 1, "vad")


def test_state_changes_carry_turn_id_and_time() -> None:
    m = machine_in(S.IDLE)
    effects = m.handle(SpeechStarted(), T0 + 7)
    change = assert_state_change(effects, S.IDLE, S.LISTENING)
    assert (change.t_s, change.turn_id) == (T0 + 7, 1)
    assert_no_state_change(m.handle(SpeechStarted(), T0 + 8))


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

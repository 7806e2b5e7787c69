"""kiosk.core.turns: a whole answered turn, barge-in and the button (taps, push-to-talk, the
press that stops an answer)."""

from __future__ import annotations

import pytest

from kiosk.core.events import State
from kiosk.core.turns import (
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
    PushToTalkEnded,
    PushToTalkStarted,
    SpeechEnded,
    SpeechStarted,
    StartUpstream,
    StopUpstream,
    TurnMachine,
)
from tests.unit.helpers import (
    assert_effects,
    assert_state_change,
    assert_turn_started,
    earcons,
)

from .turns_expected import (
    T0,
    TIMEOUTS,
    S,
    machine_in,
)

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

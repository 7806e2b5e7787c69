"""kiosk.core.turns: mute, the wake modes (vad, wake word, button) and upstream failures (a link
lost mid-answer, the error hold)."""

from __future__ import annotations

import pytest

from kiosk.core.events import State, StateChanged
from kiosk.core.turns import (
    AnswerAudioReceived,
    ButtonTapped,
    CancelResponse,
    ClearInput,
    CommitInput,
    EndTurn,
    FlushPlayback,
    MuteToggled,
    PlaybackDrained,
    PushToTalkStarted,
    SpeechEnded,
    SpeechStarted,
    StartUpstream,
    StopUpstream,
    UpstreamFailed,
    WakeWordDetected,
)
from tests.unit.helpers import (
    assert_effects,
    assert_no_state_change,
    assert_state_change,
    assert_turn_started,
    commands,
    earcons,
    published,
)

from .turns_expected import (
    T0,
    S,
    machine_in,
)

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

"""The turn machine's expected transitions in "vad" wake mode, written from the design (not read
back from TRANSITIONS), and machines placed in a given state: shared by the test_turns_* modules
of kiosk.core.turns (pure: time is passed in, effects are plain data)."""

from __future__ import annotations

from kiosk.core.events import State
from kiosk.core.turns import (
    INPUT_TYPES,
    AnswerAudioReceived,
    AnswerFinished,
    ButtonPressed,
    ButtonTapped,
    DeviceRecovered,
    MuteToggled,
    PlaybackDrained,
    PushToTalkEnded,
    PushToTalkStarted,
    SpeechEnded,
    SpeechStarted,
    ToolRoundFinished,
    TurnInput,
    TurnMachine,
    TurnTimeouts,
    UpstreamFailed,
    WakeWordDetected,
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

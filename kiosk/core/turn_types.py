"""The turn machine's vocabulary (:mod:`kiosk.core.turns`): its inputs, past-tense facts
(``SpeechStarted``), its effects, imperative (``FlushPlayback``), and its timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.core.events import KioskEvent

# --- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The endpointer heard speech onset (with pre-roll) — or the server VAD did."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The endpointer heard the hangover of silence after speech (``no_speech``: none at all)."""

    no_speech: bool = False


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """Press edge: the earliest moment to stop an answer ("can't shut it up")."""


@dataclass(frozen=True, slots=True)
class ButtonTapped:
    pass


@dataclass(frozen=True, slots=True)
class PushToTalkStarted:
    pass


@dataclass(frozen=True, slots=True)
class PushToTalkEnded:
    pass


@dataclass(frozen=True, slots=True)
class MuteToggled:
    pass


@dataclass(frozen=True, slots=True)
class WakeWordDetected:
    pass


@dataclass(frozen=True, slots=True)
class AnswerAudioReceived:
    """An answer audio delta arrived (the adapter queued it for playback)."""


@dataclass(frozen=True, slots=True)
class ToolRoundFinished:
    """A tool round finished (``response.done`` with function calls): the model will answer."""


@dataclass(frozen=True, slots=True)
class AnswerFinished:
    """The server says the answer is complete (all audio sent)."""

    had_audio: bool = True


@dataclass(frozen=True, slots=True)
class PlaybackDrained:
    """The speaker has played everything queued."""


@dataclass(frozen=True, slots=True)
class UpstreamFailed:
    """The connection failed or was lost, the server reported a fatal error, or (``latch``)
    an audio device is gone: then ERROR holds until :class:`DeviceRecovered`.

    ``after_playback``: the link died mid-answer; while SPEAKING, what arrived plays out
    first, then the turn ends as an error (nothing the visitor could still hear is flushed).
    """

    reason: str
    latch: bool = False
    after_playback: bool = False


@dataclass(frozen=True, slots=True)
class DeviceRecovered:
    """The lost audio device works again: a latched ERROR may end."""


TurnInput = (
    SpeechStarted
    | SpeechEnded
    | ButtonPressed
    | ButtonTapped
    | PushToTalkStarted
    | PushToTalkEnded
    | MuteToggled
    | WakeWordDetected
    | AnswerAudioReceived
    | ToolRoundFinished
    | AnswerFinished
    | PlaybackDrained
    | UpstreamFailed
    | DeviceRecovered
)

# --- effects ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartUpstream:
    """Connect if needed and stream the utterance (pre-roll first)."""

    with_preroll: bool = True


@dataclass(frozen=True, slots=True)
class StopUpstream:
    """Stop forwarding microphone audio."""


@dataclass(frozen=True, slots=True)
class CommitInput:
    """``input_audio_buffer.commit`` + ``response.create`` (local turn detection)."""


@dataclass(frozen=True, slots=True)
class ClearInput:
    """Drop what was streamed (an empty or muted turn): ``input_audio_buffer.clear``."""


@dataclass(frozen=True, slots=True)
class FlushPlayback:
    """Silence the speaker now, dropping queued answer audio."""


@dataclass(frozen=True, slots=True)
class CancelResponse:
    """``response.cancel`` (if one is active) and ``conversation.item.truncate`` at the
    milliseconds actually played, so the model remembers what the listener heard."""


@dataclass(frozen=True, slots=True)
class Publish:
    event: KioskEvent


@dataclass(frozen=True, slots=True)
class EndTurn:
    """The turn is over; ``outcome`` goes to its summary."""

    turn_id: int
    outcome: str


Effect = (
    StartUpstream
    | StopUpstream
    | CommitInput
    | ClearInput
    | FlushPlayback
    | CancelResponse
    | Publish
    | EndTurn
)


@dataclass(frozen=True, slots=True)
class TurnTimeouts:
    max_utterance_s: float = 15.0
    answer_timeout_s: float = 12.0
    audio_stall_s: float = 4.0
    max_answer_s: float = 90.0
    error_hold_s: float = 3.0


INPUT_TYPES: tuple[type, ...] = (
    SpeechStarted,
    SpeechEnded,
    ButtonPressed,
    ButtonTapped,
    PushToTalkStarted,
    PushToTalkEnded,
    MuteToggled,
    WakeWordDetected,
    AnswerAudioReceived,
    ToolRoundFinished,
    AnswerFinished,
    PlaybackDrained,
    UpstreamFailed,
    DeviceRecovered,
)

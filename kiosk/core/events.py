"""Typed internal events: what happened inside the kiosk, for subscribers.

The core publishes these on one :class:`~kiosk.core.bus.EventStream`; LEDs, earcons,
logs, sd_notify STATUS= and metrics subscribe. Nothing here does I/O.
Times are monotonic seconds (``t_s``) from the clock the adapter passes in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class State(enum.Enum):
    """Turn-taking states (see ``kiosk.core.turns`` for the table)."""

    IDLE = "idle"  # listening locally; no audio leaves
    LISTENING = "listening"  # someone speaks; audio streams upstream
    THINKING = "thinking"  # speech ended; waiting for the first answer audio (tools run here)
    SPEAKING = "speaking"  # answer audio plays; barge-in armed
    MUTED = "muted"  # mic disabled by long-press or switch
    ERROR = "error"  # upstream unavailable / misconfigured; retrying with backoff


@dataclass(frozen=True, slots=True)
class Citation:
    """One knowledge-base passage the answer was grounded on."""

    chunk_id: str
    title: str = ""
    source: str = ""  # ingested file path or URL


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response (``response.done.usage``)."""

    input_text: int = 0
    input_audio: int = 0
    input_cached: int = 0
    output_text: int = 0
    output_audio: int = 0

    @property
    def input_total(self) -> int:
        return self.input_text + self.input_audio

    @property
    def output_total(self) -> int:
        return self.output_text + self.output_audio

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_text + other.input_text,
            self.input_audio + other.input_audio,
            self.input_cached + other.input_cached,
            self.output_text + other.output_text,
            self.output_audio + other.output_audio,
        )


@dataclass(frozen=True, slots=True)
class StateChanged:
    t_s: float
    old: State
    new: State
    reason: str
    turn_id: int


@dataclass(frozen=True, slots=True)
class TurnStarted:
    t_s: float
    turn_id: int
    trigger: str  # "vad", "button", "push_to_talk", "wakeword", "barge_in", "continuation"


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool began running (earcons play "looking it up" so there is no dead air)."""

    t_s: float
    turn_id: int
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    t_s: float
    turn_id: int
    name: str
    ok: bool
    duration_ms: float


@dataclass(frozen=True, slots=True)
class CitationsReported:
    turn_id: int
    citations: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class UsageReported:
    turn_id: int
    usage: Usage


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """Something went wrong that a person or staff should know about (one line)."""

    t_s: float
    message: str
    code: str = ""
    turn_id: int = 0


@dataclass(frozen=True, slots=True)
class EarconRequested:
    """Play a short cue: "wake", "listening_end", "thinking", "error", "mute_on", "mute_off"."""

    name: str


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    t_s: float
    connected: bool
    detail: str = ""  # never contains secrets


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """Everything worth one log line and one report entry about a finished turn."""

    turn_id: int
    started_t_s: float
    ended_t_s: float
    trigger: str
    # "answered", "interrupted", "stopped_by_button", "no_answer", "no_audio", "stalled",
    # "too_long", "error", "cancelled" (muted), "empty" (no speech), "shutdown",
    # "continued" (the visitor went on before an answer was heard: see the next turn)
    outcome: str
    user_speech_s: float = 0.0
    upstream_audio_s: float = 0.0
    response_latency_ms: float | None = None
    transcript: str = ""
    answer_transcript: str = ""
    citations: tuple[Citation, ...] = ()
    usage: Usage = field(default_factory=Usage)
    noise_floor_dbfs: float | None = None  # the room's ambient level the endpointer had learned
    engine: str = ""  # who answered: "cloud" or "local" (kiosk.net.engine.Engine.name)


@dataclass(frozen=True, slots=True)
class TurnEnded:
    summary: TurnSummary


KioskEvent = (
    StateChanged
    | TurnStarted
    | ToolCallStarted
    | ToolCallFinished
    | CitationsReported
    | UsageReported
    | ErrorReported
    | EarconRequested
    | ConnectionChanged
    | TurnEnded
)

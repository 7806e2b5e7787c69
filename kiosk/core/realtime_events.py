"""The typed server events a Realtime session yields, and how to read them from untrusted
server JSON.

Kept apart from :mod:`kiosk.core.realtime` (the session and its state) so the event types,
the bounds on server text and the field readers are one place to check when a server
misbehaves. :func:`parse_stateless_event` reads every event that needs no session state;
the session parses the rest (responses, answer audio, function calls) itself. Readers raise
``KeyError``/``TypeError``/``ValueError`` on a wrong shape; the session turns that into a
:class:`ServerEventRejected` event, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiosk.core.events import Usage
from kiosk.core.realtime_config import Dialect
from kiosk.textsafe import printable

# Sanity bound on one server frame (a 100 ms delta is ~6 KB of base64; 16 MiB is absurd).
MAX_SERVER_TEXT_CHARS = 16 * 1024 * 1024
# Server text kept from one event, made printable at this boundary (a hostile server sends
# megabytes with newlines and terminal escapes): transcripts (a spoken answer of 90 s is
# ~1500 characters), error codes (an identifier) and messages, status reasons.
MAX_TRANSCRIPT_CHARS = 4000
MAX_CODE_CHARS = 100
MAX_MESSAGE_CHARS = 300

# Benign `error` codes: races between our cancel/commit and the server's own progress.
BENIGN_ERROR_CODES = frozenset(
    {
        "input_audio_buffer_commit_empty",
        "conversation_already_has_active_response",
        "response_cancel_not_active",
    }
)


# --- typed server events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionReady:
    session_id: str


@dataclass(frozen=True, slots=True)
class InputCommitted:
    item_id: str


@dataclass(frozen=True, slots=True)
class ServerSpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class ServerSpeechStopped:
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class UserTranscript:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    pcm: bytes  # PCM16 LE mono 24 kHz


@dataclass(frozen=True, slots=True)
class AnswerTranscriptDelta:
    response_id: str
    text: str


@dataclass(frozen=True, slots=True)
class FunctionCallRequested:
    response_id: str
    call_id: str
    name: str
    arguments: str  # untrusted JSON text


@dataclass(frozen=True, slots=True)
class ResponseFinished:
    """``response.done``. ``answer_over`` says whether the user turn's answer is complete."""

    response_id: str
    status: str  # completed, cancelled, failed, incomplete
    usage: Usage
    had_audio: bool
    function_calls: int
    answer_over: bool
    status_detail: str = ""
    # Not the response in progress (an unknown id, or one already finished): its usage
    # counts, but it must not end or change the current answer.
    stale: bool = False


@dataclass(frozen=True, slots=True)
class MiddleTierToolResponse:
    """VoiceRAG's ``extension.middle_tier_tool_response`` (its middle tier ran the tool)."""

    tool_name: str
    tool_result: str


@dataclass(frozen=True, slots=True)
class ServerError:
    code: str
    message: str
    benign: bool


@dataclass(frozen=True, slots=True)
class RateLimitsUpdated:
    limits: tuple[tuple[str, int, int, float], ...]  # (name, limit, remaining, reset_seconds)


@dataclass(frozen=True, slots=True)
class ServerEventRejected:
    """A frame we could not accept (bad JSON, bad base64, wrong shape); nothing else changed."""

    reason: str


@dataclass(frozen=True, slots=True)
class ServerEventIgnored:
    """A well-formed event this kiosk does not use (reported once per type by the adapter)."""

    event_type: str


ServerEvent = (
    SessionReady
    | InputCommitted
    | ServerSpeechStarted
    | ServerSpeechStopped
    | UserTranscript
    | ResponseStarted
    | AudioDelta
    | AnswerTranscriptDelta
    | FunctionCallRequested
    | ResponseFinished
    | MiddleTierToolResponse
    | ServerError
    | RateLimitsUpdated
    | ServerEventRejected
    | ServerEventIgnored
)

# Event types each dialect names differently (see realtime-protocol.md).
AUDIO_DELTA_EVENT = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
TRANSCRIPT_DELTA_EVENT = {
    "ga": "response.output_audio_transcript.delta",
    "beta": "response.audio_transcript.delta",
}
KNOWN_QUIET_EVENTS = frozenset(
    {
        "session.updated",
        "input_audio_buffer.cleared",
        "conversation.created",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "conversation.item.retrieved",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "response.output_item.added",
        "response.content_part.added",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.audio.done",
        "response.output_audio.done",
        "response.audio_transcript.done",
        "response.output_audio_transcript.done",
        "response.text.delta",
        "response.text.done",
        "response.output_text.delta",
        "response.output_text.done",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
        "transcription_session.updated",
    }
)


def parse_usage(raw: Any) -> Usage:
    """``response.usage`` of either dialect -> :class:`Usage` (missing parts count as 0)."""
    if not isinstance(raw, dict):
        return Usage()
    inp = raw.get("input_token_details") if isinstance(raw.get("input_token_details"), dict) else {}
    out = (
        raw.get("output_token_details") if isinstance(raw.get("output_token_details"), dict) else {}
    )
    assert isinstance(inp, dict) and isinstance(out, dict)
    input_text = read_count(inp.get("text_tokens"))
    input_audio = read_count(inp.get("audio_tokens"))
    output_text = read_count(out.get("text_tokens"))
    output_audio = read_count(out.get("audio_tokens"))
    if not (input_text or input_audio):
        input_text = read_count(raw.get("input_tokens"))
    if not (output_text or output_audio):
        output_text = read_count(raw.get("output_tokens"))
    return Usage(
        input_text=input_text,
        input_audio=input_audio,
        input_cached=read_count(inp.get("cached_tokens")),
        output_text=output_text,
        output_audio=output_audio,
    )


def parse_stateless_event(raw: dict[str, Any], dialect: Dialect) -> ServerEvent | None:
    """The event for a server event object that needs no session state: ``None`` for a
    known event the kiosk does not act on, :class:`ServerEventIgnored` for any other."""
    kind: str = raw["type"]
    if kind in ("session.created",):
        session = raw.get("session")
        sid = session.get("id", "") if isinstance(session, dict) else ""
        return SessionReady(session_id=str(sid))
    if kind == "input_audio_buffer.committed":
        return InputCommitted(item_id=read_str(raw, "item_id"))
    if kind == "input_audio_buffer.speech_started":
        return ServerSpeechStarted(audio_start_ms=read_count(raw.get("audio_start_ms")))
    if kind == "input_audio_buffer.speech_stopped":
        return ServerSpeechStopped(audio_end_ms=read_count(raw.get("audio_end_ms")))
    if kind == "conversation.item.input_audio_transcription.completed":
        text = printable(read_str(raw, "transcript"), MAX_TRANSCRIPT_CHARS)
        return UserTranscript(item_id=read_str(raw, "item_id"), text=text)
    if kind == TRANSCRIPT_DELTA_EVENT[dialect]:
        return AnswerTranscriptDelta(
            response_id=read_str(raw, "response_id"),
            text=printable(read_str(raw, "delta"), MAX_TRANSCRIPT_CHARS),
        )
    if kind == "extension.middle_tier_tool_response":
        return MiddleTierToolResponse(
            tool_name=read_str(raw, "tool_name"), tool_result=read_str(raw, "tool_result")
        )
    if kind == "error":
        err = raw.get("error") if isinstance(raw.get("error"), dict) else {}
        assert isinstance(err, dict)
        code = printable(str(err.get("code") or err.get("type") or "unknown"), MAX_CODE_CHARS)
        message = printable(str(err.get("message") or ""), MAX_MESSAGE_CHARS)
        return ServerError(code=code, message=message, benign=code in BENIGN_ERROR_CODES)
    if kind == "rate_limits.updated":
        limits = []
        for item in raw.get("rate_limits") or []:
            if isinstance(item, dict):
                reset = item.get("reset_seconds")
                limits.append(
                    (
                        str(item.get("name", "")),
                        read_count(item.get("limit")),
                        read_count(item.get("remaining")),
                        float(reset) if isinstance(reset, (int, float)) else 0.0,
                    )
                )
        return RateLimitsUpdated(limits=tuple(limits))
    if kind in KNOWN_QUIET_EVENTS:
        return None
    return ServerEventIgnored(event_label(kind))


# --- field readers -----------------------------------------------------------------------


def read_count(value: Any) -> int:
    """A non-negative int field; anything else (bool, negative, text, absent) counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def read_id(value: Any) -> str:
    """An id the server may send as a string, a number or null (null and absent -> "")."""
    return "" if value is None else str(value)


def read_str(raw: Mapping[str, Any], key: str) -> str:
    """A string field (absent or null -> ""); any other type raises ``TypeError``."""
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"'{key}' must be a string")
    return value


def event_label(kind: str) -> str:
    """An event type fit for one log line: a server could send any string as ``type``."""
    if len(kind) <= 64 and kind.isprintable():
        return kind
    return repr(kind[:60])[:70] + "..."

"""The Realtime API conversation, sans-I/O: client events out, typed server events in.

Shaped like websockets' ``protocol.py``: commands (``append_audio``, ``commit``, ...) queue
JSON text you drain with :meth:`RealtimeSession.data_to_send`; server text goes in with
:meth:`RealtimeSession.receive_text` and typed events come out of
:meth:`RealtimeSession.events_received`. The dialect (GA or beta) is fixed at construction.

This module owns the wire format of both dialects and the bookkeeping the wire needs
(which response is active, which item is the answer audio). It does not own turn-taking
(``kiosk.core.turns``), sockets (``kiosk.net``), or tools (``kiosk.rag``).

Malformed server input never raises: it becomes a :class:`ServerEventRejected` event so the
adapter logs it once and the turn machine carries on.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kiosk.core.conversation import ITEM_EVENTS, ConversationItems
from kiosk.core.events import Usage
from kiosk.errors import LocalProtocolError
from kiosk.textsafe import printable

Dialect = Literal["ga", "beta"]
TurnDetection = Literal["local", "server_vad", "semantic_vad"]

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


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What ``session.update`` says. ``tools`` are flat function tools (both dialects)."""

    instructions: str
    voice: str = "alloy"
    model: str = "gpt-realtime"  # GA only
    language: str = ""
    temperature: float = 0.8  # beta only
    max_output_tokens: int = 0  # 0 = "inf"
    turn_detection: TurnDetection = "local"
    transcription_model: str = "whisper-1"
    tools: tuple[Mapping[str, Any], ...] = ()
    # Words the recogniser should expect (the knowledge base's headings): transcription.prompt.
    transcription_prompt: str = ""


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
_AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
_TRANSCRIPT_DELTA = {
    "ga": "response.output_audio_transcript.delta",
    "beta": "response.audio_transcript.delta",
}
_KNOWN_QUIET = frozenset(
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


@dataclass(slots=True)
class _ResponseProgress:
    response_id: str
    had_audio: bool = False
    function_calls: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # call_id -> (name, args)


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_usage(raw: Any) -> Usage:
    """``response.usage`` of either dialect -> :class:`Usage` (missing parts count as 0)."""
    if not isinstance(raw, dict):
        return Usage()
    inp = raw.get("input_token_details") if isinstance(raw.get("input_token_details"), dict) else {}
    out = (
        raw.get("output_token_details") if isinstance(raw.get("output_token_details"), dict) else {}
    )
    assert isinstance(inp, dict) and isinstance(out, dict)
    input_text = _as_int(inp.get("text_tokens"))
    input_audio = _as_int(inp.get("audio_tokens"))
    output_text = _as_int(out.get("text_tokens"))
    output_audio = _as_int(out.get("audio_tokens"))
    if not (input_text or input_audio):
        input_text = _as_int(raw.get("input_tokens"))
    if not (output_text or output_audio):
        output_text = _as_int(raw.get("output_tokens"))
    return Usage(
        input_text=input_text,
        input_audio=input_audio,
        input_cached=_as_int(inp.get("cached_tokens")),
        output_text=output_text,
        output_audio=output_audio,
    )


class RealtimeSession:
    """One Realtime websocket conversation, as pure bookkeeping.

    Args:
        dialect: "ga" (``openai.types.realtime``) or "beta" (``openai.types.beta.realtime``).
        options: what ``session.update`` configures.
        middle_tier: the peer is a VoiceRAG middle tier: tools run server-side, one user turn
            yields several ``response.done`` events, and a ``response.done`` without audio is a
            hidden tool round rather than the end of the answer.

    Contract: call :meth:`configure` first; after every command call :meth:`data_to_send` and
    write each string as one text frame; feed every received text frame to
    :meth:`receive_text`, then handle :meth:`events_received`.
    """

    def __init__(
        self, dialect: Dialect, options: SessionOptions, *, middle_tier: bool = False
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise LocalProtocolError(f"unknown dialect {dialect!r}")
        if middle_tier and dialect != "beta":
            raise LocalProtocolError("a VoiceRAG middle tier speaks the beta dialect only")
        self.dialect: Dialect = dialect
        self.options = options
        self.middle_tier = middle_tier
        self._outgoing: list[str] = []
        self._incoming: list[ServerEvent] = []
        self._response: _ResponseProgress | None = None  # the response in progress, if any
        self._answer_item_id: str | None = None  # last assistant audio item (for truncate)
        self.conversation = ConversationItems()
        self.audio_sent_bytes = 0  # PCM16 24 kHz appended over this session's lifetime

    # --- client side ---------------------------------------------------------------------

    @property
    def response_active(self) -> bool:
        return self._response is not None

    @property
    def active_response_id(self) -> str | None:
        return self._response.response_id if self._response is not None else None

    @property
    def answer_item_id(self) -> str | None:
        """The item id of the latest answer audio: what ``conversation.item.truncate`` names."""
        return self._answer_item_id

    def session_update_event(self) -> dict[str, Any]:
        """The ``session.update`` client event for this dialect (also used by tests)."""
        o = self.options
        tools = [] if self.middle_tier else [dict(t) for t in o.tools]
        detection: dict[str, Any] | None
        if o.turn_detection == "local":
            detection = None
        elif o.turn_detection == "server_vad":
            detection = {"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 300}
        else:
            detection = {"type": "semantic_vad"}
        transcription: dict[str, Any] | None = None
        if o.transcription_model:
            transcription = {"model": o.transcription_model}
            if o.language:
                transcription["language"] = o.language
            if o.transcription_prompt:
                transcription["prompt"] = o.transcription_prompt
        max_tokens: int | str = o.max_output_tokens or "inf"
        session: dict[str, Any]
        if self.dialect == "ga":
            audio_in: dict[str, Any] = {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": detection,
            }
            if transcription:
                audio_in["transcription"] = transcription
            session = {
                "type": "realtime",
                "model": o.model,
                "instructions": o.instructions,
                "output_modalities": ["audio"],
                "audio": {
                    "input": audio_in,
                    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": o.voice},
                },
                "max_output_tokens": max_tokens,
            }
        else:
            session = {
                "modalities": ["audio", "text"],
                "instructions": o.instructions,
                "voice": o.voice,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "turn_detection": detection,
                "temperature": o.temperature,
                "max_response_output_tokens": max_tokens,
            }
            if transcription:
                session["input_audio_transcription"] = transcription
        if tools:
            session["tools"] = tools
            session["tool_choice"] = "auto"
        return {"type": "session.update", "session": session}

    def configure(self) -> None:
        self._send(self.session_update_event())

    def append_audio(self, pcm24k: bytes) -> None:
        """Queue PCM16 24 kHz mono audio (one ``input_audio_buffer.append``)."""
        if len(pcm24k) % 2:
            raise LocalProtocolError("PCM16 audio must have an even number of bytes")
        if not pcm24k:
            return
        self.audio_sent_bytes += len(pcm24k)
        self._send(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm24k).decode("ascii")}
        )

    def commit(self) -> None:
        self._send({"type": "input_audio_buffer.commit"})

    def clear_input(self) -> None:
        self._send({"type": "input_audio_buffer.clear"})

    def create_response(self) -> None:
        self._send({"type": "response.create"})

    def cancel_response(self) -> bool:
        """Send ``response.cancel`` if a response is in progress; returns whether it did."""
        if self._response is None:
            return False
        self._send({"type": "response.cancel"})
        return True

    def truncate_answer(self, audio_end_ms: int) -> bool:
        """Tell the server how much of the latest answer audio the listener heard."""
        if self._answer_item_id is None:
            return False
        self._send(
            {
                "type": "conversation.item.truncate",
                "item_id": self._answer_item_id,
                "content_index": 0,
                "audio_end_ms": max(0, int(audio_end_ms)),
            }
        )
        return True

    def forget_older_turns(self, keep_turns: int) -> int:
        """Delete the items before the last ``keep_turns`` visitor turns (0 = all of them);
        returns how many. Only between responses: never pull items from under an answer."""
        if self._response is not None:
            return 0
        events = self.conversation.forget(self.conversation.older_than_turns(keep_turns))
        for event in events:
            self._send(event)
        return len(events)

    def send_tool_output(self, call_id: str, output: str) -> None:
        if self.middle_tier:
            raise LocalProtocolError("tools run in the VoiceRAG middle tier, not on the kiosk")
        self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )

    def data_to_send(self) -> list[str]:
        """Drain the queued client events (JSON text frames), oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def _send(self, event: dict[str, Any]) -> None:
        self._outgoing.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))

    # --- server side ---------------------------------------------------------------------

    def events_received(self) -> list[ServerEvent]:
        out, self._incoming = self._incoming, []
        return out

    def receive_text(self, text: str) -> None:
        """Parse one server text frame; never raises for bad input."""
        if len(text) > MAX_SERVER_TEXT_CHARS:
            self._incoming.append(ServerEventRejected(f"frame of {len(text)} chars is too large"))
            return
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._incoming.append(ServerEventRejected(f"not JSON: {str(exc)[:80]}"))
            return
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            self._incoming.append(ServerEventRejected("not an event object with a string 'type'"))
            return
        try:
            event = self._parse(raw)
        except (KeyError, TypeError, ValueError, OverflowError, binascii.Error) as exc:
            self._incoming.append(
                ServerEventRejected(f"{_label(raw['type'])}: {type(exc).__name__}: {str(exc)[:80]}")
            )
            return
        if event is not None:
            self._incoming.append(event)

    def _parse(self, raw: dict[str, Any]) -> ServerEvent | None:
        kind: str = raw["type"]
        if kind in ("session.created",):
            session = raw.get("session")
            sid = session.get("id", "") if isinstance(session, dict) else ""
            return SessionReady(session_id=str(sid))
        if kind == "input_audio_buffer.committed":
            return InputCommitted(item_id=_str(raw, "item_id"))
        if kind == "input_audio_buffer.speech_started":
            return ServerSpeechStarted(audio_start_ms=_as_int(raw.get("audio_start_ms")))
        if kind == "input_audio_buffer.speech_stopped":
            return ServerSpeechStopped(audio_end_ms=_as_int(raw.get("audio_end_ms")))
        if kind == "conversation.item.input_audio_transcription.completed":
            text = printable(_str(raw, "transcript"), MAX_TRANSCRIPT_CHARS)
            return UserTranscript(item_id=_str(raw, "item_id"), text=text)
        if kind == "response.created":
            response = raw.get("response")
            # The SDK types the id Optional: a null id must not become the string "None",
            # or every audio delta of this response would look like another response's.
            rid = _id(response.get("id")) if isinstance(response, dict) else ""
            self._response = _ResponseProgress(response_id=rid)
            return ResponseStarted(response_id=rid)
        if kind == _AUDIO_DELTA[self.dialect]:
            pcm = base64.b64decode(_str(raw, "delta"), validate=True)
            if len(pcm) % 2:
                raise ValueError("odd number of PCM16 bytes")
            item_id = _str(raw, "item_id")
            rid = _str(raw, "response_id")
            if self._response is None or (rid and self._response.response_id not in ("", rid)):
                # A late delta of a finished/cancelled response: nothing to play.
                return ServerEventIgnored(kind + " (no active response)")
            self._response.had_audio = True
            self._answer_item_id = item_id or self._answer_item_id
            return AudioDelta(response_id=rid, item_id=item_id, pcm=pcm)
        if kind == _TRANSCRIPT_DELTA[self.dialect]:
            return AnswerTranscriptDelta(
                response_id=_str(raw, "response_id"),
                text=printable(_str(raw, "delta"), MAX_TRANSCRIPT_CHARS),
            )
        if kind == "response.function_call_arguments.done" or kind == "response.output_item.done":
            return self._parse_function_call(raw)
        if kind == "response.done":
            return self._finish_response(raw)
        if kind == "extension.middle_tier_tool_response":
            return MiddleTierToolResponse(
                tool_name=_str(raw, "tool_name"), tool_result=_str(raw, "tool_result")
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
                            _as_int(item.get("limit")),
                            _as_int(item.get("remaining")),
                            float(reset) if isinstance(reset, (int, float)) else 0.0,
                        )
                    )
            return RateLimitsUpdated(limits=tuple(limits))
        if kind in ITEM_EVENTS:
            self.conversation.observe(raw)
        if kind in _KNOWN_QUIET:
            return None
        return ServerEventIgnored(_label(kind))

    def _parse_function_call(self, raw: dict[str, Any]) -> ServerEvent | None:
        """Function calls arrive as ``...arguments.done`` and again in ``output_item.done``:
        report each call id once, when its arguments are complete."""
        if raw["type"] == "response.output_item.done":
            item = raw.get("item")
            if not isinstance(item, dict) or item.get("type") != "function_call":
                return None
            call_id, name, arguments = (
                _str(item, "call_id"),
                _str(item, "name"),
                _str(item, "arguments"),
            )
        else:
            call_id, name, arguments = (
                _str(raw, "call_id"),
                _str(raw, "name"),
                _str(raw, "arguments"),
            )
        if self.middle_tier:
            # The middle tier runs its tools itself (and should hide these events): never
            # report a call the kiosk would then try, and fail, to answer.
            return ServerEventIgnored(raw["type"] + " (tools run in the middle tier)")
        if self._response is None:
            return ServerEventIgnored(raw["type"] + " (no active response)")
        if call_id in self._response.function_calls:
            return None
        if not name:
            # Beta's arguments.done carries no name: wait for output_item.done, which does.
            return None
        self._response.function_calls[call_id] = (name, arguments)
        return FunctionCallRequested(
            response_id=self._response.response_id, call_id=call_id, name=name, arguments=arguments
        )

    def _finish_response(self, raw: dict[str, Any]) -> ResponseFinished:
        response = raw.get("response") if isinstance(raw.get("response"), dict) else {}
        assert isinstance(response, dict)
        rid = _id(response.get("id"))
        status = printable(str(response.get("status") or "completed"), MAX_CODE_CHARS)
        details = response.get("status_details")
        detail = ""
        if isinstance(details, dict):
            reason = details.get("reason") or details.get("type") or ""
            detail = printable(str(reason), MAX_MESSAGE_CHARS)
        active = self._response
        if rid and (active is None or active.response_id not in ("", rid)):
            # Not the response in progress: finishing it would end (or cut) the current
            # answer, and its late deltas would then be dropped as "no active response".
            return ResponseFinished(
                response_id=rid,
                status=status,
                usage=parse_usage(response.get("usage")),
                had_audio=False,
                function_calls=0,
                answer_over=False,
                status_detail=detail,
                stale=True,
            )
        progress = active if active is not None else _ResponseProgress(rid)
        # Count calls found only in response.output (if the streaming events were missed).
        output_calls = 0
        for item in response.get("output") or []:
            if isinstance(item, dict) and item.get("type") == "function_call":
                output_calls += 1
                call_id = _str(item, "call_id")
                if call_id not in progress.function_calls and not self.middle_tier:
                    progress.function_calls[call_id] = (_str(item, "name"), _str(item, "arguments"))
        self._response = None
        calls = len(progress.function_calls)
        if status == "cancelled":
            answer_over = False  # barge-in or our own cancel: the turn machine already moved on
        elif calls:
            answer_over = False  # tool round: we answer with function_call_output + response.create
        elif self.middle_tier:
            # A silent response is the middle tier's tool round. So is one that had audio and
            # still lists a function_call: VoiceRAG's response.done filter pops by reversed
            # index, so for [function_call, message] it removes the message and leaves the
            # call (for [message, function_call] it raises and drops the socket instead).
            # The kiosk runs none of these calls (function_calls stays 0).
            answer_over = progress.had_audio and not output_calls
        else:
            answer_over = True
        return ResponseFinished(
            response_id=rid or progress.response_id,
            status=status,
            usage=parse_usage(response.get("usage")),
            had_audio=progress.had_audio,
            function_calls=calls,
            answer_over=answer_over,
            status_detail=detail,
        )


def _id(value: Any) -> str:
    """An id the server may send as a string, a number or null (null and absent -> "")."""
    return "" if value is None else str(value)


def _label(kind: str) -> str:
    """An event type fit for one log line: a server could send any string as ``type``."""
    if len(kind) <= 64 and kind.isprintable():
        return kind
    return repr(kind[:60])[:70] + "..."


def _str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"'{key}' must be a string")
    return value

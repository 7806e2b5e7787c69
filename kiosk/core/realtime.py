"""The Realtime API conversation, sans-I/O: client events out, typed server events in.

Shaped like websockets' ``protocol.py``: commands (``append_audio``, ``commit``, ...) queue
JSON text you drain with :meth:`RealtimeSession.data_to_send`; server text goes in with
:meth:`RealtimeSession.receive_text` and typed events come out of
:meth:`RealtimeSession.events_received`. The dialect (GA or beta) is fixed at construction.

This module owns the session's state and the bookkeeping the wire needs (which response is
active, which item is the answer audio, which function calls were reported). The
``session.update`` configuration lives in :mod:`kiosk.core.realtime_config`, the typed
events and the stateless parsing in :mod:`kiosk.core.realtime_events`; both are re-exported
here. It does not own turn-taking (``kiosk.core.turns``), sockets (``kiosk.net``), or tools
(``kiosk.rag``).

Malformed server input never raises: it becomes a :class:`ServerEventRejected` event so the
adapter logs it once and the turn machine carries on.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from kiosk.core.conversation import ITEM_EVENTS, ConversationItems
from kiosk.core.realtime_config import Dialect, SessionOptions, TurnDetection, session_update_event
from kiosk.core.realtime_events import (
    AUDIO_DELTA_EVENT,
    BENIGN_ERROR_CODES,
    MAX_CODE_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_SERVER_TEXT_CHARS,
    MAX_TRANSCRIPT_CHARS,
    AnswerTranscriptDelta,
    AudioDelta,
    FunctionCallRequested,
    InputCommitted,
    MiddleTierToolResponse,
    RateLimitsUpdated,
    ResponseFinished,
    ResponseStarted,
    ServerError,
    ServerEvent,
    ServerEventIgnored,
    ServerEventRejected,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionReady,
    UserTranscript,
    event_label,
    parse_stateless_event,
    parse_usage,
    read_id,
    read_str,
)
from kiosk.errors import LocalProtocolError
from kiosk.textsafe import printable

# The names this module has always offered; their homes are the two modules above.
__all__ = [
    "BENIGN_ERROR_CODES",
    "MAX_CODE_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_SERVER_TEXT_CHARS",
    "MAX_TRANSCRIPT_CHARS",
    "AnswerTranscriptDelta",
    "AudioDelta",
    "Dialect",
    "FunctionCallRequested",
    "InputCommitted",
    "MiddleTierToolResponse",
    "RateLimitsUpdated",
    "RealtimeSession",
    "ResponseFinished",
    "ResponseStarted",
    "ServerError",
    "ServerEvent",
    "ServerEventIgnored",
    "ServerEventRejected",
    "ServerSpeechStarted",
    "ServerSpeechStopped",
    "SessionOptions",
    "SessionReady",
    "TurnDetection",
    "UserTranscript",
    "parse_usage",
]


@dataclass(slots=True)
class _ResponseProgress:
    response_id: str
    had_audio: bool = False
    function_calls: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # call_id -> (name, args)


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
        return session_update_event(self.dialect, self.options, middle_tier=self.middle_tier)

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
                ServerEventRejected(
                    f"{event_label(raw['type'])}: {type(exc).__name__}: {str(exc)[:80]}"
                )
            )
            return
        if event is not None:
            self._incoming.append(event)

    def _parse(self, raw: dict[str, Any]) -> ServerEvent | None:
        kind: str = raw["type"]
        if kind == "response.created":
            response = raw.get("response")
            # The SDK types the id Optional: a null id must not become the string "None",
            # or every audio delta of this response would look like another response's.
            rid = read_id(response.get("id")) if isinstance(response, dict) else ""
            self._response = _ResponseProgress(response_id=rid)
            return ResponseStarted(response_id=rid)
        if kind == AUDIO_DELTA_EVENT[self.dialect]:
            pcm = base64.b64decode(read_str(raw, "delta"), validate=True)
            if len(pcm) % 2:
                raise ValueError("odd number of PCM16 bytes")
            item_id = read_str(raw, "item_id")
            rid = read_str(raw, "response_id")
            if self._response is None or (rid and self._response.response_id not in ("", rid)):
                # A late delta of a finished/cancelled response: nothing to play.
                return ServerEventIgnored(kind + " (no active response)")
            self._response.had_audio = True
            self._answer_item_id = item_id or self._answer_item_id
            return AudioDelta(response_id=rid, item_id=item_id, pcm=pcm)
        if kind == "response.function_call_arguments.done" or kind == "response.output_item.done":
            return self._parse_function_call(raw)
        if kind == "response.done":
            return self._finish_response(raw)
        if kind in ITEM_EVENTS:
            self.conversation.observe(raw)
        return parse_stateless_event(raw, self.dialect)

    def _parse_function_call(self, raw: dict[str, Any]) -> ServerEvent | None:
        """Function calls arrive as ``...arguments.done`` and again in ``output_item.done``:
        report each call id once, when its arguments are complete."""
        if raw["type"] == "response.output_item.done":
            item = raw.get("item")
            if not isinstance(item, dict) or item.get("type") != "function_call":
                return None
            call_id, name, arguments = (
                read_str(item, "call_id"),
                read_str(item, "name"),
                read_str(item, "arguments"),
            )
        else:
            call_id, name, arguments = (
                read_str(raw, "call_id"),
                read_str(raw, "name"),
                read_str(raw, "arguments"),
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
        rid = read_id(response.get("id"))
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
                call_id = read_str(item, "call_id")
                if call_id not in progress.function_calls and not self.middle_tier:
                    progress.function_calls[call_id] = (
                        read_str(item, "name"),
                        read_str(item, "arguments"),
                    )
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

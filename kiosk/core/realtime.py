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
    cancelled: bool = False  # we sent response.cancel: its response.done is on its way
    function_calls: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # call_id -> (name, args)


REQUEST_TAG = "kiosk_request"  # response metadata key: which response.create this answers


def _request_number(response: object) -> int:
    """The kiosk's request number echoed in a response's metadata (0: none, e.g. a
    middle tier's own response or a server that does not echo metadata)."""
    meta = response.get("metadata") if isinstance(response, dict) else None
    value = meta.get(REQUEST_TAG) if isinstance(meta, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 10 else 0


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
        # Each response.create carries metadata {"kiosk_request": n} (echoed in
        # response.created): requests up to _unwanted_upto belong to dropped turns and are
        # cancelled as they begin; _discarding is such a response while it winds down.
        self._request_seq = 0
        self._unwanted_upto = 0
        self._discarding: str | None = None
        self._create_deferred = False  # a response.create held until the last one is done
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
        """Ask for a response (tagged, so that one for a dropped turn is known as it begins).
        Not held back: a server that never ends a cancelled response must not wedge the
        kiosk; if it refuses (``conversation_already_has_active_response``) while one we
        cancelled winds down, the request is sent again after that one's ``response.done``."""
        self._create_deferred = False
        self._request_seq += 1
        self._send(
            {
                "type": "response.create",
                "response": {"metadata": {REQUEST_TAG: str(self._request_seq)}},
            }
        )

    def cancel_response(self) -> bool:
        """Cancel the response in progress; a response asked for and not yet begun is
        cancelled as it begins (its answer would be billed and thrown away), and a held
        request is dropped. Returns whether a response in progress was cancelled."""
        self._create_deferred = False
        self._unwanted_upto = self._request_seq
        if self._response is None:
            return False
        if not self._response.cancelled:  # once is enough
            self._response.cancelled = True
            self._send({"type": "response.cancel"})
        return True

    def _winding_down(self) -> bool:
        active = self._response
        return (active is not None and active.cancelled) or self._discarding is not None

    def _release_holds(self) -> None:
        self._create_deferred = False
        self._discarding = None
        if self._response is not None and self._response.cancelled:
            self._response = None

    def _send_deferred_create(self) -> None:
        if self._create_deferred:
            self._create_deferred = False
            self.create_response()

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
        if kind == "error":
            err = raw.get("error") if isinstance(raw.get("error"), dict) else {}
            behind_dropped = self._winding_down() or self._request_seq > self._unwanted_upto > 0
            if err.get("code") == "conversation_already_has_active_response" and behind_dropped:
                # Refused behind the response of a dropped turn (begun or about to): asked
                # again when that one's response.done arrives.
                self._create_deferred = True
            else:
                # A server in trouble may never end what we cancelled: waiting on it would
                # hold the next turn's request for good.
                deferred = self._create_deferred
                self._release_holds()
                if deferred:
                    self.create_response()
        if kind == "response.created":
            response = raw.get("response")
            # The SDK types the id Optional: a null id must not become the string "None",
            # or every audio delta of this response would look like another response's.
            rid = read_id(response.get("id")) if isinstance(response, dict) else ""
            if 0 < _request_number(response) <= self._unwanted_upto:
                # Requested for a turn that has since been dropped: cancel it now; its deltas
                # and calls are ignored, and its response.done arrives as stale.
                self._discarding = rid
                self._send({"type": "response.cancel"})
                return ServerEventIgnored("response.created (cancelled as it began)")
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
        discarded = active is None and self._discarding is not None and rid in ("", self._discarding)
        if discarded:  # the one cancelled as it began is over: a held request may go now
            self._discarding = None
            self._send_deferred_create()
        if discarded or (rid and (active is None or active.response_id not in ("", rid))):
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
        self._send_deferred_create()
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

"""One connection's conversation on the fake Realtime server.

Owns: the per-connection state and event handling of :mod:`kiosk.testing.fake_realtime`:
session config (defaults as the API reports them, deep-merged updates), the input audio
buffer with an energy-threshold server-VAD emulation, conversation items, the scripted
responses (tool rounds, spoken answer paced in real time, VoiceRAG's hidden tool rounds),
cancel and truncate, usage accounting, and the conversation-level fault hooks of
:class:`~kiosk.testing.fake_script.FakeScript`.

Does not own: the listening socket, the handshake, auth and connection-level fault hooks
(:class:`~kiosk.testing.fake_realtime.FakeRealtimeServer`, the "host" here).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from kiosk.testing.fake_script import (
    RATE_HZ,
    ConnectionRecord,
    FakeScript,
    JsonDict,
    Truncation,
    chunk_ids_from_search_output,
    speech_like_pcm16,
)
from kiosk.testing.validation import Dialect, validate_client_event

log = logging.getLogger(__name__)

Mode = Literal["direct", "voicerag"]
DropPoint = Literal["mid_audio", "before_response_done"]

_BYTES_PER_MS = RATE_HZ * 2 // 1000  # PCM16 mono
# The API refuses a commit of less than 100 ms of audio with this code.
_MIN_COMMIT_MS = 100
# Server VAD keeps this much audio from before speech onset (the API's prefix_padding_ms).
_PREFIX_PADDING_MS = 300

# Event names that differ between dialects (docs/realtime-protocol.md).
_NAMES: dict[Dialect, dict[str, str]] = {
    "ga": {
        "audio_delta": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript_delta": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "assistant_audio_part": "output_audio",
    },
    "beta": {
        "audio_delta": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript_delta": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "assistant_audio_part": "audio",
    },
}

_TURN_DETECTION: JsonDict = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": _PREFIX_PADDING_MS,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}

# What a VoiceRAG middle tier writes over the client's session.update (its ragtools.py
# declares these two tools; descriptions here are ours).
_VOICERAG_INSTRUCTIONS = "Answer only from the knowledge base, briefly. Cite with report_grounding."
_VOICERAG_TOOLS: list[JsonDict] = [
    {
        "type": "function",
        "name": "search",
        "description": "Search the knowledge base.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": "report_grounding",
        "description": "Report the knowledge base sources used in the answer.",
        "parameters": {
            "type": "object",
            "properties": {"sources": {"type": "array", "items": {"type": "string"}}},
            "required": ["sources"],
            "additionalProperties": False,
        },
    },
]


class ConversationHost(Protocol):
    """What a conversation needs from the server that accepted its connection."""

    dialect: Dialect
    mode: Mode
    script: FakeScript
    validation_errors: list[str]
    truncations: list[Truncation]

    def notify_changed(self) -> None: ...
    def take_drop_after_event(self) -> bool: ...
    def take_drop_point(self, point: DropPoint) -> bool: ...


class _Aborted(Exception):
    """A fault hook aborted or silenced this connection: stop whatever was being sent."""


@dataclass
class _ActiveResponse:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = "client_cancelled"
    response_id: str | None = None
    task: asyncio.Task[None] | None = None


class FakeConversation:
    """The state of one connection: session config, audio buffer, conversation, responses.

    Call :meth:`run` once; it returns when the connection closes or is aborted.
    """

    def __init__(
        self, server: ConversationHost, connection: ServerConnection, record: ConnectionRecord
    ) -> None:
        self.server = server
        self.dialect: Dialect = server.dialect
        self.voicerag = server.mode == "voicerag"
        self.connection = connection
        self.record = record
        self.names = _NAMES[self.dialect]
        self._ids = itertools.count(1)
        self.session = _default_session(self.dialect, voicerag=self.voicerag)
        self.audio = bytearray()
        self.last_item_id: str | None = None
        self.assistant_audio_ms = record.answer_audio_ms  # item id -> ms of audio sent
        self.known_items: set[str] = set()
        self.pending_calls: dict[str, str] = {}  # call_id -> tool name
        self.turn_phase = 0  # 0 fresh turn, 1 after search, 2 after grounding, 3 answered
        self.turn_failed = False
        self.search_output = ""
        self.active: _ActiveResponse | None = None
        self.aborted = False
        self.upstream_dropped = False  # see FakeRealtimeServer.drop_upstream
        # Usage accounting: the whole conversation is input to every response.
        self.context_audio_s = 0.0
        self.context_text_tokens = 40
        # What each item added to the context, so conversation.item.delete shrinks it again.
        self.item_context: dict[str, tuple[float, int]] = {}
        self.previous_input_tokens = 0
        # Server-VAD emulation.
        self.vad_speaking = False
        self.vad_silence_ms = 0.0
        self.vad_position_ms = 0.0
        self.vad_item_id = ""

    @property
    def script(self) -> FakeScript:
        return self.server.script

    # -- main loop -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.send({"type": "session.created", "session": self._session_view()})
            async for message in self.connection:
                await self._receive(message)
                if self.aborted:
                    break
        except (ConnectionClosed, _Aborted):
            pass
        finally:
            if self.active is not None and self.active.task is not None:
                self.active.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.active.task

    async def _receive(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._reject_event("?: binary frame (the API takes JSON text frames)", None)
            return
        try:
            event = json.loads(message)
        except ValueError as exc:
            await self._reject_event(f"?: not JSON ({exc})", None)
            return
        if not isinstance(event, dict):
            await self._reject_event("?: not a JSON object", None)
            return
        self.record.received.append(event)
        self.server.notify_changed()
        log.debug("< %s", event.get("type"))
        if self.upstream_dropped:
            # VoiceRAG's forwarding loop ends on the client's next message: a normal close.
            await self.connection.close(1000)
            return
        if self.server.take_drop_after_event():
            self._abort()
            return
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        errors = validate_client_event(event, self.dialect)
        if errors:
            await self._reject_event(errors, client_event_id)
            return
        if self.voicerag and event["type"] == "session.update" and event["session"].get("tools"):
            # The middle tier overwrites them; a kiosk pointed at VoiceRAG must not send any.
            self.server.validation_errors.append(
                "session.update: voicerag: the client must not declare tools"
            )
        if self.script.silent:
            return
        await self._dispatch(event, client_event_id)

    async def _reject_event(self, errors: str | list[str], client_event_id: str | None) -> None:
        lines = [errors] if isinstance(errors, str) else errors
        self.server.validation_errors.extend(lines)
        if not self.script.silent:
            await self.error(
                "invalid_request_error", "invalid_event", "; ".join(lines), client_event_id
            )

    async def _dispatch(self, event: JsonDict, client_event_id: str | None) -> None:
        match event["type"]:
            case "session.update":
                await self._update_session(event["session"])
            case "input_audio_buffer.append":
                await self._append(event["audio"], client_event_id)
            case "input_audio_buffer.commit":
                # A manual commit ends whatever speech server VAD was tracking.
                self.vad_speaking = False
                await self._commit(item_id=self.new_id("item"), client_event_id=client_event_id)
            case "input_audio_buffer.clear":
                self.audio.clear()
                await self.send({"type": "input_audio_buffer.cleared"})
            case "response.create":
                await self._start_response(client_event_id)
            case "response.cancel":
                await self._cancel(client_event_id)
            case "conversation.item.create":
                await self._create_item(event["item"], client_event_id)
            case "conversation.item.truncate":
                await self._truncate(event, client_event_id)
            case "conversation.item.delete":
                self.known_items.discard(event["item_id"])
                self._forget_context(str(event["item_id"]))
                await self.send({"type": "conversation.item.deleted", "item_id": event["item_id"]})
            case other:
                await self.error(
                    "invalid_request_error",
                    "fake_unsupported_event",
                    f"the fake server does not implement {other}",
                    client_event_id,
                )

    # -- sending ---------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    async def send(self, event: JsonDict) -> None:
        """Send one server event, adding its ``event_id``."""
        await self.send_raw(json.dumps({"event_id": self.new_id("event"), **event}))
        log.debug("> %s", event["type"])

    async def send_raw(self, text: str) -> None:
        if self.aborted or self.upstream_dropped:
            raise _Aborted
        self.record.sent.append(text)
        self.server.notify_changed()
        await self.connection.send(text)

    async def error(
        self, error_type: str, code: str, message: str, client_event_id: str | None = None
    ) -> None:
        error: JsonDict = {"type": error_type, "code": code, "message": message}
        if client_event_id is not None:
            error["event_id"] = client_event_id
        await self.send({"type": "error", "error": error})

    def _abort(self) -> None:
        # transport.abort() sends no close frame and no FIN handshake: the client sees 1006.
        log.debug("= aborting connection (fault hook)")
        self.aborted = True
        self.connection.transport.abort()

    # -- session ---------------------------------------------------------------------

    async def _update_session(self, update: JsonDict) -> None:
        if "tools" in update:
            # What the client declared (in voicerag mode the session's tools are the tier's).
            declared = update.get("tools") or []
            self.record.declared_tools = [str(tool.get("name")) for tool in declared]
        _deep_merge(self.session, update)
        if self.voicerag:
            # VoiceRAG's middle tier overwrites these on every session.update.
            self.session.update(
                instructions=_VOICERAG_INSTRUCTIONS,
                tools=copy.deepcopy(_VOICERAG_TOOLS),
                tool_choice="auto",
            )
        await self.send({"type": "session.updated", "session": self._session_view()})

    def _session_view(self) -> JsonDict:
        view = copy.deepcopy(self.session)
        # Update-only keys the server's session type does not declare: never echoed.
        view.pop("client_secret", None)
        return view

    def declared_tools(self) -> set[str]:
        tools = self.session.get("tools") or []
        return {str(tool.get("name")) for tool in tools if isinstance(tool, dict)}

    def _turn_detection(self) -> JsonDict | None:
        if self.dialect == "ga":
            detection = self.session.get("audio", {}).get("input", {}).get("turn_detection")
        else:
            detection = self.session.get("turn_detection")
        return detection if isinstance(detection, dict) else None

    def _transcription_on(self) -> bool:
        if self.dialect == "ga":
            return bool(self.session.get("audio", {}).get("input", {}).get("transcription"))
        return bool(self.session.get("input_audio_transcription"))

    # -- input audio -----------------------------------------------------------------

    async def _append(self, audio_b64: str, client_event_id: str | None) -> None:
        try:
            pcm = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            await self._reject_event(
                "input_audio_buffer.append: audio: invalid base64", client_event_id
            )
            return
        if len(pcm) % 2:
            await self._reject_event(
                "input_audio_buffer.append: audio: odd byte count (PCM16 needs whole samples)",
                client_event_id,
            )
            return
        self.audio.extend(pcm)
        self.record.input_audio_ms += len(pcm) / _BYTES_PER_MS
        detection = self._turn_detection()
        if detection is not None:
            await self._server_vad(pcm, detection)

    async def _server_vad(self, pcm: bytes, detection: JsonDict) -> None:
        chunk_ms = len(pcm) / _BYTES_PER_MS
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
        speech = rms >= self.script.vad_rms_threshold
        start_ms = self.vad_position_ms
        self.vad_position_ms += chunk_ms
        if not self.vad_speaking:
            if speech:
                self.vad_speaking = True
                self.vad_silence_ms = 0.0
                self.vad_item_id = self.new_id("item")
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": round(start_ms),
                        "item_id": self.vad_item_id,
                    }
                )
                if self.active is not None and detection.get("interrupt_response", True):
                    self.active.cancel_reason = "turn_detected"
                    self.active.cancel.set()
            else:
                # Like the API, keep only prefix padding of the audio before speech.
                keep = _PREFIX_PADDING_MS * _BYTES_PER_MS
                if len(self.audio) > keep:
                    del self.audio[: len(self.audio) - keep]
            return
        self.vad_silence_ms = 0.0 if speech else self.vad_silence_ms + chunk_ms
        silence_needed = self.script.vad_silence_ms
        if silence_needed is None:
            silence_needed = detection.get("silence_duration_ms") or 500
        if self.vad_silence_ms < silence_needed:
            return
        self.vad_speaking = False
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": round(self.vad_position_ms),
                "item_id": self.vad_item_id,
            }
        )
        committed = await self._commit(item_id=self.vad_item_id, client_event_id=None)
        if committed and detection.get("create_response", True):
            await self._start_response(None)

    async def _commit(self, *, item_id: str, client_event_id: str | None) -> bool:
        audio_ms = len(self.audio) / _BYTES_PER_MS
        if audio_ms < _MIN_COMMIT_MS:
            await self.error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{_MIN_COMMIT_MS}ms of audio, but buffer only has {audio_ms:.2f}ms of audio.",
                client_event_id,
            )
            return False
        self.audio.clear()
        previous = self.last_item_id
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._announce_item(item, previous)
        self._new_turn(audio_s=audio_ms / 1000, item_id=item_id)
        if self._transcription_on():
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": self.script.transcript,
                    "usage": {"type": "duration", "seconds": round(audio_ms / 1000, 3)},
                }
            )
        if self.script.error_after_commit is not None:
            self.turn_failed = True
            await self.error(
                "server_error",
                self.script.error_after_commit,
                "The fake server was told to fail this turn.",
            )
        return True

    def _new_turn(self, *, audio_s: float = 0.0, text: str = "", item_id: str = "") -> None:
        self.turn_phase = 0
        self.turn_failed = False
        self.search_output = ""
        self._add_context(item_id, audio_s=audio_s, text_tokens=_text_tokens(text))

    def _add_context(self, item_id: str, *, audio_s: float = 0.0, text_tokens: int = 0) -> None:
        self.context_audio_s += audio_s
        self.context_text_tokens += text_tokens
        if item_id:
            was_audio, was_text = self.item_context.get(item_id, (0.0, 0))
            self.item_context[item_id] = (was_audio + audio_s, was_text + text_tokens)

    def _forget_context(self, item_id: str) -> None:
        audio_s, text_tokens = self.item_context.pop(item_id, (0.0, 0))
        self.context_audio_s = max(0.0, self.context_audio_s - audio_s)
        self.context_text_tokens = max(0, self.context_text_tokens - text_tokens)

    async def _announce_item(self, item: JsonDict, previous_item_id: str | None) -> None:
        """conversation.item.created (both dialects) + GA's added/done for a finished item."""
        self.known_items.add(item["id"])
        self.last_item_id = item["id"]
        await self.send(
            {
                "type": "conversation.item.created",
                "previous_item_id": previous_item_id,
                "item": item,
            }
        )
        if self.dialect == "ga":
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": previous_item_id,
                    "item": item,
                }
            )
            await self.send(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": previous_item_id,
                    "item": item,
                }
            )

    # -- conversation items ------------------------------------------------------------

    async def _create_item(self, item: JsonDict, client_event_id: str | None) -> None:
        item = {**item, "id": item.get("id") or self.new_id("item"), "object": "realtime.item"}
        item.setdefault("status", "completed")
        if item.get("type") == "function_call_output":
            call_id = item.get("call_id")
            name = self.pending_calls.pop(str(call_id), None)
            if name is None:
                await self.error(
                    "invalid_request_error",
                    "invalid_value",
                    f"no function call with call_id {call_id!r} awaits output",
                    client_event_id,
                )
                return
            if name == "search":
                self.search_output = str(item.get("output", ""))
            self._add_context(item["id"], text_tokens=_text_tokens(str(item.get("output", ""))))
        elif item.get("type") == "message" and item.get("role") == "user":
            texts = [str(part.get("text") or "") for part in item.get("content") or []]
            self._new_turn(text=" ".join(texts), item_id=item["id"])
        await self._announce_item(item, self.last_item_id)

    async def _truncate(self, event: JsonDict, client_event_id: str | None) -> None:
        item_id = str(event["item_id"])
        audio_end_ms = int(event["audio_end_ms"])
        if item_id not in self.assistant_audio_ms:
            await self.error(
                "invalid_request_error",
                "invalid_value",
                f"no assistant audio item {item_id!r} to truncate",
                client_event_id,
            )
            return
        sent_ms = self.assistant_audio_ms[item_id]
        self.server.truncations.append(Truncation(item_id, audio_end_ms, sent_ms))
        self.server.notify_changed()
        if audio_end_ms > sent_ms:
            await self.error(
                "invalid_request_error",
                "invalid_value",
                f"audio_end_ms {audio_end_ms} is past the {sent_ms} ms of audio sent",
                client_event_id,
            )
            return
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": event["content_index"],
                "audio_end_ms": audio_end_ms,
            }
        )

    # -- responses -------------------------------------------------------------------

    async def _start_response(self, client_event_id: str | None) -> None:
        if self.active is not None:
            await self.error(
                "invalid_request_error",
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
                client_event_id,
            )
            return
        if self.turn_failed:
            return
        active = _ActiveResponse()
        self.active = active
        active.task = asyncio.create_task(self._run_response(active))

    async def _cancel(self, client_event_id: str | None) -> None:
        if self.active is None:
            await self.error(
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                client_event_id,
            )
            return
        self.active.cancel_reason = "client_cancelled"
        self.active.cancel.set()
        # Let the response task send its response.done before the next client event.
        if self.active.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.active.task)

    async def _run_response(self, active: _ActiveResponse) -> None:
        try:
            if self.script.response_delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(active.cancel.wait(), self.script.response_delay_s)
            if self.voicerag:
                await self._voicerag_turn(active)
            else:
                await self._direct_response(active)
        except (ConnectionClosed, _Aborted):
            pass
        finally:
            if self.active is active:
                self.active = None

    async def _direct_response(self, active: _ActiveResponse) -> None:
        tools = self.declared_tools()
        if self.turn_phase == 0 and self.script.call_search and "search" in tools:
            self.turn_phase = 1
            await self._function_call(active, "search", {"query": self.script.search_query})
        elif self.turn_phase == 1 and self.script.call_grounding and "report_grounding" in tools:
            self.turn_phase = 2
            sources = chunk_ids_from_search_output(self.search_output)
            await self._function_call(active, "report_grounding", {"sources": sources})
        else:
            self.turn_phase = 3
            await self._spoken_answer(active)

    async def _voicerag_turn(self, active: _ActiveResponse) -> None:
        # What a VoiceRAG client sees: tool rounds as empty response.created/done pairs,
        # the grounding result as an extension event, then the spoken answer.
        if self.script.call_search:
            await self._function_call(
                active, "search", {"query": self.script.search_query}, hidden=True
            )
            self.context_text_tokens += 200  # the search output it fed upstream
        if active.cancel.is_set():
            return
        if self.script.call_grounding:
            sources = [str(s.get("chunk_id", "")) for s in self.script.grounding_sources]
            await self._function_call(active, "report_grounding", {"sources": sources}, hidden=True)
        if active.cancel.is_set():
            return
        await self._spoken_answer(active)

    async def _function_call(
        self, active: _ActiveResponse, name: str, arguments: JsonDict, *, hidden: bool = False
    ) -> None:
        response_id = self.new_id("resp")
        active.response_id = response_id
        item_id = self.new_id("item")
        call_id = self.new_id("call")
        arguments_json = json.dumps(arguments)
        previous = self.last_item_id
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        done_item = {**item, "status": "completed", "arguments": arguments_json}
        usage = self._usage(output_text_tokens=_text_tokens(arguments_json))
        await self.send({"type": "response.created", "response": _response(response_id)})
        if hidden:
            # VoiceRAG runs the tool itself; only report_grounding reaches the client.
            self.last_item_id = item_id
            if name == "report_grounding":
                await self.send_raw(
                    json.dumps(
                        {
                            "type": "extension.middle_tier_tool_response",
                            "previous_item_id": previous,
                            "tool_name": name,
                            "tool_result": json.dumps({"sources": self.script.grounding_sources}),
                        }
                    )
                )
            self.last_item_id = self.new_id("item")  # its function_call_output item
            await self.send(
                {"type": "response.done", "response": _response(response_id, [], usage=usage)}
            )
            return
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        self.known_items.add(item_id)
        self.last_item_id = item_id
        await self.send(
            {"type": "conversation.item.created", "previous_item_id": previous, "item": item}
        )
        if self.dialect == "ga":
            await self.send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        half = len(arguments_json) // 2
        for delta in (arguments_json[:half], arguments_json[half:]):
            await self.send(
                {
                    "type": "response.function_call_arguments.delta",
                    **where,
                    "call_id": call_id,
                    "delta": delta,
                }
            )
        arguments_done: JsonDict = {
            "type": "response.function_call_arguments.done",
            **where,
            "call_id": call_id,
            "arguments": arguments_json,
        }
        if self.dialect == "ga":
            arguments_done["name"] = name
        await self.send(arguments_done)
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": done_item,
            }
        )
        if self.dialect == "ga":
            await self.send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": done_item}
            )
        self.pending_calls[call_id] = name
        await self.send(
            {"type": "response.done", "response": _response(response_id, [done_item], usage=usage)}
        )

    async def _spoken_answer(self, active: _ActiveResponse) -> None:
        script = self.script
        response_id = self.new_id("resp")
        active.response_id = response_id
        item_id = self.new_id("item")
        previous = self.last_item_id
        delta_ms = max(1, script.delta_ms)
        pcm = script.answer_pcm
        if pcm is None:
            pcm = speech_like_pcm16(script.answer_audio_s)
        chunk_bytes = delta_ms * _BYTES_PER_MS
        chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
        words = script.answer_text.split()
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        where = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
        self.assistant_audio_ms[item_id] = 0
        self.known_items.add(item_id)
        self.last_item_id = item_id
        await self.send({"type": "response.created", "response": _response(response_id)})
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        await self.send(
            {"type": "conversation.item.created", "previous_item_id": previous, "item": item}
        )
        if self.dialect == "ga":
            await self.send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        await self.send(
            {
                "type": "response.content_part.added",
                **where,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        if script.send_garbage == "non_json":
            await self.send_raw("this is not JSON {")
        elif script.send_garbage == "unknown_type":
            await self.send({"type": "fake.unknown_event", "detail": "clients must ignore this"})

        loop = asyncio.get_running_loop()
        started = loop.time()
        words_sent = 0
        sent_ms = 0
        for index, chunk in enumerate(chunks):
            if script.realtime_pacing and index > 0:
                delay = started + index * delta_ms / 1000 - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(active.cancel.wait(), delay)
            if active.cancel.is_set():
                break
            if index == len(chunks) // 2 and self.server.take_drop_point("mid_audio"):
                self._abort()
                raise _Aborted
            audio_b64 = base64.b64encode(chunk).decode("ascii")
            if index == 0 and script.send_garbage == "bad_base64":
                audio_b64 = "@@ not base64 @@"
            await self.send({"type": self.names["audio_delta"], **where, "delta": audio_b64})
            sent_ms += len(chunk) // _BYTES_PER_MS
            self.assistant_audio_ms[item_id] = sent_ms
            # Spread the words over the audio so the transcript keeps pace with it.
            words_due = math.ceil(len(words) * (index + 1) / len(chunks))
            if words_due > words_sent:
                text = " ".join(words[words_sent:words_due])
                await self.send(
                    {
                        "type": self.names["transcript_delta"],
                        **where,
                        "delta": (" " if words_sent else "") + text,
                    }
                )
                words_sent = words_due
            await asyncio.sleep(0)  # let a response.cancel in the socket be read

        cancelled = active.cancel.is_set()
        transcript = " ".join(words[:words_sent])
        part = {"type": self.names["assistant_audio_part"], "transcript": transcript}
        done_item = {
            **item,
            "status": "incomplete" if cancelled else "completed",
            "content": [part],
        }
        await self.send({"type": self.names["audio_done"], **where})
        await self.send({"type": self.names["transcript_done"], **where, "transcript": transcript})
        await self.send(
            {
                "type": "response.content_part.done",
                **where,
                "part": {"type": "audio", "transcript": transcript},
            }
        )
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": done_item,
            }
        )
        if self.dialect == "ga":
            await self.send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": done_item}
            )
        if self.server.take_drop_point("before_response_done"):
            self._abort()
            raise _Aborted
        usage = self._usage(
            output_text_tokens=_text_tokens(transcript), output_audio_s=sent_ms / 1000
        )
        self._add_context(item_id, text_tokens=_text_tokens(transcript))
        status_details = (
            {"type": "cancelled", "reason": active.cancel_reason} if cancelled else None
        )
        await self.send(
            {
                "type": "response.done",
                "response": _response(
                    response_id,
                    [done_item],
                    status="cancelled" if cancelled else "completed",
                    status_details=status_details,
                    usage=usage,
                ),
            }
        )
        await self.send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
                ],
            }
        )

    def _usage(self, *, output_text_tokens: int, output_audio_s: float = 0.0) -> JsonDict:
        """Token usage at the documented rough rates: 10/s user audio in, 20/s audio out.

        Every response re-reads the whole conversation, so input grows turn by turn, and
        the prefix that the previous response read counts as cached.
        """
        text_in = self.context_text_tokens + _text_tokens(str(self.session.get("instructions")))
        audio_in = round(self.context_audio_s * 10)
        input_tokens = text_in + audio_in
        cached = min(self.previous_input_tokens, input_tokens)
        self.previous_input_tokens = input_tokens
        audio_out = round(output_audio_s * 20)
        output_tokens = output_text_tokens + audio_out
        input_details: JsonDict = {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "cached_tokens": cached,
        }
        if self.dialect == "ga":
            cached_text = min(cached, text_in)
            input_details["cached_tokens_details"] = {
                "text_tokens": cached_text,
                "audio_tokens": cached - cached_text,
            }
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": output_text_tokens, "audio_tokens": audio_out},
        }


def _text_tokens(text: str) -> int:
    # ~4 characters a token, the usual English rule of thumb.
    return math.ceil(len(text) / 4)


def _response(
    response_id: str,
    output: Sequence[JsonDict] = (),
    *,
    status: str | None = None,
    status_details: JsonDict | None = None,
    usage: JsonDict | None = None,
) -> JsonDict:
    done = usage is not None
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": status or ("completed" if done else "in_progress"),
        "status_details": status_details,
        "output": list(output),
        "usage": usage,
    }


def _default_session(dialect: Dialect, *, voicerag: bool) -> JsonDict:
    """What session.created reports: the API's defaults (server VAD on, no transcription)."""
    if dialect == "ga":
        return {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": RATE_HZ},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(_TURN_DETECTION),
                },
                "output": {"format": {"type": "audio/pcm", "rate": RATE_HZ}, "voice": "marin"},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
        }
    session: JsonDict = {
        "id": "sess_fake",
        "model": "gpt-4o-realtime-preview",
        "modalities": ["audio", "text"],
        "instructions": "",
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "turn_detection": dict(_TURN_DETECTION),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
    }
    if voicerag:
        # The middle tier blanks these in session.created (rtmt.py).
        session.update(tool_choice="none", max_response_output_tokens=None)
    return session


def _deep_merge(target: JsonDict, update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)

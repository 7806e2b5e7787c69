"""One connection's conversation on the fake Realtime server.

Owns: the per-connection state and client-event handling of
:mod:`kiosk.testing.fake_realtime`: validating and dispatching client events, the session
config (its shapes: :mod:`kiosk.testing.fake_session`), the input audio buffer with an
energy-threshold server-VAD emulation, conversation items, starting and cancelling
responses, truncate, and the conversation-level fault hooks of
:class:`~kiosk.testing.fake_script.FakeScript`.

Does not own: what a response streams (tool rounds, the spoken answer paced in real time,
VoiceRAG's hidden tool rounds: :mod:`kiosk.testing.fake_responses`), usage accounting
(:mod:`kiosk.testing.fake_usage`), the listening socket, the handshake, auth and
connection-level fault hooks (:class:`~kiosk.testing.fake_realtime.FakeRealtimeServer`,
the "host" here).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
from typing import Literal, Protocol

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from kiosk.testing.fake_responses import Aborted, ScriptedResponse
from kiosk.testing.fake_script import (
    BYTES_PER_MS,
    ConnectionRecord,
    FakeScript,
    JsonDict,
    Truncation,
)
from kiosk.testing.fake_session import (
    EVENT_NAMES,
    PREFIX_PADDING_MS,
    apply_session_update,
    declared_tool_names,
    default_session,
    session_view,
    transcription_on,
    turn_detection,
)
from kiosk.testing.fake_usage import UsageMeter, text_tokens
from kiosk.testing.validation import Dialect, validate_client_event

log = logging.getLogger(__name__)

Mode = Literal["direct", "voicerag"]
DropPoint = Literal["mid_audio", "before_response_done"]

# The API refuses a commit of less than 100 ms of audio with this code.
_MIN_COMMIT_MS = 100


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
        self.names = EVENT_NAMES[self.dialect]
        self._ids = itertools.count(1)
        self.session = default_session(self.dialect, voicerag=self.voicerag)
        self.audio = bytearray()
        self.last_item_id: str | None = None
        self.assistant_audio_ms = record.answer_audio_ms  # item id -> ms of audio sent
        self.known_items: set[str] = set()
        self.pending_calls: dict[str, str] = {}  # call_id -> tool name
        self.turn_phase = 0  # 0 fresh turn, 1 after search, 2 after grounding, 3 answered
        self.turn_failed = False
        self.search_output = ""
        self.active: ScriptedResponse | None = None
        self.aborted = False
        self.upstream_dropped = False  # see FakeRealtimeServer.drop_upstream
        self.usage_meter = UsageMeter(self.dialect)
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
            await self.send({"type": "session.created", "session": session_view(self.session)})
            async for message in self.connection:
                await self._receive(message)
                if self.aborted:
                    break
        except (ConnectionClosed, Aborted):
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
            self.abort()
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
                params = event.get("response")
                meta = params.get("metadata") if isinstance(params, dict) else None
                await self._start_response(client_event_id, meta if isinstance(meta, dict) else None)
            case "response.cancel":
                await self._cancel(client_event_id)
            case "conversation.item.create":
                await self._create_item(event["item"], client_event_id)
            case "conversation.item.truncate":
                await self._truncate(event, client_event_id)
            case "conversation.item.delete":
                self.known_items.discard(event["item_id"])
                self.usage_meter.forget_context(str(event["item_id"]))
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
            raise Aborted
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

    def abort(self) -> None:
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
        apply_session_update(self.session, update, voicerag=self.voicerag)
        await self.send({"type": "session.updated", "session": session_view(self.session)})

    def declared_tools(self) -> set[str]:
        return declared_tool_names(self.session)

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
        self.record.input_audio_ms += len(pcm) / BYTES_PER_MS
        detection = turn_detection(self.session, self.dialect)
        if detection is not None:
            await self._server_vad(pcm, detection)

    async def _server_vad(self, pcm: bytes, detection: JsonDict) -> None:
        chunk_ms = len(pcm) / BYTES_PER_MS
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
                keep = PREFIX_PADDING_MS * BYTES_PER_MS
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
        audio_ms = len(self.audio) / BYTES_PER_MS
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
        if transcription_on(self.session, self.dialect):
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
        self.usage_meter.add_context(item_id, audio_s=audio_s, text_tokens=text_tokens(text))

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
            self.usage_meter.add_context(
                item["id"], text_tokens=text_tokens(str(item.get("output", "")))
            )
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

    async def _start_response(
        self, client_event_id: str | None, metadata: JsonDict | None = None
    ) -> None:
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
        active = ScriptedResponse(self, metadata)
        self.active = active
        active.task = asyncio.create_task(active.run())

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

"""The local engine behind the Realtime protocol: a GA-dialect websocket server on loopback.

The kiosk talks to it exactly as to OpenAI (:class:`kiosk.app.KioskPipeline`, same turn
machine, barge-in, earcons, LEDs, journal line, citations), so there is one code path. It
acts like a model that always does the same three things per turn:

1. on ``input_audio_buffer.commit`` it recognises the audio on the device
   (:mod:`kiosk.local.asr`) and reports the transcript (what the recogniser heard);
2. on ``response.create`` it calls the kiosk's ``search`` tool with that transcript, then
   ``report_grounding`` with the passage it picked (so citations are what it read from);
3. it speaks the extractive answer (:mod:`kiosk.local.answer`) synthesised on the device
   (:mod:`kiosk.local.tts`), piece by piece, the first piece as soon as it is ready.

Usage reported in ``response.done`` is zero: a local turn costs no tokens, and says so.
A user text message (``conversation.item.create`` with ``input_text``) is answered the same
way, skipping recognition. Does not own: the search itself (the kiosk's ToolRunner does it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kiosk.local.answer import (
    NO_ANSWER,
    NOT_HEARD,
    OFFLINE_NOTICE,
    Answer,
    extract_answer,
    language_of,
    parse_search_output,
)
from kiosk.local.engine import LocalEngine
from kiosk.net.engine import OFFLINE_MODE_INSTRUCTIONS

log = logging.getLogger(__name__)
# The websockets library logs every connection at INFO: quiet on a kiosk's journal.
_WS_LOG = logging.getLogger("kiosk.local.websocket")
_WS_LOG.setLevel(logging.WARNING)

RATE_HZ = 24_000
_BYTES_PER_MS = RATE_HZ * 2 // 1000
_MIN_COMMIT_MS = 100
_DELTA_MS = 100
_MAX_AUDIO_BYTES = 60 * RATE_HZ * 2  # one utterance; more is dropped (Whisper hears 30 s)
# The kiosk streams speech and commits after its VAD hangover: when no audio has come for this
# long, recognise what there is already; a commit that adds at most _SPECULATION_TAIL_MS more
# (the tail of the hangover, the resampler's flush) then reuses that result instead of
# starting to recognise only after the hangover. One speculation at a time.
_SPECULATE_AFTER_S = 0.2
_SPECULATION_TAIL_MS = 350
ZERO_USAGE = {
    "total_tokens": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "input_token_details": {"text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
}
Json = dict[str, Any]


class LocalRealtimeServer:
    """``async with LocalRealtimeServer(engine) as server``: serves ``server.url`` on loopback."""

    def __init__(
        self,
        engine: LocalEngine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:
        self.engine = engine
        self._host, self._port = host, port
        self._sock = sock  # already listening (kiosk.local.on_demand): serve on it
        self._server: Server | None = None

    async def __aenter__(self) -> LocalRealtimeServer:
        where: dict[str, Any] = (
            {"sock": self._sock} if self._sock is not None else {"host": self._host, "port": self._port}
        )
        self._server = await serve(self._handle, max_size=16 * 2**20, logger=_WS_LOG, **where)
        log.debug("local engine listening on %s", self.url)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalRealtimeServer is not running: use `async with`")
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    async def _handle(self, connection: ServerConnection) -> None:
        await _Conversation(self.engine, connection).run()


@dataclass
class _Turn:
    transcript: asyncio.Future[tuple[str, str]]  # (text, language)
    phase: int = 0  # 0 fresh, 1 searched, 2 grounded, 3 answered
    search_output: str = ""
    answer: Answer | None = None


@dataclass
class _Active:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class _Conversation:
    def __init__(self, engine: LocalEngine, connection: ServerConnection) -> None:
        self.engine = engine
        self.connection = connection
        self._ids = itertools.count(1)
        self.tools: set[str] = set()
        self.language_hint = ""
        self.vocabulary = ""  # transcription.prompt: the knowledge base's headings
        self.offline_mode = False  # the kiosk's fallback: say so before each answer
        self.audio = bytearray()
        self.last_item: str | None = None
        self.turn: _Turn | None = None
        self.pending_calls: dict[str, str] = {}
        self.active: _Active | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self._speculation_timer: asyncio.TimerHandle | None = None
        self._speculation: tuple[int, asyncio.Task[Any]] | None = None  # (audio bytes, task)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_local{next(self._ids)}"

    async def send(self, event: Json) -> None:
        event.setdefault("event_id", self.new_id("event"))
        await self.connection.send(json.dumps(event, ensure_ascii=False))

    async def error(self, code: str, message: str) -> None:
        await self.send({"type": "error", "error": {"type": "invalid_request_error", "code": code,
                                                    "message": message}})

    async def run(self) -> None:
        # The kiosk connects at speech onset: load the recogniser while the visitor speaks.
        if not self.engine.recognizer.loaded:
            warm = asyncio.get_running_loop().create_task(asyncio.to_thread(self.engine.warm_up))
            self.background.add(warm)
            warm.add_done_callback(self.background.discard)
        try:
            await self.send({"type": "session.created", "session": self._session()})
            async for message in self.connection:
                try:
                    event = json.loads(message)
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise ValueError("not an event object")
                except (ValueError, TypeError):
                    await self.error("invalid_json", "expected a JSON event object")
                    continue
                await self._dispatch(event)
        except ConnectionClosed:
            pass
        finally:
            for task in [*self.background, *([self.active.task] if self.active else [])]:
                if task is not None:
                    task.cancel()

    def _session(self) -> Json:
        return {"type": "realtime", "model": "kiosk-local", "output_modalities": ["audio"],
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": RATE_HZ},
                                    "turn_detection": None},
                          "output": {"format": {"type": "audio/pcm", "rate": RATE_HZ}}},
                "tools": [{"type": "function", "name": n} for n in sorted(self.tools)]}

    async def _dispatch(self, event: Json) -> None:
        kind = event["type"]
        if kind == "session.update":
            session = event.get("session") if isinstance(event.get("session"), dict) else {}
            assert isinstance(session, dict)
            if "instructions" in session:
                self.offline_mode = session.get("instructions") == OFFLINE_MODE_INSTRUCTIONS
            if isinstance(session.get("tools"), list):
                self.tools = {str(t.get("name")) for t in session["tools"] if isinstance(t, dict)}
            transcription = ((session.get("audio") or {}).get("input") or {}).get("transcription")
            if isinstance(transcription, dict):
                self.language_hint = str(transcription.get("language") or "")
                self.vocabulary = str(transcription.get("prompt") or "")
            await self.send({"type": "session.updated", "session": self._session()})
        elif kind == "input_audio_buffer.append":
            try:
                pcm = base64.b64decode(str(event.get("audio", "")), validate=True)
            except (binascii.Error, ValueError):
                await self.error("invalid_value", "audio is not valid base64")
                return
            if len(self.audio) + len(pcm) <= _MAX_AUDIO_BYTES:
                self.audio += pcm
                self._schedule_speculation()
        elif kind == "input_audio_buffer.clear":
            self.audio.clear()
            self._speculation = None
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "input_audio_buffer.commit":
            await self._commit()
        elif kind == "conversation.item.create":
            await self._create_item(event.get("item") if isinstance(event.get("item"), dict) else {})
        elif kind == "response.create":
            await self._start_response()
        elif kind == "response.cancel":
            if self.active is None:
                await self.error("response_cancel_not_active", "no active response")
            else:
                self.active.cancel.set()
                if self.active.task is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.active.task)
        elif kind == "conversation.item.truncate":
            await self.send({"type": "conversation.item.truncated",
                             "item_id": str(event.get("item_id", "")), "content_index": 0,
                             "audio_end_ms": int(event.get("audio_end_ms") or 0)})

    async def _announce(self, item: Json) -> None:
        previous, self.last_item = self.last_item, item["id"]
        for kind in ("conversation.item.created", "conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "previous_item_id": previous, "item": item})

    def _schedule_speculation(self) -> None:
        if self._speculation_timer is not None:
            self._speculation_timer.cancel()
        loop = asyncio.get_running_loop()
        self._speculation_timer = loop.call_later(_SPECULATE_AFTER_S, self._speculate)

    def _speculate(self) -> None:
        self._speculation_timer = None
        size = len(self.audio)
        if size < _MIN_COMMIT_MS * _BYTES_PER_MS:
            return
        if self._speculation is not None and not self._speculation[1].done():
            return  # still busy with the last one: never two recognitions at once
        if self._speculation is not None and self._speculation[0] == size:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(
                self.engine.recognise, bytes(self.audio), self.language_hint, self.vocabulary
            )
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved later, or not
        self._speculation = (size, task)

    async def _commit(self) -> None:
        audio_ms = len(self.audio) / _BYTES_PER_MS
        if audio_ms < _MIN_COMMIT_MS:
            await self.error("input_audio_buffer_commit_empty",
                             f"buffer only has {audio_ms:.0f} ms of audio")
            return
        pcm, self.audio = bytes(self.audio), bytearray()
        if self._speculation_timer is not None:
            self._speculation_timer.cancel()
            self._speculation_timer = None
        early, self._speculation = self._speculation, None
        item_id = self.new_id("item")
        await self.send({"type": "input_audio_buffer.committed",
                         "previous_item_id": self.last_item, "item_id": item_id})
        await self._announce({"id": item_id, "type": "message", "role": "user",
                              "status": "completed",
                              "content": [{"type": "input_audio", "transcript": None}]})
        loop = asyncio.get_running_loop()
        self.turn = _Turn(loop.create_future())
        tail_bytes = _SPECULATION_TAIL_MS * _BYTES_PER_MS
        ready = None
        if early is not None and 0 <= len(pcm) - early[0] <= tail_bytes:
            ready = early[1]
        task = loop.create_task(self._recognise(pcm, item_id, self.turn, ready))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _recognise(
        self, pcm24k: bytes, item_id: str, turn: _Turn, ready: asyncio.Task[Any] | None
    ) -> None:
        try:
            if ready is not None:
                heard = await ready  # recognised during the hangover already
            else:
                heard = await asyncio.to_thread(
                    self.engine.recognise, pcm24k, self.language_hint, self.vocabulary
                )
        except Exception as exc:  # the engine's failure costs this turn, not the kiosk
            log.error("local engine: recognition failed: %s", exc)
            if not turn.transcript.done():
                turn.transcript.set_result(("", self.language_hint or "en"))
            await self.error("server_error", f"local recognition failed: {exc}"[:200])
            return
        if not turn.transcript.done():
            turn.transcript.set_result((heard.text, heard.language))
        # "usage" here is the audio's duration (the API requires the field): no tokens.
        seconds = round(len(pcm24k) / 2 / RATE_HZ, 3)
        await self.send({"type": "conversation.item.input_audio_transcription.completed",
                         "item_id": item_id, "content_index": 0, "transcript": heard.text,
                         "usage": {"type": "duration", "seconds": seconds}})

    async def _create_item(self, item: Json) -> None:
        item = {**item, "id": item.get("id") or self.new_id("item"), "status": "completed"}
        if item.get("type") == "function_call_output":
            name = self.pending_calls.pop(str(item.get("call_id")), None)
            if name is None:
                await self.error("invalid_value", "no function call awaits this output")
                return
            if name == "search" and self.turn is not None:
                self.turn.search_output = str(item.get("output", ""))
        elif item.get("type") == "message" and item.get("role") == "user":
            parts = item.get("content") if isinstance(item.get("content"), list) else []
            text = " ".join(str(p.get("text") or "") for p in parts if isinstance(p, dict)).strip()
            future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
            future.set_result((text, language_of(text)))
            self.turn = _Turn(future)
        await self._announce(item)

    async def _start_response(self) -> None:
        if self.active is not None:
            await self.error("conversation_already_has_active_response", "a response is active")
            return
        active = _Active()
        self.active = active
        active.task = asyncio.get_running_loop().create_task(self._respond(active))

    async def _respond(self, active: _Active) -> None:
        try:
            turn = self.turn
            if turn is None:
                await self._speak(active, Answer(NOT_HEARD["en"], "en"))
                return
            text, language = await turn.transcript
            if turn.phase == 0:
                if not text:
                    turn.phase = 3
                    await self._speak(active, Answer(NOT_HEARD[language], language))
                elif "search" in self.tools:
                    turn.phase = 1
                    await self._call(active, "search", {"query": text})
                else:
                    turn.phase = 3
                    await self._speak(active, Answer(NO_ANSWER[language], language))
                return
            if turn.answer is None:
                turn.answer = extract_answer(text, parse_search_output(turn.search_output), language)
            if turn.phase == 1 and turn.answer.chunk_id and "report_grounding" in self.tools:
                turn.phase = 2
                await self._call(active, "report_grounding", {"sources": [turn.answer.chunk_id]})
                return
            turn.phase = 3
            await self._speak(active, turn.answer)
        except ConnectionClosed:
            pass
        except Exception as exc:
            log.exception("local engine: answer failed")
            with contextlib.suppress(ConnectionClosed):
                await self.send({"type": "error", "error": {"type": "server_error",
                                 "code": "local_engine_failed", "message": str(exc)[:200]}})
        finally:
            if self.active is active:
                self.active = None

    async def _call(self, active: _Active, name: str, arguments: Json) -> None:
        rid, item_id, call_id = self.new_id("resp"), self.new_id("item"), self.new_id("call")
        args = json.dumps(arguments, ensure_ascii=False)
        item = {"id": item_id, "type": "function_call", "status": "completed", "name": name,
                "call_id": call_id, "arguments": args}
        await self.send({"type": "response.created", "response": _response(rid)})
        await self.send({"type": "response.output_item.added", "response_id": rid,
                         "output_index": 0, "item": {**item, "status": "in_progress", "arguments": ""}})
        await self.send({"type": "response.function_call_arguments.done", "response_id": rid,
                         "item_id": item_id, "output_index": 0, "call_id": call_id, "name": name,
                         "arguments": args})
        await self.send({"type": "response.output_item.done", "response_id": rid,
                         "output_index": 0, "item": item})
        self.last_item = item_id
        self.pending_calls[call_id] = name
        await self.send({"type": "response.done", "response": _response(rid, [item], done=True)})

    async def _speak(self, active: _Active, answer: Answer) -> None:
        rid, item_id = self.new_id("resp"), self.new_id("item")
        where = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
        item: Json = {"id": item_id, "type": "message", "role": "assistant",
                      "status": "in_progress", "content": []}
        await self.send({"type": "response.created", "response": _response(rid)})
        await self.send({"type": "response.output_item.added", "response_id": rid,
                         "output_index": 0, "item": item})
        await self.send({"type": "response.content_part.added",
                         **where, "part": {"type": "audio", "transcript": ""}})
        spoken: list[str] = []
        pieces = self.engine.pieces(answer.text, answer.language)
        if self.offline_mode:
            pieces = [OFFLINE_NOTICE[answer.language], *pieces]
        for piece in pieces:
            if active.cancel.is_set():
                break
            pcm = await asyncio.to_thread(self.engine.synthesize, piece, answer.language)
            for start in range(0, len(pcm), _DELTA_MS * _BYTES_PER_MS):
                if active.cancel.is_set():
                    break
                chunk = pcm[start : start + _DELTA_MS * _BYTES_PER_MS]
                await self.send({"type": "response.output_audio.delta", **where,
                                 "delta": base64.b64encode(chunk).decode("ascii")})
                await asyncio.sleep(0)  # let a response.cancel be read
            else:
                joiner = "" if answer.language == "ja" else " "
                await self.send({"type": "response.output_audio_transcript.delta", **where,
                                 "delta": (joiner if spoken else "") + piece})
                spoken.append(piece)
        cancelled = active.cancel.is_set()
        transcript = ("" if answer.language == "ja" else " ").join(spoken)
        done_item = {**item, "status": "incomplete" if cancelled else "completed",
                     "content": [{"type": "output_audio", "transcript": transcript}]}
        await self.send({"type": "response.output_audio.done", **where})
        await self.send({"type": "response.output_audio_transcript.done", **where,
                         "transcript": transcript})
        await self.send({"type": "response.output_item.done", "response_id": rid,
                         "output_index": 0, "item": done_item})
        self.last_item = item_id
        status = "cancelled" if cancelled else "completed"
        details = {"type": "cancelled", "reason": "client_cancelled"} if cancelled else None
        await self.send({"type": "response.done", "response": _response(
            rid, [done_item], done=True, status=status, details=details)})


def _response(rid: str, output: list[Json] | None = None, *, done: bool = False,
              status: str = "completed", details: Json | None = None) -> Json:
    return {"id": rid, "object": "realtime.response",
            "status": status if done else "in_progress", "status_details": details,
            "output": output or [], "usage": dict(ZERO_USAGE) if done else None}

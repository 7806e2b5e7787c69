"""The scripted responses of the fake Realtime server: what one ``response.create`` streams.

Kept apart from :mod:`kiosk.testing.fake_conversation` (the client events and the
conversation state) because this is the fake "model": it plays the script's tool rounds
(direct mode: ``search`` then ``report_grounding`` calls the client answers; VoiceRAG mode:
hidden tool rounds and the grounding extension event), then the spoken answer paced in real
time with its transcript, and honours cancel and the mid-answer fault hooks while doing so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from kiosk.testing.fake_script import (
    BYTES_PER_MS,
    JsonDict,
    chunk_ids_from_search_output,
    speech_like_pcm16,
)
from kiosk.testing.fake_usage import text_tokens

if TYPE_CHECKING:
    from kiosk.testing.fake_conversation import FakeConversation


class Aborted(Exception):
    """A fault hook aborted or silenced this connection: stop whatever was being sent."""


class ScriptedResponse:
    """One response in progress: started by ``response.create`` (or server VAD), it runs
    as its own task until done, cancelled (``response.cancel``, a barge-in) or aborted."""

    def __init__(self, conversation: FakeConversation, metadata: JsonDict | None = None) -> None:
        self.conversation = conversation
        self.metadata = metadata  # echoed in response.created, as the real API does
        self.cancel = asyncio.Event()
        self.cancel_reason = "client_cancelled"
        self.response_id: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        conv = self.conversation
        try:
            if conv.script.response_delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cancel.wait(), conv.script.response_delay_s)
            if conv.voicerag:
                await self._voicerag_turn()
            else:
                await self._direct_response()
        except (ConnectionClosed, Aborted):
            pass
        finally:
            if conv.active is self:
                conv.active = None

    async def _direct_response(self) -> None:
        conv = self.conversation
        tools = conv.declared_tools()
        if conv.turn_phase == 0 and conv.script.call_search and "search" in tools:
            conv.turn_phase = 1
            await self._function_call("search", {"query": conv.script.search_query})
        elif conv.turn_phase == 1 and conv.script.call_grounding and "report_grounding" in tools:
            conv.turn_phase = 2
            sources = chunk_ids_from_search_output(conv.search_output)
            await self._function_call("report_grounding", {"sources": sources})
        else:
            conv.turn_phase = 3
            await self._spoken_answer()

    async def _voicerag_turn(self) -> None:
        conv = self.conversation
        # What a VoiceRAG client sees: tool rounds as empty response.created/done pairs,
        # the grounding result as an extension event, then the spoken answer.
        if conv.script.call_search:
            await self._function_call("search", {"query": conv.script.search_query}, hidden=True)
            conv.usage_meter.add_context("", text_tokens=200)  # the search output it fed upstream
        if self.cancel.is_set():
            return
        if conv.script.call_grounding:
            sources = [str(s.get("chunk_id", "")) for s in conv.script.grounding_sources]
            await self._function_call("report_grounding", {"sources": sources}, hidden=True)
        if self.cancel.is_set():
            return
        await self._spoken_answer()

    async def _function_call(self, name: str, arguments: JsonDict, *, hidden: bool = False) -> None:
        conv = self.conversation
        response_id = conv.new_id("resp")
        self.response_id = response_id
        item_id = conv.new_id("item")
        call_id = conv.new_id("call")
        arguments_json = json.dumps(arguments)
        previous = conv.last_item_id
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
        usage = self._usage(output_text_tokens=text_tokens(arguments_json))
        await conv.send({"type": "response.created", "response": response_object(response_id, metadata=self.metadata)})
        if hidden:
            # VoiceRAG runs the tool itself; only report_grounding reaches the client.
            conv.last_item_id = item_id
            if name == "report_grounding":
                await conv.send_raw(
                    json.dumps(
                        {
                            "type": "extension.middle_tier_tool_response",
                            "previous_item_id": previous,
                            "tool_name": name,
                            "tool_result": json.dumps({"sources": conv.script.grounding_sources}),
                        }
                    )
                )
            conv.last_item_id = conv.new_id("item")  # its function_call_output item
            await conv.send(
                {"type": "response.done", "response": response_object(response_id, [], usage=usage)}
            )
            return
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await conv.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        conv.known_items.add(item_id)
        conv.last_item_id = item_id
        await conv.send(
            {"type": "conversation.item.created", "previous_item_id": previous, "item": item}
        )
        if conv.dialect == "ga":
            await conv.send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        half = len(arguments_json) // 2
        for delta in (arguments_json[:half], arguments_json[half:]):
            await conv.send(
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
        if conv.dialect == "ga":
            arguments_done["name"] = name
        await conv.send(arguments_done)
        await self._output_item_done(response_id, done_item, previous)
        conv.pending_calls[call_id] = name
        await conv.send(
            {
                "type": "response.done",
                "response": response_object(response_id, [done_item], usage=usage),
            }
        )

    async def _spoken_answer(self) -> None:
        conv = self.conversation
        script = conv.script
        response_id = conv.new_id("resp")
        self.response_id = response_id
        item_id = conv.new_id("item")
        previous = conv.last_item_id
        delta_ms = max(1, script.delta_ms)
        pcm = script.answer_pcm
        if pcm is None:
            pcm = speech_like_pcm16(script.answer_audio_s)
        chunk_bytes = delta_ms * BYTES_PER_MS
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
        conv.assistant_audio_ms[item_id] = 0
        conv.known_items.add(item_id)
        conv.last_item_id = item_id
        await conv.send({"type": "response.created", "response": response_object(response_id, metadata=self.metadata)})
        await conv.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        await conv.send(
            {"type": "conversation.item.created", "previous_item_id": previous, "item": item}
        )
        if conv.dialect == "ga":
            await conv.send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        await conv.send(
            {
                "type": "response.content_part.added",
                **where,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        if script.send_garbage == "non_json":
            await conv.send_raw("this is not JSON {")
        elif script.send_garbage == "unknown_type":
            await conv.send({"type": "fake.unknown_event", "detail": "clients must ignore this"})

        loop = asyncio.get_running_loop()
        started = loop.time()
        words_sent = 0
        sent_ms = 0
        for index, chunk in enumerate(chunks):
            if script.realtime_pacing and index > 0:
                delay = started + index * delta_ms / 1000 - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.cancel.wait(), delay)
            if self.cancel.is_set():
                break
            if index == len(chunks) // 2 and conv.server.take_drop_point("mid_audio"):
                conv.abort()
                raise Aborted
            audio_b64 = base64.b64encode(chunk).decode("ascii")
            if index == 0 and script.send_garbage == "bad_base64":
                audio_b64 = "@@ not base64 @@"
            await conv.send({"type": conv.names["audio_delta"], **where, "delta": audio_b64})
            sent_ms += len(chunk) // BYTES_PER_MS
            conv.assistant_audio_ms[item_id] = sent_ms
            # Spread the words over the audio so the transcript keeps pace with it.
            words_due = math.ceil(len(words) * (index + 1) / len(chunks))
            if words_due > words_sent:
                text = " ".join(words[words_sent:words_due])
                await conv.send(
                    {
                        "type": conv.names["transcript_delta"],
                        **where,
                        "delta": (" " if words_sent else "") + text,
                    }
                )
                words_sent = words_due
            await asyncio.sleep(0)  # let a response.cancel in the socket be read

        cancelled = self.cancel.is_set()
        transcript = " ".join(words[:words_sent])
        part = {"type": conv.names["assistant_audio_part"], "transcript": transcript}
        done_item = {
            **item,
            "status": "incomplete" if cancelled else "completed",
            "content": [part],
        }
        await conv.send({"type": conv.names["audio_done"], **where})
        await conv.send({"type": conv.names["transcript_done"], **where, "transcript": transcript})
        await conv.send(
            {
                "type": "response.content_part.done",
                **where,
                "part": {"type": "audio", "transcript": transcript},
            }
        )
        await self._output_item_done(response_id, done_item, previous)
        if conv.server.take_drop_point("before_response_done"):
            conv.abort()
            raise Aborted
        usage = self._usage(
            output_text_tokens=text_tokens(transcript), output_audio_s=sent_ms / 1000
        )
        conv.usage_meter.add_context(item_id, text_tokens=text_tokens(transcript))
        status_details = {"type": "cancelled", "reason": self.cancel_reason} if cancelled else None
        await conv.send(
            {
                "type": "response.done",
                "response": response_object(
                    response_id,
                    [done_item],
                    status="cancelled" if cancelled else "completed",
                    status_details=status_details,
                    usage=usage,
                ),
            }
        )
        await conv.send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
                ],
            }
        )

    async def _output_item_done(
        self, response_id: str, done_item: JsonDict, previous: str | None
    ) -> None:
        """response.output_item.done, and GA's conversation.item.done, for the one item."""
        conv = self.conversation
        await conv.send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": done_item,
            }
        )
        if conv.dialect == "ga":
            await conv.send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": done_item}
            )

    def _usage(self, *, output_text_tokens: int, output_audio_s: float = 0.0) -> JsonDict:
        conv = self.conversation
        return conv.usage_meter.usage(
            instructions=str(conv.session.get("instructions")),
            output_text_tokens=output_text_tokens,
            output_audio_s=output_audio_s,
        )


def response_object(
    response_id: str,
    output: Sequence[JsonDict] = (),
    *,
    status: str | None = None,
    status_details: JsonDict | None = None,
    usage: JsonDict | None = None,
    metadata: JsonDict | None = None,
) -> JsonDict:
    done = usage is not None
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": status or ("completed" if done else "in_progress"),
        "status_details": status_details,
        "output": list(output),
        "usage": usage,
        "metadata": metadata,
    }

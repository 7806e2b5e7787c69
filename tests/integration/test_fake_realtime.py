"""The fake Realtime server, driven by a plain `websockets` client on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from kiosk.testing.fake_realtime import (
    FakeRealtimeServer,
    FakeScript,
    chunk_ids_from_search_output,
    speech_like_pcm16,
)
from kiosk.testing.validation import Dialect, validate_server_event

TIMEOUT_S = 5.0 * float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))

TOOLS = [
    {"type": "function", "name": "search", "parameters": {"type": "object"}},
    {"type": "function", "name": "report_grounding", "parameters": {"type": "object"}},
]
SEARCH_OUTPUT = "[doc_a_0]: The lobby opens at 8.\n-----\n[doc_b_3]: Sunny, 20 degrees.\n-----\n"
AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}


def session_update(
    dialect: Dialect, *, tools: list[dict[str, Any]] | None = None, server_vad: bool = False
) -> dict[str, Any]:
    detection = {"type": "server_vad", "silence_duration_ms": 300} if server_vad else None
    if dialect == "ga":
        session: dict[str, Any] = {
            "type": "realtime",
            "audio": {
                "input": {"turn_detection": detection, "transcription": {"model": "whisper-1"}}
            },
        }
    else:
        session = {"turn_detection": detection, "input_audio_transcription": {"model": "whisper-1"}}
    if tools is not None:
        session["tools"] = tools
    return {"type": "session.update", "session": session}


def append(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


class Client:
    """A websocket client with bounded waits, recording every event it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT_S))
        assert isinstance(event, dict)
        self.events.append(event)
        return event

    async def until(self, event_type: str) -> list[dict[str, Any]]:
        """Events up to and including the next one of ``event_type``."""
        got: list[dict[str, Any]] = []
        while True:
            event = await self.recv()
            got.append(event)
            if event["type"] == event_type:
                return got

    async def drain(self, quiet_s: float) -> list[dict[str, Any]]:
        """Events until none arrives for ``quiet_s``."""
        got: list[dict[str, Any]] = []
        while True:
            try:
                frame = await asyncio.wait_for(self.ws.recv(), quiet_s)
            except TimeoutError:
                return got
            got.append(json.loads(frame))
            self.events.append(got[-1])

    async def configure(self, dialect: Dialect, **kwargs: Any) -> None:
        await self.until("session.created")
        await self.send(session_update(dialect, **kwargs))
        await self.until("session.updated")

    async def speak_and_ask(self, seconds: float = 1.0) -> None:
        await self.send(append(speech_like_pcm16(seconds)))
        await self.send({"type": "input_audio_buffer.commit"})
        await self.send({"type": "response.create"})


@asynccontextmanager
async def client(
    server: FakeRealtimeServer, path: str = "/v1/realtime?model=gpt-realtime", **kwargs: Any
) -> AsyncIterator[Client]:
    async with connect(server.url + path, open_timeout=TIMEOUT_S, **kwargs) as ws:
        yield Client(ws)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def assert_all_sent_events_valid(server: FakeRealtimeServer) -> None:
    for record in server.connections:
        for event in record.sent_events():
            if event["type"] in ("extension.middle_tier_tool_response", "fake.unknown_event"):
                continue
            assert validate_server_event(event, server.dialect) == [], event["type"]


def no_pacing(**kwargs: Any) -> FakeScript:
    return FakeScript(realtime_pacing=False, **kwargs)


# -- session ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_valid_session_update_is_echoed_and_tools_recorded(dialect: Dialect) -> None:
    async with FakeRealtimeServer(dialect) as server, client(server) as c:
        created = await c.until("session.created")
        await c.send(session_update(dialect, tools=TOOLS))
        updated = (await c.until("session.updated"))[-1]
    assert types(created) == ["session.created"]
    assert [tool["name"] for tool in updated["session"]["tools"]] == ["search", "report_grounding"]
    assert server.connections[0].declared_tools == ["search", "report_grounding"]
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_session_update_with_undeclared_key_is_recorded_and_answered_with_error() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.until("session.created")
        await c.send(
            {
                "type": "session.update",
                "event_id": "evt_1",
                "session": {"type": "realtime", "voice": "alloy"},
            }
        )
        error = (await c.until("error"))[-1]
    assert server.validation_errors == ["session.update: undeclared key session.voice"]
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["event_id"] == "evt_1"
    assert "session.voice" in error["error"]["message"]


async def test_non_json_and_invalid_base64_from_client_are_validation_errors() -> None:
    async with FakeRealtimeServer("beta") as server, client(server) as c:
        await c.until("session.created")
        await c.ws.send("{not json")
        await c.until("error")
        await c.send({"type": "input_audio_buffer.append", "audio": "@@@"})
        await c.until("error")
    assert len(server.validation_errors) == 2
    assert server.validation_errors[0].startswith("?: not JSON")
    assert server.validation_errors[1] == "input_audio_buffer.append: audio: invalid base64"


async def test_connection_records_path_query_headers_and_events() -> None:
    async with FakeRealtimeServer("beta") as server:
        async with client(
            server,
            "/openai/realtime?api-version=2024-10-01-preview&deployment=d1",
            additional_headers={"X-Probe": "yes"},
        ) as c:
            await c.configure("beta")
        await server.wait_until(lambda: server.connections[0].closed_at is not None, TIMEOUT_S)
    record = server.connections[0]
    assert record.path == "/openai/realtime"
    assert record.query == {"api-version": "2024-10-01-preview", "deployment": "d1"}
    assert record.headers["x-probe"] == "yes"
    assert record.received_types() == ["session.update"]
    assert record.closed_at is not None
    assert record.closed_at >= record.opened_at


# -- a whole turn, direct mode -------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_turn_with_search_and_grounding_rounds_ends_in_spoken_answer(
    dialect: Dialect,
) -> None:
    script = no_pacing(answer_audio_s=1.0, search_query="lobby hours")
    async with FakeRealtimeServer(dialect, script=script) as server, client(server) as c:
        await c.configure(dialect, tools=TOOLS)
        await c.speak_and_ask(1.0)

        search_round = await c.until("response.done")
        call = search_round[-1]["response"]["output"][0]
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": SEARCH_OUTPUT,
                },
            }
        )
        await c.send({"type": "response.create"})

        grounding_round = await c.until("response.done")
        grounding = grounding_round[-1]["response"]["output"][0]
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": grounding["call_id"],
                    "output": "",
                },
            }
        )
        await c.send({"type": "response.create"})

        answer = await c.until("response.done")

    assert "conversation.item.input_audio_transcription.completed" in types(search_round)
    assert (call["type"], call["name"]) == ("function_call", "search")
    assert json.loads(call["arguments"]) == {"query": "lobby hours"}
    assert "response.function_call_arguments.done" in types(search_round)
    assert json.loads(grounding["arguments"]) == {"sources": ["doc_a_0", "doc_b_3"]}

    audio = [e for e in answer if e["type"] == AUDIO_DELTA[dialect]]
    pcm = b"".join(base64.b64decode(e["delta"]) for e in audio)
    assert len(audio) == 10  # 1.0 s in 100 ms deltas
    assert pcm == speech_like_pcm16(1.0)
    done = answer[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["transcript"] == script.answer_text
    usage = done["usage"]
    assert usage["output_token_details"]["audio_tokens"] == 20  # 20 tokens/s of answer audio
    assert usage["input_token_details"]["audio_tokens"] == 10  # 10 tokens/s of user audio
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_session_without_tools_gets_the_spoken_answer_at_once() -> None:
    async with (
        FakeRealtimeServer("ga", script=no_pacing(answer_audio_s=0.3)) as server,
        client(server) as c,
    ):
        await c.configure("ga")
        await c.speak_and_ask()
        answer = await c.until("response.done")
    assert "response.function_call_arguments.done" not in types(answer)
    assert types(answer).count("response.output_audio.delta") == 3
    assert server.validation_errors == []


async def test_scripted_answer_pcm_is_sent_as_the_answer_audio() -> None:
    pcm = bytes(range(256)) * 30  # 7680 bytes = 160 ms at 24 kHz: two 100 ms deltas
    async with (
        FakeRealtimeServer("ga", script=no_pacing(answer_pcm=pcm)) as server,
        client(server) as c,
    ):
        await c.configure("ga")
        await c.speak_and_ask()
        answer = await c.until("response.done")
    deltas = [e["delta"] for e in answer if e["type"] == "response.output_audio.delta"]
    assert b"".join(base64.b64decode(d) for d in deltas) == pcm
    assert len(deltas) == 2
    assert server.validation_errors == []


async def test_commit_of_empty_buffer_answers_commit_empty_error() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.configure("ga")
        await c.send({"type": "input_audio_buffer.commit"})
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert server.validation_errors == []


async def test_clear_empties_buffer_so_next_commit_is_empty() -> None:
    async with FakeRealtimeServer("beta") as server, client(server) as c:
        await c.configure("beta")
        await c.send(append(speech_like_pcm16(0.5)))
        await c.send({"type": "input_audio_buffer.clear"})
        await c.until("input_audio_buffer.cleared")
        await c.send({"type": "input_audio_buffer.commit"})
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"


async def test_second_response_create_while_answering_is_refused() -> None:
    script = FakeScript(answer_audio_s=3.0)  # paced: the answer stays active for 3 s
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga")
        await c.speak_and_ask()
        await c.until("response.created")
        await c.send({"type": "response.create"})
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "conversation_already_has_active_response"


async def test_function_call_output_for_unknown_call_id_answers_error() -> None:
    async with FakeRealtimeServer("beta") as server, client(server) as c:
        await c.configure("beta")
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "call_nope", "output": "x"},
            }
        )
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "invalid_value"
    assert server.validation_errors == []


async def test_server_vad_detects_speech_then_silence_and_answers_by_itself() -> None:
    silence = bytes(2 * 24_000 * 40 // 1000)  # 40 ms chunks
    speech = speech_like_pcm16(0.8)
    chunks = [silence] * 5 + [speech[i : i + 1920] for i in range(0, len(speech), 1920)]
    chunks += [silence] * 10  # 400 ms of silence > silence_duration_ms 300
    async with (
        FakeRealtimeServer("beta", script=no_pacing(answer_audio_s=0.2)) as server,
        client(server) as c,
    ):
        await c.configure("beta", server_vad=True)
        for chunk in chunks:
            await c.send(append(chunk))
        events = await c.until("response.done")
    order = types(events)
    assert (
        order.index("input_audio_buffer.speech_started")
        < order.index("input_audio_buffer.speech_stopped")
        < order.index("input_audio_buffer.committed")
        < (order.index("response.created"))
    )
    started = events[order.index("input_audio_buffer.speech_started")]
    assert started["audio_start_ms"] == 200
    assert events[order.index("input_audio_buffer.committed")]["item_id"] == started["item_id"]
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_second_turn_on_same_connection_searches_again_and_reads_cached_input() -> None:
    script = no_pacing(answer_audio_s=0.2)
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga", tools=TOOLS[:1])
        answers = []
        for _ in range(2):
            await c.speak_and_ask()
            call = (await c.until("response.done"))[-1]["response"]["output"][0]
            assert call["name"] == "search"
            await c.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": call["call_id"],
                        "output": SEARCH_OUTPUT,
                    },
                }
            )
            await c.send({"type": "response.create"})
            answers.append((await c.until("response.done"))[-1]["response"])
    first, second = (answer["usage"] for answer in answers)
    assert all(answer["status"] == "completed" for answer in answers)
    # The conversation is re-read every response: input grows, and its prefix is cached.
    assert second["input_tokens"] > first["input_tokens"]
    assert second["input_token_details"]["audio_tokens"] == 20
    assert 0 < second["input_token_details"]["cached_tokens"] < second["input_tokens"]
    assert server.validation_errors == []


async def test_server_vad_speech_during_answer_cancels_it_as_turn_detected() -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with FakeRealtimeServer("beta", script=script) as server, client(server) as c:
        await c.configure("beta", server_vad=True)
        await c.speak_and_ask()  # speech, then a manual commit ends it
        await c.until("response.audio.delta")
        await c.send(append(bytes(2 * 24 * 400)))  # 400 ms of silence: not speech
        await c.until("response.audio.delta")
        await c.send(append(speech_like_pcm16(0.2)))
        events = await c.until("response.done")
    started = [e for e in c.events if e["type"] == "input_audio_buffer.speech_started"]
    assert len(started) == 2
    assert started[1] in events
    assert "error" not in types(c.events)
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["status_details"]["reason"] == "turn_detected"
    assert server.validation_errors == []


async def test_event_the_fake_does_not_implement_answers_error_without_validation_error() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.configure("ga")
        await c.send({"type": "output_audio_buffer.clear"})
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "fake_unsupported_event"
    assert server.validation_errors == []


async def test_script_vad_silence_overrides_the_session_silence_duration() -> None:
    script = no_pacing(answer_audio_s=0.2, vad_silence_ms=1000)
    silence_40ms = bytes(2 * 24 * 40)
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga", server_vad=True)  # the session asks for 300 ms
        await c.send(append(speech_like_pcm16(0.5)))
        for _ in range(20):  # 800 ms: not enough for the script's 1000 ms
            await c.send(append(silence_40ms))
        await server.wait_until(lambda: len(server.connections[0].received) == 22, TIMEOUT_S)
        assert "input_audio_buffer.speech_stopped" not in types(await c.drain(0.2))
        for _ in range(5):
            await c.send(append(silence_40ms))
        stopped = (await c.until("input_audio_buffer.speech_stopped"))[-1]
        await c.until("response.done")  # read it all: an unread queue stalls the close
    assert stopped["audio_end_ms"] == 500 + 1000
    assert server.validation_errors == []


async def test_realtime_pacing_spreads_answer_over_its_duration() -> None:
    script = FakeScript(answer_audio_s=0.5, realtime_pacing=True)
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga")
        await c.speak_and_ask()
        await c.until("response.output_audio.delta")
        loop = asyncio.get_running_loop()
        first_delta_at = loop.time()
        await c.until("response.done")
        elapsed_s = loop.time() - first_delta_at
    # Only a lower bound: five 100 ms deltas, the last due 400 ms after the first.
    assert elapsed_s >= 0.35


# -- VoiceRAG middle tier ----------------------------------------------------------------------


async def test_voicerag_turn_hides_tool_calls_and_reports_grounding_by_extension() -> None:
    script = no_pacing(answer_audio_s=0.5)
    async with (
        FakeRealtimeServer("beta", mode="voicerag", script=script) as server,
        client(server, "/realtime") as c,
    ):
        await c.configure("beta")
        await c.speak_and_ask()
        events = []
        for _ in range(3):
            events += await c.until("response.done")
    order = types(events)
    assert order.count("response.created") == 3
    assert order.count("response.done") == 3
    assert not any(t.startswith("response.function_call_arguments") for t in order)
    first_done = order.index("response.done")
    assert "response.audio.delta" not in order[:first_done]
    extension = events[order.index("extension.middle_tier_tool_response")]
    assert set(extension) == {"type", "previous_item_id", "tool_name", "tool_result"}
    assert extension["tool_name"] == "report_grounding"
    assert json.loads(extension["tool_result"]) == {"sources": script.grounding_sources}
    assert order.index("extension.middle_tier_tool_response") < order.index("response.audio.delta")
    assert order.count("response.audio.delta") == 5
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_voicerag_without_grounding_yields_two_responses() -> None:
    script = no_pacing(answer_audio_s=0.2, call_grounding=False)
    async with (
        FakeRealtimeServer("beta", mode="voicerag", script=script) as server,
        client(server, "/realtime") as c,
    ):
        await c.configure("beta")
        await c.speak_and_ask()
        events = await c.until("response.done") + await c.until("response.done")
    assert "extension.middle_tier_tool_response" not in types(events)
    assert types(events).count("response.audio.delta") == 2
    assert events[-1]["response"]["status"] == "completed"


async def test_voicerag_client_declaring_tools_is_a_validation_error() -> None:
    async with FakeRealtimeServer("beta", mode="voicerag") as server, client(server) as c:
        await c.configure("beta", tools=TOOLS)
    assert server.validation_errors == [
        "session.update: voicerag: the client must not declare tools"
    ]
    assert server.connections[0].declared_tools == ["search", "report_grounding"]


def test_voicerag_with_ga_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="beta"):
        FakeRealtimeServer("ga", mode="voicerag")


# -- barge-in: cancel and truncate -------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_cancel_mid_audio_stops_deltas_and_reports_cancelled(dialect: Dialect) -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with FakeRealtimeServer(dialect, script=script) as server, client(server) as c:
        await c.configure(dialect)
        await c.speak_and_ask()
        for _ in range(3):
            await c.until(AUDIO_DELTA[dialect])
        await c.send({"type": "response.cancel"})
        after_cancel = await c.until("response.done")
        late = await c.drain(0.3)
    # Nothing of that answer may follow its response.done.
    assert types(late) == ["rate_limits.updated"]
    done = after_cancel[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "client_cancelled"
    assert done["output"][0]["status"] == "incomplete"
    deltas = [e for e in c.events if e["type"] == AUDIO_DELTA[dialect]]
    assert 3 <= len(deltas) <= 10  # of 30: stopped soon after the cancel (slack for slow CI)
    assert done["usage"]["output_token_details"]["audio_tokens"] == round(len(deltas) * 0.1 * 20)
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_cancel_without_active_response_answers_cancel_not_active() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.configure("ga")
        await c.send({"type": "response.cancel"})
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "response_cancel_not_active"


async def test_truncate_is_acknowledged_and_recorded_with_audio_sent() -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with FakeRealtimeServer("beta", script=script) as server, client(server) as c:
        await c.configure("beta")
        await c.speak_and_ask()
        first = (await c.until("response.audio.delta"))[-1]
        await c.until("response.audio.delta")
        await c.send({"type": "response.cancel"})
        await c.until("response.done")
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": first["item_id"],
                "content_index": 0,
                "audio_end_ms": 150,
            }
        )
        truncated = (await c.until("conversation.item.truncated"))[-1]
    sent_ms = 100 * sum(1 for e in c.events if e["type"] == "response.audio.delta")
    assert truncated["audio_end_ms"] == 150
    assert len(server.truncations) == 1
    assert server.truncations[0].item_id == first["item_id"]
    assert server.truncations[0].audio_end_ms == 150
    assert server.truncations[0].audio_ms_sent == sent_ms
    assert server.connections[0].answer_audio_ms == {first["item_id"]: sent_ms}
    assert server.connections[0].input_audio_ms == 1000
    assert server.validation_errors == []


async def test_truncate_past_the_audio_sent_answers_error() -> None:
    async with (
        FakeRealtimeServer("ga", script=no_pacing(answer_audio_s=0.3)) as server,
        client(server) as c,
    ):
        await c.configure("ga")
        await c.speak_and_ask()
        item_id = (await c.until("response.done"))[-1]["response"]["output"][0]["id"]
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 5000,
            }
        )
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "invalid_value"
    assert server.truncations[0].audio_ms_sent == 300


# -- handshake: auth and faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "headers"),
    [
        (("api-key", "k1"), {}),
        (("api-key", "k1"), {"api-key": "wrong"}),
        (("bearer", "k1"), {"api-key": "k1"}),
        (("bearer", "k1"), {"Authorization": "Bearer wrong"}),
    ],
)
async def test_missing_or_wrong_credential_is_rejected_with_401(
    expected: Any, headers: dict[str, str]
) -> None:
    async with FakeRealtimeServer("ga", expected_auth=expected) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with client(server, additional_headers=headers):
                pass
    assert caught.value.response.status_code == 401
    assert [r.status for r in server.rejections] == [401]
    assert server.connections == []


@pytest.mark.parametrize(
    ("expected", "headers"),
    [(("api-key", "k1"), {"api-key": "k1"}), (("bearer", "k1"), {"Authorization": "Bearer k1"})],
)
async def test_right_credential_is_accepted(expected: Any, headers: dict[str, str]) -> None:
    async with (
        FakeRealtimeServer("ga", expected_auth=expected) as server,
        client(server, additional_headers=headers) as c,
    ):
        await c.until("session.created")
    assert server.rejections == []
    assert len(server.connections) == 1


async def test_fail_handshakes_refuses_next_n_with_status_and_retry_after() -> None:
    async with FakeRealtimeServer("ga") as server:
        server.fail_handshakes(429, times=2, retry_after_s=1.5)
        for _ in range(2):
            with pytest.raises(InvalidStatus) as caught:
                async with client(server):
                    pass
            assert caught.value.response.status_code == 429
            assert caught.value.response.headers["Retry-After"] == "2"
        async with client(server) as c:
            await c.until("session.created")
    assert [r.status for r in server.rejections] == [429, 429]
    assert len(server.connections) == 1


async def test_fail_handshakes_500_without_retry_after_sends_no_header() -> None:
    async with FakeRealtimeServer("beta") as server:
        server.fail_handshakes(500)
        with pytest.raises(InvalidStatus) as caught:
            async with client(server):
                pass
    assert caught.value.response.status_code == 500
    assert "Retry-After" not in caught.value.response.headers


# -- fault hooks in the conversation ---------------------------------------------------------


async def test_error_after_commit_sends_that_code_and_never_answers() -> None:
    script = no_pacing(error_after_commit="server_error")
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga")
        await c.speak_and_ask()
        events = await c.until("error")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(c.ws.recv(), 0.3)
    assert "input_audio_buffer.committed" in types(events)
    assert events[-1]["error"]["code"] == "server_error"
    assert "response.created" not in types(c.events)
    assert server.validation_errors == []


async def test_silent_script_sends_nothing_after_session_created() -> None:
    async with (
        FakeRealtimeServer("beta", script=no_pacing(silent=True)) as server,
        client(server) as c,
    ):
        await c.until("session.created")
        await c.send(session_update("beta"))
        await c.speak_and_ask()
        await server.wait_until(lambda: len(server.connections[0].received) == 4, TIMEOUT_S)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(c.ws.recv(), 0.3)
    assert server.connections[0].sent_types() == ["session.created"]


async def test_drop_next_after_events_aborts_without_close_frame() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.configure("ga")
        server.drop_next(after_events=2)
        await c.send(append(speech_like_pcm16(0.2)))
        await c.send({"type": "input_audio_buffer.commit"})
        with pytest.raises(ConnectionClosedError) as caught:
            await c.until("never")
    assert caught.value.rcvd is None  # abrupt: no close frame (1006)
    assert "input_audio_buffer.committed" not in types(c.events)
    assert server.connections[0].received_types()[-1] == "input_audio_buffer.commit"


async def test_drop_next_mid_audio_aborts_halfway_through_the_answer() -> None:
    async with (
        FakeRealtimeServer("beta", script=no_pacing(answer_audio_s=1.0)) as server,
        client(server) as c,
    ):
        await c.configure("beta")
        server.drop_next(mid_audio=True)
        await c.speak_and_ask()
        with pytest.raises(ConnectionClosedError):
            await c.until("response.done")
    assert types(c.events).count("response.audio.delta") == 5


async def test_drop_next_before_response_done_aborts_after_the_whole_audio() -> None:
    async with (
        FakeRealtimeServer("ga", script=no_pacing(answer_audio_s=0.5)) as server,
        client(server) as c,
    ):
        await c.configure("ga")
        server.drop_next(before_response_done=True)
        await c.speak_and_ask()
        with pytest.raises(ConnectionClosedError) as caught:
            await c.until("response.done")
    assert caught.value.rcvd is None
    assert types(c.events).count("response.output_audio.delta") == 5
    assert "response.output_item.done" in types(c.events)


async def test_drop_next_needs_exactly_one_point() -> None:
    server = FakeRealtimeServer("ga")
    with pytest.raises(ValueError):
        server.drop_next()
    with pytest.raises(ValueError):
        server.drop_next(after_events=1, mid_audio=True)
    with pytest.raises(ValueError):
        server.drop_next(mid_audio=True, before_response_done=True)


async def test_drop_upstream_goes_silent_then_closes_normally_on_next_client_event() -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with (
        FakeRealtimeServer("beta", mode="voicerag", script=script) as server,
        client(server, "/realtime") as c,
    ):
        await c.configure("beta")
        await c.speak_and_ask()
        await c.until("response.audio.delta")
        server.drop_upstream()
        sent_before = len(server.connections[0].sent)
        await c.drain(0.3)
        sent_after = len(server.connections[0].sent)
        await c.send(append(speech_like_pcm16(0.1)))
        with pytest.raises(ConnectionClosed) as caught:
            await c.until("never")
    assert sent_after == sent_before
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1000


@pytest.mark.parametrize("garbage", ["non_json", "unknown_type", "bad_base64"])
async def test_send_garbage_sends_one_bad_frame_before_the_audio(garbage: Any) -> None:
    script = no_pacing(answer_audio_s=0.3, send_garbage=garbage)
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga")
        await c.speak_and_ask()
        frames: list[str] = []
        while True:
            frame = await asyncio.wait_for(c.ws.recv(), TIMEOUT_S)
            assert isinstance(frame, str)
            frames.append(frame)
            if '"response.done"' in frame:
                break
    bad = []
    for frame in frames:
        try:
            event = json.loads(frame)
        except ValueError:
            bad.append("non_json")
            continue
        if event["type"] == "fake.unknown_event":
            bad.append("unknown_type")
        elif event["type"] == "response.output_audio.delta":
            try:
                base64.b64decode(event["delta"], validate=True)
            except ValueError:
                bad.append("bad_base64")
    assert bad == [garbage]


# -- helpers and manual runs -------------------------------------------------------------------


def test_chunk_ids_are_parsed_from_voicerag_style_search_output() -> None:
    assert chunk_ids_from_search_output(SEARCH_OUTPUT + "[doc_a_0]: again\n-----\n") == [
        "doc_a_0",
        "doc_b_3",
    ]
    assert chunk_ids_from_search_output("no results") == []


def test_speech_like_audio_is_speech_to_webrtcvad() -> None:
    webrtcvad = pytest.importorskip("webrtcvad")
    import numpy as np

    pcm24 = np.frombuffer(speech_like_pcm16(1.0), dtype="<i2")
    pcm8k = pcm24[::3].astype("<i2").tobytes()  # 24 kHz -> 8 kHz: enough for this check
    frames = [pcm8k[i : i + 160 * 2] for i in range(0, len(pcm8k) - 319, 320)]
    vad = webrtcvad.Vad(3)
    speech = sum(vad.is_speech(frame, 8000) for frame in frames)
    assert speech >= 0.9 * len(frames)


def test_module_runs_as_a_program_and_prints_its_url() -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiosk.testing.fake_realtime",
            "--port",
            "0",
            "--dialect",
            "beta",
            "--mode",
            "voicerag",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
        finally:
            process.terminate()
            process.wait(timeout=TIMEOUT_S)
    assert line.startswith("fake realtime server (beta, voicerag) listening on ws://127.0.0.1:")


async def test_closing_server_closes_clients() -> None:
    async with FakeRealtimeServer("ga") as server:
        ws_client = await connect(server.url, open_timeout=TIMEOUT_S)
        c = Client(ws_client)
        await c.until("session.created")
    with pytest.raises(ConnectionClosed):
        await c.until("never")

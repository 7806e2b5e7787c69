"""The fake Realtime server, driven by a plain `websockets` client: the session (update,
validation errors, what each connection records) and whole turns in direct mode (search and
grounding rounds, commits, server VAD, pacing)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from kiosk.testing.fake_realtime import (
    FakeRealtimeServer,
    FakeScript,
    speech_like_pcm16,
)
from kiosk.testing.validation import Dialect

from .fake_realtime_client import (
    AUDIO_DELTA,
    SEARCH_OUTPUT,
    TIMEOUT_S,
    TOOLS,
    append,
    assert_all_sent_events_valid,
    client,
    no_pacing,
    session_update,
    types,
)

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

"""kiosk.core.realtime: what the session sends (checked against the openai SDK's types) and
how it parses server frames of both dialects, including frames it must refuse.

No sockets: commands queue JSON we drain with ``data_to_send``; frames go in as text.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.events import Usage
from kiosk.core.realtime import (
    BENIGN_ERROR_CODES,
    MAX_CODE_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_SERVER_TEXT_CHARS,
    AnswerTranscriptDelta,
    AudioDelta,
    Dialect,
    FunctionCallRequested,
    InputCommitted,
    MiddleTierToolResponse,
    RateLimitsUpdated,
    RealtimeSession,
    ResponseFinished,
    ResponseStarted,
    ServerError,
    ServerEventIgnored,
    ServerEventRejected,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionOptions,
    SessionReady,
    UserTranscript,
    parse_usage,
)
from kiosk.errors import LocalProtocolError
from kiosk.testing.validation import validate_client_event, validate_server_event
from tests.unit.helpers import assert_sent, feed, only, sent

DIALECTS: list[Dialect] = ["ga", "beta"]
SEARCH_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "search",
    "description": "Search the knowledge base.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "additionalProperties": False,
    },
}
AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
TRANSCRIPT_DELTA = {
    "ga": "response.output_audio_transcript.delta",
    "beta": "response.audio_transcript.delta",
}
PCM = b"\x01\x00\x02\x00\xff\x7f\x00\x80"


def session(dialect: Dialect, *, middle_tier: bool = False, **options: Any) -> RealtimeSession:
    return RealtimeSession(
        dialect, SessionOptions(instructions="Answer briefly.", **options), middle_tier=middle_tier
    )


# --- server frames, shaped like the real API (each one checked against the SDK below) ------------


def created(rid: str = "resp_1", request: int | None = None) -> dict[str, Any]:
    """``request``: the kiosk's request number the server echoes in the response metadata."""
    frame: dict[str, Any] = {
        "type": "response.created",
        "event_id": "ev_c",
        "response": {
            "id": rid,
            "object": "realtime.response",
            "status": "in_progress",
            "output": [],
        },
    }
    if request is not None:
        frame["response"]["metadata"] = {"kiosk_request": str(request)}
    return frame


def audio_delta(
    dialect: Dialect, pcm: bytes = PCM, rid: str = "resp_1", item: str = "item_a"
) -> dict[str, Any]:
    return {
        "type": AUDIO_DELTA[dialect],
        "event_id": "ev_a",
        "response_id": rid,
        "item_id": item,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode(),
    }


def call_args_done(
    dialect: Dialect, rid: str = "resp_1", call_id: str = "call_1"
) -> dict[str, Any]:
    frame = {
        "type": "response.function_call_arguments.done",
        "event_id": "ev_f",
        "response_id": rid,
        "item_id": "item_f",
        "output_index": 0,
        "call_id": call_id,
        "arguments": '{"query":"restroom"}',
    }
    if dialect == "ga":
        frame["name"] = "search"  # the beta event has no name
    return frame


def call_item(call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": "item_f",
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": "search",
        "arguments": '{"query":"restroom"}',
    }


def output_item_done(rid: str = "resp_1", call_id: str = "call_1") -> dict[str, Any]:
    return {
        "type": "response.output_item.done",
        "event_id": "ev_o",
        "response_id": rid,
        "output_index": 0,
        "item": call_item(call_id),
    }


def done(
    rid: str = "resp_1",
    status: str = "completed",
    output: list[Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "id": rid,
        "object": "realtime.response",
        "status": status,
        "output": output or [],
    }
    if usage is not None:
        response["usage"] = usage
    return {"type": "response.done", "event_id": "ev_d", "response": response}


def error(code: str | None, message: str = "oops") -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": "ev_e",
        "error": {"type": "invalid_request_error", "code": code, "message": message},
    }


USAGE = {
    "total_tokens": 330,
    "input_tokens": 130,
    "output_tokens": 200,
    "input_token_details": {"text_tokens": 100, "audio_tokens": 30, "cached_tokens": 64},
    "output_token_details": {"text_tokens": 20, "audio_tokens": 180},
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_server_frames_used_here_are_valid_sdk_events(dialect: Dialect) -> None:
    frames = [
        created(),
        audio_delta(dialect),
        call_args_done(dialect),
        output_item_done(),
        done(usage=USAGE, output=[call_item()]),
        error("response_cancel_not_active"),
    ]
    for frame in frames:
        assert validate_server_event(frame, dialect) == [], frame["type"]


# --- client events -------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("detection", ["local", "server_vad", "semantic_vad"])
@pytest.mark.parametrize("tools", [(), (SEARCH_TOOL,)], ids=["no_tools", "tools"])
def test_session_update_is_valid_sdk_event(
    dialect: Dialect, detection: str, tools: tuple[Any, ...]
) -> None:
    s = session(
        dialect, turn_detection=detection, tools=tools, language="ja", max_output_tokens=500
    )
    s.configure()
    (event,) = assert_sent(s, "session.update")
    assert validate_client_event(event, dialect) == []
    body = event["session"]
    turn_detection = (
        body["audio"]["input"]["turn_detection"] if dialect == "ga" else body["turn_detection"]
    )
    if detection == "local":
        assert turn_detection is None  # the kiosk commits and asks for the answer itself
    else:
        assert turn_detection["type"] == detection
    assert ("tools" in body) == bool(tools)
    if tools:
        assert body["tools"] == [SEARCH_TOOL]
        assert body["tool_choice"] == "auto"


def test_ga_session_update_puts_audio_settings_under_audio() -> None:
    body = session("ga", voice="marin", max_output_tokens=0).session_update_event()["session"]
    assert body["type"] == "realtime"
    assert body["audio"]["output"]["voice"] == "marin"
    assert body["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert body["max_output_tokens"] == "inf"
    assert "temperature" not in body and "voice" not in body


def test_beta_session_update_uses_flat_beta_keys() -> None:
    body = session("beta", temperature=0.7, max_output_tokens=300).session_update_event()["session"]
    assert body["input_audio_format"] == body["output_audio_format"] == "pcm16"
    assert body["temperature"] == 0.7
    assert body["max_response_output_tokens"] == 300


@pytest.mark.parametrize("detection", ["local", "server_vad"])
def test_middle_tier_session_update_has_no_tools_and_is_valid(detection: str) -> None:
    s = session("beta", middle_tier=True, tools=(SEARCH_TOOL,), turn_detection=detection)
    event = s.session_update_event()
    assert "tools" not in event["session"] and "tool_choice" not in event["session"]
    assert validate_client_event(event, "beta") == []


def test_middle_tier_with_ga_dialect_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="beta"):
        session("ga", middle_tier=True)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="dialect"):
        session("v2")  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_command_queues_valid_sdk_event(dialect: Dialect) -> None:
    s = session(dialect, tools=(SEARCH_TOOL,))
    s.configure()
    s.append_audio(PCM)
    s.commit()
    s.clear_input()
    s.create_response()
    feed(s, created(), audio_delta(dialect))
    assert s.cancel_response()
    assert s.truncate_answer(1234)
    s.send_tool_output("call_1", "[doc-1]: second floor, left")
    events = assert_sent(
        s,
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "response.create",
        "response.cancel",
        "conversation.item.truncate",
        "conversation.item.create",
    )
    for event in events:
        assert validate_client_event(event, dialect) == [], event
    assert base64.b64decode(events[1]["audio"]) == PCM
    assert events[6] == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 1234,
    }
    assert events[7]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "[doc-1]: second floor, left",
    }


def test_append_audio_with_odd_byte_count_is_refused() -> None:
    s = session("ga")
    with pytest.raises(LocalProtocolError, match="even"):
        s.append_audio(b"\x01\x00\x02")
    assert sent(s) == []


def test_append_empty_audio_sends_nothing_and_counts_bytes_sent() -> None:
    s = session("ga")
    s.append_audio(b"")
    s.append_audio(PCM)
    s.append_audio(PCM)
    assert len(sent(s)) == 2
    assert s.audio_sent_bytes == 2 * len(PCM)


def test_cancel_without_active_response_sends_nothing() -> None:
    s = session("ga")
    assert not s.cancel_response()
    feed(s, created(), done())
    assert not s.cancel_response()
    assert sent(s) == []


def test_a_response_cancelled_before_it_began_is_cancelled_as_it_begins() -> None:
    # The visitor went on while response.create was in flight: nothing to cancel yet, but
    # the answer it would bring must be neither generated in full (billed) nor played.
    s = session("ga")
    s.create_response()
    (request,) = assert_sent(s, "response.create")
    assert request["response"]["metadata"] == {"kiosk_request": "1"}
    assert not s.cancel_response()
    assert_sent(s)
    assert only(feed(s, created("resp_old", request=1)), ServerEventIgnored)
    assert_sent(s, "response.cancel")
    assert not s.response_active
    assert only(feed(s, audio_delta("ga", rid="resp_old")), ServerEventIgnored)
    finished = only(feed(s, done("resp_old", status="cancelled")), ResponseFinished)
    assert finished.stale and not finished.answer_over


def test_only_the_dropped_request_is_cancelled_as_it_begins() -> None:
    # A server that never answered the dropped request must not make the kiosk cancel the
    # next turn's answer; one that does not echo metadata gets the old behaviour.
    s = session("ga")
    s.create_response()
    s.cancel_response()  # turn 1 dropped, its request never answered
    s.create_response()
    assert_sent(s, "response.create", "response.create")
    assert isinstance(only(feed(s, created("resp_2", request=2)), ResponseStarted), ResponseStarted)
    assert s.active_response_id == "resp_2"
    assert_sent(s)
    feed(s, done("resp_2"))
    s.create_response()
    assert isinstance(only(feed(s, created("resp_3")), ResponseStarted), ResponseStarted)


def test_a_request_refused_behind_the_one_cancelled_as_it_began_goes_after_it() -> None:
    s = session("ga")
    s.create_response()
    s.cancel_response()
    s.create_response()  # the next turn's, sent: nothing was known to be winding down
    assert_sent(s, "response.create", "response.create")
    feed(s, created("resp_old", request=1))
    assert_sent(s, "response.cancel")
    feed(s, error("conversation_already_has_active_response"))  # the server refused #2
    assert_sent(s)
    feed(s, done("resp_old", status="cancelled"))
    assert_sent(s, "response.create")  # asked again once the old one is over
    feed(s, created("resp_new", request=3))
    assert s.active_response_id == "resp_new"


def test_a_request_is_never_held_behind_a_response_that_may_never_end() -> None:
    # A dead server: the cancelled response never gets its response.done. The next
    # turn's request goes out at once.
    s = session("ga")
    s.create_response()
    feed(s, created("resp_1", request=1))
    assert s.cancel_response()
    s.create_response()
    assert_sent(s, "response.create", "response.cancel", "response.create")


def test_a_refused_request_does_not_hold_up_the_next_one() -> None:
    s = session("ga")
    s.create_response()
    feed(s, error("server_error"))  # the request failed: no response.created will come
    s.create_response()
    assert_sent(s, "response.create", "response.create")


def test_truncate_without_answer_audio_sends_nothing() -> None:
    s = session("beta")
    assert not s.truncate_answer(500)
    assert sent(s) == []


def test_truncate_names_latest_answer_item_and_clamps_negative_ms() -> None:
    s = session("ga")
    feed(s, created("resp_1"), audio_delta("ga", rid="resp_1", item="item_a"), done("resp_1"))
    feed(s, created("resp_2"), audio_delta("ga", rid="resp_2", item="item_b"))
    assert s.answer_item_id == "item_b"
    assert s.truncate_answer(-5)
    (event,) = assert_sent(s, "conversation.item.truncate")
    assert (event["item_id"], event["audio_end_ms"]) == ("item_b", 0)


def test_tool_output_in_middle_tier_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="middle tier"):
        session("beta", middle_tier=True).send_tool_output("call_1", "x")


def test_data_to_send_drains_queue_oldest_first() -> None:
    s = session("ga")
    s.commit()
    s.create_response()
    assert [json.loads(t)["type"] for t in s.data_to_send()] == [
        "input_audio_buffer.commit",
        "response.create",
    ]
    assert s.data_to_send() == []


# --- server events -------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_server_event_type_parses_to_its_typed_event(dialect: Dialect) -> None:
    s = session(dialect)
    assert (
        only(
            feed(s, {"type": "session.created", "session": {"id": "sess_1"}}), SessionReady
        ).session_id
        == "sess_1"
    )
    assert (
        only(
            feed(s, {"type": "input_audio_buffer.committed", "item_id": "it_1"}), InputCommitted
        ).item_id
        == "it_1"
    )
    started = only(
        feed(s, {"type": "input_audio_buffer.speech_started", "audio_start_ms": 120}),
        ServerSpeechStarted,
    )
    assert started.audio_start_ms == 120
    stopped = only(
        feed(s, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900}),
        ServerSpeechStopped,
    )
    assert stopped.audio_end_ms == 900
    heard = only(
        feed(
            s,
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": "it_1",
                "transcript": "hi",
            },
        ),
        UserTranscript,
    )
    assert (heard.item_id, heard.text) == ("it_1", "hi")
    assert only(feed(s, created("resp_9")), ResponseStarted).response_id == "resp_9"
    assert s.response_active and s.active_response_id == "resp_9"
    delta = only(feed(s, audio_delta(dialect, rid="resp_9")), AudioDelta)
    assert (delta.response_id, delta.item_id, delta.pcm) == ("resp_9", "item_a", PCM)
    words = only(
        feed(s, {"type": TRANSCRIPT_DELTA[dialect], "response_id": "resp_9", "delta": "Second"}),
        AnswerTranscriptDelta,
    )
    assert words.text == "Second"
    finished = only(feed(s, done("resp_9")), ResponseFinished)
    assert (finished.response_id, finished.status, finished.had_audio, finished.answer_over) == (
        "resp_9",
        "completed",
        True,
        True,
    )
    assert not s.response_active
    limits = only(
        feed(
            s,
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 100, "remaining": 99, "reset_seconds": 1.5}
                ],
            },
        ),
        RateLimitsUpdated,
    )
    assert limits.limits == (("requests", 100, 99, 1.5),)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_other_dialects_audio_delta_name_is_not_audio(dialect: Dialect) -> None:
    other: Dialect = "beta" if dialect == "ga" else "ga"
    s = session(dialect)
    feed(s, created())
    assert only(feed(s, audio_delta(other)), ServerEventIgnored).event_type == AUDIO_DELTA[other]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_known_quiet_events_produce_nothing_and_unknown_ones_are_ignored(dialect: Dialect) -> None:
    s = session(dialect)
    assert (
        feed(s, {"type": "session.updated", "session": {}}, {"type": "response.output_item.added"})
        == []
    )
    assert (
        only(feed(s, {"type": "mcp_list_tools.in_progress"}), ServerEventIgnored).event_type
        == "mcp_list_tools.in_progress"
    )


def test_middle_tier_tool_response_parses() -> None:
    s = session("beta", middle_tier=True)
    frame = {
        "type": "extension.middle_tier_tool_response",
        "previous_item_id": "x",
        "tool_name": "report_grounding",
        "tool_result": '{"sources":[]}',
    }
    event = only(feed(s, frame), MiddleTierToolResponse)
    assert (event.tool_name, event.tool_result) == ("report_grounding", '{"sources":[]}')


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        "",
        "[1, 2]",
        '"response.done"',
        "null",
        '{"no_type": 1}',
        '{"type": 5}',
        "[" * 100_000,  # nesting deep enough to blow the parser's recursion
    ],
    ids=[
        "bad_json",
        "empty",
        "array",
        "string",
        "null",
        "no_type",
        "type_not_string",
        "deep_nesting",
    ],
)
def test_malformed_frame_is_rejected_without_raising(frame: str) -> None:
    s = session("ga")
    only(feed(s, frame), ServerEventRejected)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "patch",
    [
        {"delta": "%%%not base64%%%"},
        {"delta": base64.b64encode(b"\x01\x02\x03").decode()},  # odd byte count
        {"delta": 42},
        {"item_id": ["a"]},
        {"response_id": {"id": "x"}},
    ],
    ids=["bad_base64", "odd_bytes", "delta_not_string", "item_id_list", "response_id_object"],
)
def test_bad_audio_delta_is_rejected_and_session_keeps_working(
    dialect: Dialect, patch: dict[str, Any]
) -> None:
    s = session(dialect)
    feed(s, created())
    reason = only(feed(s, {**audio_delta(dialect), **patch}), ServerEventRejected).reason
    assert reason.startswith(AUDIO_DELTA[dialect])
    assert only(feed(s, audio_delta(dialect)), AudioDelta).pcm == PCM


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "input_audio_buffer.committed", "item_id": 7},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "i",
            "transcript": ["hi"],
        },
        {"type": "response.output_audio_transcript.delta", "delta": None, "response_id": 3},
        {
            "type": "response.function_call_arguments.done",
            "call_id": 1,
            "name": "search",
            "arguments": "{}",
        },
        {
            "type": "response.output_item.done",
            "item": {"type": "function_call", "call_id": "c", "name": "s", "arguments": {}},
        },
        {"type": "response.done", "response": {"output": 5}},
        {
            "type": "response.done",
            "response": {"output": [{"type": "function_call", "call_id": 3}]},
        },
        {"type": "rate_limits.updated", "rate_limits": 3},
        {
            "type": "rate_limits.updated",
            "rate_limits": [{"name": "tokens", "reset_seconds": 10**400}],
        },
        {"type": "extension.middle_tier_tool_response", "tool_name": 1, "tool_result": "x"},
    ],
    ids=lambda f: f["type"],
)
def test_wrong_field_types_are_rejected_not_raised(frame: dict[str, Any]) -> None:
    s = session("ga")
    feed(s, created())
    only(feed(s, frame), ServerEventRejected)


def test_oversized_frame_is_rejected_before_parsing() -> None:
    s = session("ga")
    reason = only(feed(s, " " * (MAX_SERVER_TEXT_CHARS + 1)), ServerEventRejected).reason
    assert "too large" in reason


def test_long_unknown_event_type_is_reported_shortened() -> None:
    s = session("ga")
    (event,) = feed(s, {"type": "x" * 10_000 + "\nsecond line"})
    assert isinstance(event, ServerEventIgnored)
    assert len(event.event_type) <= 100 and "\n" not in event.event_type


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(
        [
            "response.created",
            "response.done",
            "response.output_audio.delta",
            "response.audio.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "error",
            "rate_limits.updated",
            "session.created",
            "input_audio_buffer.speech_started",
            "extension.middle_tier_tool_response",
            "conversation.item.input_audio_transcription.completed",
        ]
    ),
    body=st.dictionaries(
        st.sampled_from(
            [
                "response",
                "delta",
                "item",
                "item_id",
                "response_id",
                "call_id",
                "name",
                "arguments",
                "error",
                "rate_limits",
                "session",
                "output",
                "usage",
                "status",
                "audio_start_ms",
                "tool_name",
                "tool_result",
                "transcript",
            ]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=6), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=5,
    ),
    dialect=st.sampled_from(DIALECTS),
    middle_tier=st.booleans(),
)
def test_any_shape_of_known_event_never_raises(
    kind: str, body: dict[str, Any], dialect: Dialect, middle_tier: bool
) -> None:
    s = session("beta" if middle_tier else dialect, middle_tier=middle_tier)
    feed(s, created())
    events = feed(s, json.dumps({**body, "type": kind}))
    assert len(events) <= 1


# --- function calls and the end of an answer -----------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_function_call_reported_once_though_it_arrives_twice(dialect: Dialect) -> None:
    s = session(dialect, tools=(SEARCH_TOOL,))
    events = feed(
        s, created(), call_args_done(dialect), output_item_done(), done(output=[call_item()])
    )
    calls = [e for e in events if isinstance(e, FunctionCallRequested)]
    assert calls == [FunctionCallRequested("resp_1", "call_1", "search", '{"query":"restroom"}')]
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (1, False)


def test_function_call_seen_only_in_response_done_still_counts_as_tool_round() -> None:
    s = session("ga", tools=(SEARCH_TOOL,))
    feed(s, created())
    finished = only(feed(s, done(output=[call_item()])), ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (1, False)


def test_response_done_with_another_id_is_stale_and_keeps_the_active_response() -> None:
    s = session("ga")
    feed(s, created("resp_1"), audio_delta("ga"))
    stale = only(feed(s, done("resp_other", usage={"output_tokens": 7})), ResponseFinished)
    assert stale.stale and not stale.answer_over and stale.usage.output_total == 7
    assert s.active_response_id == "resp_1"
    assert isinstance(only(feed(s, audio_delta("ga")), AudioDelta), AudioDelta)
    finished = only(feed(s, done("resp_1")), ResponseFinished)
    assert not finished.stale and finished.answer_over and finished.had_audio


def test_response_done_without_any_response_in_progress_is_stale() -> None:
    s = session("ga")
    assert only(feed(s, done("resp_unknown")), ResponseFinished).stale
    feed(s, created("resp_1"), done("resp_1"))
    assert only(feed(s, done("resp_1")), ResponseFinished).stale  # a second done of it


def test_response_done_without_an_id_finishes_the_active_response() -> None:
    s = session("ga")
    feed(s, created("resp_1"))
    finished = only(feed(s, done("")), ResponseFinished)
    assert not finished.stale and finished.response_id == "resp_1"


def test_error_code_and_message_come_out_bounded_on_one_line() -> None:
    s = session("ga")
    huge = "x\n2026-01-01 INFO kiosk: forged\x1b[31m" * 10_000
    err = only(feed(s, {"type": "error", "error": {"code": huge, "message": huge}}), ServerError)
    for text, cap in ((err.code, MAX_CODE_CHARS), (err.message, MAX_MESSAGE_CHARS)):
        assert len(text) <= cap + 20 and "\n" not in text and "\x1b" not in text


def test_function_call_without_active_response_is_ignored() -> None:
    s = session("ga", tools=(SEARCH_TOOL,))
    only(feed(s, call_args_done("ga")), ServerEventIgnored)


def test_output_item_done_of_audio_item_is_quiet() -> None:
    s = session("ga")
    feed(s, created())
    item = {"type": "message", "role": "assistant", "content": []}
    assert (
        feed(s, {"type": "response.output_item.done", "response_id": "resp_1", "item": item}) == []
    )


def test_function_call_event_from_middle_tier_is_ignored_not_run() -> None:
    # A middle tier runs its tools itself; the kiosk must never try to answer one.
    s = session("beta", middle_tier=True)
    feed(s, created())
    events = feed(s, output_item_done(), call_args_done("beta"))
    assert all(isinstance(e, ServerEventIgnored) for e in events) and len(events) == 2
    finished = only(feed(s, audio_delta("beta"), done())[1:], ResponseFinished)
    assert finished.function_calls == 0
    assert finished.answer_over


def test_middle_tier_preamble_with_call_left_in_output_is_a_tool_round() -> None:
    # VoiceRAG hides its calls but its response.done filter can leave one in the output
    # (it pops by reversed index): audio then is not the answer, a tool round follows.
    s = session("beta", middle_tier=True)
    events = feed(s, created(), audio_delta("beta"), done(output=[call_item()]))
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert not any(isinstance(e, FunctionCallRequested) for e in events)
    assert (finished.had_audio, finished.function_calls, finished.answer_over) == (True, 0, False)


@pytest.mark.parametrize(("had_audio", "answer_over"), [(False, False), (True, True)])
def test_middle_tier_response_done_is_answer_only_with_audio(
    had_audio: bool, answer_over: bool
) -> None:
    s = session("beta", middle_tier=True)
    feed(s, created())
    if had_audio:
        feed(s, audio_delta("beta"))
    finished = only(feed(s, done()), ResponseFinished)
    assert (finished.had_audio, finished.answer_over) == (had_audio, answer_over)


def test_direct_response_done_without_audio_is_answer_over() -> None:
    s = session("ga")
    finished = only(feed(s, created(), done())[1:], ResponseFinished)
    assert (finished.had_audio, finished.answer_over) == (False, True)


@pytest.mark.parametrize("middle_tier", [False, True])
def test_cancelled_response_is_not_answer_over(middle_tier: bool) -> None:
    s = session("beta", middle_tier=middle_tier)
    feed(s, created(), audio_delta("beta"))
    frame = done(status="cancelled")
    frame["response"]["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
    finished = only(feed(s, frame), ResponseFinished)
    assert (finished.status, finished.status_detail, finished.answer_over) == (
        "cancelled",
        "client_cancelled",
        False,
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_late_audio_delta_after_response_done_is_ignored(dialect: Dialect) -> None:
    s = session(dialect)
    feed(s, created(), audio_delta(dialect), done())
    assert (
        "no active response" in only(feed(s, audio_delta(dialect)), ServerEventIgnored).event_type
    )


def test_audio_delta_of_another_response_is_ignored() -> None:
    s = session("ga")
    feed(s, created("resp_2"))
    only(feed(s, audio_delta("ga", rid="resp_1")), ServerEventIgnored)
    assert s.answer_item_id is None


# --- usage and errors ----------------------------------------------------------------------------


def test_usage_with_details_is_split_by_modality() -> None:
    assert parse_usage(USAGE) == Usage(
        input_text=100, input_audio=30, input_cached=64, output_text=20, output_audio=180
    )


def test_usage_with_totals_only_counts_as_text() -> None:
    assert parse_usage({"input_tokens": 50, "output_tokens": 70}) == Usage(
        input_text=50, output_text=70
    )


@pytest.mark.parametrize("raw", [None, "lots", [], {"input_tokens": -3, "output_tokens": True}])
def test_usage_of_wrong_shape_counts_zero(raw: Any) -> None:
    assert parse_usage(raw) == Usage()


def test_response_done_carries_usage() -> None:
    s = session("beta")
    finished = only(feed(s, created(), done(usage=USAGE))[1:], ResponseFinished)
    assert finished.usage.output_audio == 180


@pytest.mark.parametrize("code", sorted(BENIGN_ERROR_CODES))
def test_benign_error_codes_are_flagged(code: str) -> None:
    err = only(feed(session("ga"), error(code)), ServerError)
    assert (err.code, err.benign) == (code, True)


def test_other_error_is_not_benign_and_falls_back_to_type() -> None:
    s = session("ga")
    err = only(
        feed(s, error("session_expired", "Your session hit the maximum duration")), ServerError
    )
    assert (err.code, err.benign, err.message) == (
        "session_expired",
        False,
        "Your session hit the maximum duration",
    )
    assert only(feed(s, error(None)), ServerError).code == "invalid_request_error"
    assert only(feed(s, {"type": "error"}), ServerError).code == "unknown"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_session_update_without_transcription_or_language_is_valid(dialect: Dialect) -> None:
    event = session(dialect, transcription_model="").session_update_event()
    assert validate_client_event(event, dialect) == []
    assert "transcription" not in json.dumps(event)
    event = session(dialect, language="").session_update_event()
    assert '"language"' not in json.dumps(event)


def test_rate_limits_skip_entries_that_are_not_objects() -> None:
    frame = {"type": "rate_limits.updated", "rate_limits": ["x", {"name": "tokens", "limit": 9}]}
    assert only(feed(session("ga"), frame), RateLimitsUpdated).limits == (("tokens", 9, 0, 0.0),)


def test_response_done_output_of_messages_only_is_not_a_tool_round() -> None:
    s = session("ga")
    message = {"type": "message", "role": "assistant", "content": []}
    finished = only(feed(s, created(), done(output=[message, "junk"]))[1:], ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (0, True)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_response_with_null_id_still_plays_its_audio(dialect: Dialect) -> None:
    s = session(dialect)
    frame = created()
    frame["response"]["id"] = None
    assert only(feed(s, frame), ResponseStarted).response_id == ""
    assert only(feed(s, audio_delta(dialect, rid="resp_1")), AudioDelta).pcm == PCM
    finished_frame = done()
    finished_frame["response"]["id"] = None
    assert only(feed(s, finished_frame), ResponseFinished).response_id == ""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_two_calls_in_one_response_are_each_reported_once(dialect: Dialect) -> None:
    s = session(dialect, tools=(SEARCH_TOOL,))
    events = feed(
        s,
        created(),
        call_args_done(dialect, call_id="call_1"),
        output_item_done(call_id="call_1"),
        call_args_done(dialect, call_id="call_2"),
        output_item_done(call_id="call_2"),
        done(output=[call_item("call_1"), call_item("call_2")]),
    )
    calls = [e.call_id for e in events if isinstance(e, FunctionCallRequested)]
    assert calls == ["call_1", "call_2"]
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (2, False)

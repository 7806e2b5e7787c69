"""kiosk.core.realtime, how it parses server frames of both dialects: each event type to its
typed event, and frames it must refuse (malformed, wrong types, oversized) without raising."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.realtime import (
    MAX_SERVER_TEXT_CHARS,
    AnswerTranscriptDelta,
    AudioDelta,
    Dialect,
    InputCommitted,
    MiddleTierToolResponse,
    RateLimitsUpdated,
    ResponseFinished,
    ResponseStarted,
    ServerEventIgnored,
    ServerEventRejected,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionReady,
    UserTranscript,
)
from kiosk.testing.validation import validate_server_event
from tests.unit.helpers import feed, only

from .realtime_frames import (
    AUDIO_DELTA,
    DIALECTS,
    PCM,
    TRANSCRIPT_DELTA,
    USAGE,
    audio_delta,
    call_args_done,
    call_item,
    created,
    done,
    error,
    output_item_done,
    session,
)


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

"""kiosk.testing.validation: SDK-typed events, plus the strict "no undeclared keys" pass."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.testing.validation import validate_client_event, validate_server_event

from .realtime_frames import SEARCH_TOOL  # free-form JSON schema: its keys must not be flagged

GA_SESSION_UPDATE: dict[str, Any] = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Answer briefly.",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": None,
                "transcription": {"model": "whisper-1"},
                "noise_reduction": {"type": "far_field"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
        "tools": [SEARCH_TOOL],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
    },
}

BETA_SESSION_UPDATE: dict[str, Any] = {
    "type": "session.update",
    "session": {
        "modalities": ["audio", "text"],
        "instructions": "Answer briefly.",
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": {"model": "whisper-1"},
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        },
        "tools": [SEARCH_TOOL],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
    },
}


def test_documented_ga_session_update_is_valid() -> None:
    assert validate_client_event(GA_SESSION_UPDATE, "ga") == []


def test_documented_beta_session_update_is_valid() -> None:
    assert validate_client_event(BETA_SESSION_UPDATE, "beta") == []


def test_beta_session_keys_sent_to_ga_are_reported_as_undeclared() -> None:
    event = {
        "type": "session.update",
        "session": {"type": "realtime", "voice": "alloy", "modalities": ["audio"]},
    }
    assert validate_client_event(event, "ga") == [
        "session.update: undeclared key session.voice",
        "session.update: undeclared key session.modalities",
    ]


def test_ga_session_sent_to_beta_is_reported_as_undeclared() -> None:
    errors = validate_client_event(GA_SESSION_UPDATE, "beta")
    assert "session.update: undeclared key session.audio" in errors
    assert "session.update: undeclared key session.output_modalities" in errors


def test_undeclared_key_deep_inside_a_model_is_reported_with_its_path() -> None:
    event = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000, "bits": 16}}},
        },
    }
    assert validate_client_event(event, "ga") == [
        "session.update: undeclared key session.audio.input.format.bits"
    ]


def test_undeclared_key_inside_a_list_item_is_reported_with_its_index() -> None:
    event = {
        "type": "session.update",
        "session": {"tools": [SEARCH_TOOL, {**SEARCH_TOOL, "name": "x", "strict": True}]},
    }
    assert validate_client_event(event, "beta") == [
        "session.update: undeclared key session.tools[1].strict"
    ]


def test_unknown_client_event_type_is_named_in_the_error() -> None:
    errors = validate_client_event({"type": "response.audio.delta", "delta": ""}, "ga")
    assert len(errors) == 1
    assert errors[0].startswith("response.audio.delta: ")
    assert "does not match any of the expected tags" in errors[0]


def test_missing_required_field_names_the_field() -> None:
    assert validate_client_event({"type": "input_audio_buffer.append"}, "beta") == [
        "input_audio_buffer.append: audio: Field required"
    ]


def test_wrong_field_type_names_the_field() -> None:
    event = {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": "soon",
    }
    errors = validate_client_event(event, "ga")
    assert len(errors) == 1
    assert errors[0].startswith("conversation.item.truncate: audio_end_ms: ")


@pytest.mark.parametrize("event", [[], "session.update", None, {"no": "type"}])
def test_event_that_is_not_a_typed_object_is_invalid_with_label_question_mark(
    event: object,
) -> None:
    errors = validate_client_event(event, "ga")
    assert errors
    assert all(line.startswith("?: ") for line in errors)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_function_call_output_item_is_valid_in_both_dialects(dialect: Any) -> None:
    event = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": "[a]: b\n-----\n"},
    }
    assert validate_client_event(event, dialect) == []


def test_unknown_dialect_raises_value_error() -> None:
    with pytest.raises(ValueError, match="dialect"):
        validate_client_event({"type": "response.create"}, "preview")  # type: ignore[arg-type]


def test_audio_delta_name_depends_on_the_server_dialect() -> None:
    base = {
        "event_id": "e1",
        "response_id": "r1",
        "item_id": "i1",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAAA",
    }
    assert validate_server_event({**base, "type": "response.output_audio.delta"}, "ga") == []
    assert validate_server_event({**base, "type": "response.audio.delta"}, "beta") == []
    assert validate_server_event({**base, "type": "response.audio.delta"}, "ga") != []
    assert validate_server_event({**base, "type": "response.output_audio.delta"}, "beta") != []


def test_server_usage_with_undeclared_key_is_reported() -> None:
    event = {
        "type": "response.done",
        "event_id": "e1",
        "response": {
            "id": "r1",
            "status": "completed",
            "output": [],
            "usage": {"total_tokens": 3, "input_tokens": 1, "output_tokens": 2, "audio_s": 1.0},
        },
    }
    assert validate_server_event(event, "beta") == [
        "response.done: undeclared key response.usage.audio_s"
    ]


def test_server_error_event_is_valid_in_both_dialects() -> None:
    event = {
        "type": "error",
        "event_id": "e1",
        "error": {"type": "invalid_request_error", "code": "x", "message": "m"},
    }
    assert validate_server_event(event, "ga") == []
    assert validate_server_event(event, "beta") == []


def test_voicerag_extension_event_is_not_a_server_event() -> None:
    event = {
        "type": "extension.middle_tier_tool_response",
        "previous_item_id": "i1",
        "tool_name": "report_grounding",
        "tool_result": "{}",
    }
    assert validate_server_event(event, "beta") != []

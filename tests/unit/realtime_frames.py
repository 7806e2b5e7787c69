"""Server frames shaped like the real Realtime API, in both dialects (each checked against the
openai SDK's types in test_realtime_server), and a session factory: shared by the
test_realtime_client / _server / _calls modules of kiosk.core.realtime."""

from __future__ import annotations

import base64
import copy
from typing import Any

from kiosk.core.realtime import (
    Dialect,
    RealtimeSession,
    SessionOptions,
)
from kiosk.testing.fake_session import VOICERAG_TOOLS

DIALECTS: list[Dialect] = ["ga", "beta"]
# The search tool as the kiosk declares it (its free-form JSON schema: not SDK model fields).
SEARCH_TOOL: dict[str, Any] = copy.deepcopy(VOICERAG_TOOLS[0])
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

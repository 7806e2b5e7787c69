"""The session of the fake Realtime server: what it reports and how updates change it.

Kept apart from :mod:`kiosk.testing.fake_conversation` (the client-event handling) because
these are the API's shapes, per dialect: the event names that differ, the defaults
``session.created`` reports, what a VoiceRAG middle tier writes over a ``session.update``,
and where each dialect keeps the turn detection and transcription settings. Pure data and
functions; no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kiosk.testing.fake_script import RATE_HZ, JsonDict
from kiosk.testing.validation import Dialect

# Server VAD keeps this much audio from before speech onset (the API's prefix_padding_ms).
PREFIX_PADDING_MS = 300

# Event names that differ between dialects (docs/realtime-protocol.md).
EVENT_NAMES: dict[Dialect, dict[str, str]] = {
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

DEFAULT_TURN_DETECTION: JsonDict = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": PREFIX_PADDING_MS,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}

# What a VoiceRAG middle tier writes over the client's session.update (its ragtools.py
# declares these two tools; descriptions here are ours).
VOICERAG_INSTRUCTIONS = "Answer only from the knowledge base, briefly. Cite with report_grounding."
VOICERAG_TOOLS: list[JsonDict] = [
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


def default_session(dialect: Dialect, *, voicerag: bool) -> JsonDict:
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
                    "turn_detection": dict(DEFAULT_TURN_DETECTION),
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
        "turn_detection": dict(DEFAULT_TURN_DETECTION),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
    }
    if voicerag:
        # The middle tier blanks these in session.created (rtmt.py).
        session.update(tool_choice="none", max_response_output_tokens=None)
    return session


def apply_session_update(session: JsonDict, update: Mapping[str, Any], *, voicerag: bool) -> None:
    """Merge a client's ``session.update`` into ``session`` (nested objects key by key)."""
    _deep_merge(session, update)
    if voicerag:
        # VoiceRAG's middle tier overwrites these on every session.update.
        session.update(
            instructions=VOICERAG_INSTRUCTIONS,
            tools=copy.deepcopy(VOICERAG_TOOLS),
            tool_choice="auto",
        )


def session_view(session: JsonDict) -> JsonDict:
    """The session as ``session.created``/``session.updated`` report it."""
    view = copy.deepcopy(session)
    # Update-only keys the server's session type does not declare: never echoed.
    view.pop("client_secret", None)
    return view


def declared_tool_names(session: JsonDict) -> set[str]:
    tools = session.get("tools") or []
    return {str(tool.get("name")) for tool in tools if isinstance(tool, dict)}


def turn_detection(session: JsonDict, dialect: Dialect) -> JsonDict | None:
    """The session's turn detection (server VAD) settings; None when it is off."""
    if dialect == "ga":
        detection = session.get("audio", {}).get("input", {}).get("turn_detection")
    else:
        detection = session.get("turn_detection")
    return detection if isinstance(detection, dict) else None


def transcription_on(session: JsonDict, dialect: Dialect) -> bool:
    if dialect == "ga":
        return bool(session.get("audio", {}).get("input", {}).get("transcription"))
    return bool(session.get("input_audio_transcription"))


def _deep_merge(target: JsonDict, update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)

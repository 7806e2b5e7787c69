"""What the kiosk asks of a Realtime session: :class:`SessionOptions` and the
``session.update`` client event built from them, in either dialect.

Kept apart from :mod:`kiosk.core.realtime` because the session configuration is the one
large client event and varies the most between the GA and beta dialects; the session
itself only queues it (see realtime-protocol.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["ga", "beta"]
TurnDetection = Literal["local", "server_vad", "semantic_vad"]


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What ``session.update`` says. ``tools`` are flat function tools (both dialects)."""

    instructions: str
    voice: str = "alloy"
    model: str = "gpt-realtime"  # GA only
    language: str = ""
    temperature: float = 0.8  # beta only
    max_output_tokens: int = 0  # 0 = "inf"
    turn_detection: TurnDetection = "local"
    transcription_model: str = "whisper-1"
    tools: tuple[Mapping[str, Any], ...] = ()
    # Words the recogniser should expect (the knowledge base's headings): transcription.prompt.
    transcription_prompt: str = ""


def session_update_event(
    dialect: Dialect, options: SessionOptions, *, middle_tier: bool = False
) -> dict[str, Any]:
    """The ``session.update`` client event for ``dialect``. A VoiceRAG middle tier runs the
    tools itself, so none are declared to it."""
    o = options
    tools = [] if middle_tier else [dict(t) for t in o.tools]
    detection: dict[str, Any] | None
    if o.turn_detection == "local":
        detection = None
    elif o.turn_detection == "server_vad":
        detection = {"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 300}
    else:
        detection = {"type": "semantic_vad"}
    transcription: dict[str, Any] | None = None
    if o.transcription_model:
        transcription = {"model": o.transcription_model}
        if o.language:
            transcription["language"] = o.language
        if o.transcription_prompt:
            transcription["prompt"] = o.transcription_prompt
    max_tokens: int | str = o.max_output_tokens or "inf"
    session: dict[str, Any]
    if dialect == "ga":
        audio_in: dict[str, Any] = {
            "format": {"type": "audio/pcm", "rate": 24000},
            "turn_detection": detection,
        }
        if transcription:
            audio_in["transcription"] = transcription
        session = {
            "type": "realtime",
            "model": o.model,
            "instructions": o.instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": audio_in,
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": o.voice},
            },
            "max_output_tokens": max_tokens,
        }
    else:
        session = {
            "modalities": ["audio", "text"],
            "instructions": o.instructions,
            "voice": o.voice,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "turn_detection": detection,
            "temperature": o.temperature,
            "max_response_output_tokens": max_tokens,
        }
        if transcription:
            session["input_audio_transcription"] = transcription
    if tools:
        session["tools"] = tools
        session["tool_choice"] = "auto"
    return {"type": "session.update", "session": session}

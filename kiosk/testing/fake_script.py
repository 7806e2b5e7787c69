"""What the fake Realtime server says and what it records: the script and the records.

Owns: :class:`FakeScript` (the fake model's words, audio and fault switches), the records a
test reads afterwards (:class:`ConnectionRecord`, :class:`RejectedHandshake`,
:class:`Truncation`), and two pure helpers: deterministic speech-like answer audio and the
parsing of VoiceRAG-style search output. No I/O here.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

RATE_HZ = 24_000
BYTES_PER_MS = RATE_HZ * 2 // 1000  # PCM16 mono

Garbage = Literal["non_json", "unknown_type", "bad_base64"]
JsonDict = dict[str, Any]


def _default_sources() -> list[dict[str, str]]:
    return [
        {
            "chunk_id": "weather_md_0",
            "title": "weather.md",
            "chunk": "The lobby forecast board says: sunny, 20 degrees.",
        }
    ]


@dataclass
class FakeScript:
    """What the fake "model" says and does; mutable so a test can change it between turns.

    Attributes:
        transcript: the user's words, sent as input transcription (when configured).
        call_search: answer a fresh user turn with a ``search`` call first (direct mode:
            only if the session declared a ``search`` tool).
        search_query: the ``query`` argument of that call.
        call_grounding: after the search output, call ``report_grounding`` with the chunk
            ids found in it (direct mode: only if declared); in voicerag mode, send the
            ``extension.middle_tier_tool_response`` with ``grounding_sources``.
        grounding_sources: VoiceRAG's ``{"chunk_id","title","chunk"}`` source documents.
        answer_text: the spoken answer's transcript.
        answer_audio_s: seconds of answer audio.
        answer_pcm: the answer audio itself (24 kHz PCM16 mono, e.g. real TTS speech);
            when set it replaces the synthetic ``answer_audio_s`` of speech-like audio.
        realtime_pacing: send answer audio at playback speed (False: all at once).
        response_delay_s: the model's think time: each response (tool call or spoken
            answer) starts this long after it was requested (the real service: ~0.3-0.6 s).
        delta_ms: milliseconds of audio per ``audio.delta`` event.
        vad_rms_threshold: server-VAD emulation: RMS (of 32768) above which a chunk is speech.
        vad_silence_ms: silence that ends speech; None: the session's
            ``turn_detection.silence_duration_ms`` (500 unless the client set it).
        error_after_commit: fault: send an ``error`` with this code after each commit and
            never answer that turn.
        silent: fault: after ``session.created`` never send anything.
        send_garbage: fault: one bad frame with each spoken answer (see module docstring).
    """

    transcript: str = "What's the weather like today?"
    call_search: bool = True
    search_query: str = "weather today"
    call_grounding: bool = True
    grounding_sources: list[dict[str, str]] = field(default_factory=_default_sources)
    answer_text: str = "It is sunny and twenty degrees in the lobby today."
    answer_audio_s: float = 2.0
    answer_pcm: bytes | None = None
    realtime_pacing: bool = True
    response_delay_s: float = 0.0
    delta_ms: int = 100
    vad_rms_threshold: float = 500.0
    vad_silence_ms: int | None = None
    error_after_commit: str | None = None
    silent: bool = False
    send_garbage: Garbage | None = None


@dataclass
class ConnectionRecord:
    """One accepted websocket connection, as the server saw it.

    ``received`` holds the client's events (parsed JSON, in order, valid or not);
    ``sent`` every text frame the server sent (raw, so garbage frames show too).
    ``declared_tools`` are the tool names of the session after the last session.update;
    ``input_audio_ms`` the audio appended so far (24 kHz PCM16); ``answer_audio_ms`` the
    audio sent per assistant item id. Times are ``time.monotonic()`` seconds.
    """

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    opened_at: float
    closed_at: float | None = None
    received: list[JsonDict] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    declared_tools: list[str] = field(default_factory=list)
    input_audio_ms: float = 0.0
    answer_audio_ms: dict[str, int] = field(default_factory=dict)

    def received_types(self) -> list[str]:
        return [str(event.get("type")) for event in self.received]

    def sent_events(self) -> list[JsonDict]:
        """The sent frames that are JSON objects, parsed."""
        events: list[JsonDict] = []
        for frame in self.sent:
            with contextlib.suppress(ValueError):
                parsed = json.loads(frame)
                if isinstance(parsed, dict):
                    events.append(parsed)
        return events

    def sent_types(self) -> list[str]:
        return [str(event.get("type")) for event in self.sent_events()]


@dataclass(frozen=True, slots=True)
class RejectedHandshake:
    """A handshake the server refused (fault hook or bad auth)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    at: float


@dataclass(frozen=True, slots=True)
class Truncation:
    """A ``conversation.item.truncate`` the client sent, next to what had been sent."""

    item_id: str
    audio_end_ms: int
    audio_ms_sent: int


def speech_like_pcm16(duration_s: float, rate_hz: int = RATE_HZ) -> bytes:
    """Deterministic speech-like audio: a gliding 120-160 Hz voice with five harmonics
    under a ~4 syllables/s envelope, peaking near -8 dBFS (webrtcvad calls it speech).

    Returns PCM16 little-endian mono bytes.
    """
    count = max(0, round(duration_s * rate_hz))
    t = np.arange(count, dtype=np.float64) / rate_hz
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate_hz
    voice = sum(np.sin(h * phase) / h for h in range(1, 6))
    # Syllables: a raised sine at 4 Hz, floored so the gaps between syllables stay
    # voiced (as in connected speech) rather than dropping to silence.
    envelope = 0.35 + 0.65 * np.abs(np.sin(np.pi * 4.0 * t))
    signal = 0.4 * voice / 1.5 * envelope
    return (np.clip(signal, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def chunk_ids_from_search_output(output: str) -> list[str]:
    """The ``[chunk_id]`` heads of VoiceRAG-style search results, in order, deduplicated."""
    found = re.findall(r"^\s*\[([^\]\n]+)\]:", output, flags=re.MULTILINE)
    return list(dict.fromkeys(found))

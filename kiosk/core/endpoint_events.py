"""What the endpointer (:mod:`kiosk.core.endpointing`) reports: speech began, more, ended."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Onset:
    """Speech began. ``audio`` = pre-roll + the frames that proved it (send these first)."""

    audio: bytes


@dataclass(frozen=True, slots=True)
class Speech:
    """More utterance audio to stream (voiced frames, plus pauses once speech resumed)."""

    audio: bytes


@dataclass(frozen=True, slots=True)
class EndOfSpeech:
    """The hangover passed after the last voiced frame (``no_speech``: forced open, none came)."""

    speech_s: float
    no_speech: bool = False


EndpointEvent = Onset | Speech | EndOfSpeech

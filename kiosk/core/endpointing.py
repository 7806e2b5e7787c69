"""Local endpointing: when does a person start and stop speaking, and which audio is speech.

Owns the pre-roll ring buffer, the onset rule (``min_speech_ms`` of voiced frames), the
hangover that ends an utterance, and the half-duplex barge-in guard. Does not own the voice
detector itself (injected: ``is_speech(frame) -> bool``, webrtcvad in production) or what
happens upstream (``kiosk.core.turns``).

Only speech goes upstream: silence inside an utterance is held back and released only if
speech resumes, so trailing silence (the hangover) is never streamed or billed.
Time is the frame count: every frame is exactly ``frame_ms`` long.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kiosk.config import VadSettings


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


def frame_dbfs(frame: bytes) -> float:
    """RMS level of a PCM16 frame in dBFS (-inf for digital silence)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


class Endpointer:
    """Feed fixed-size PCM16 frames; get onset / speech / end events.

    Args:
        is_speech: the voice detector for one frame.
        settings: ``[vad]`` settings (min speech, hangover, pre-roll, barge-in guard).
        frame_ms: length of every frame.
        no_speech_timeout_s: when opened by :meth:`force_open` (button), end with
            ``no_speech=True`` if nobody speaks this long.
    """

    def __init__(
        self,
        is_speech: Callable[[bytes], bool],
        settings: VadSettings,
        frame_ms: int,
        *,
        no_speech_timeout_s: float = 5.0,
    ) -> None:
        self._is_speech = is_speech
        self.settings = settings
        self.frame_ms = frame_ms
        self._preroll: deque[bytes] = deque(maxlen=max(0, settings.preroll_ms // frame_ms))
        self._onset_frames: list[bytes] = []  # voiced run not yet long enough to count
        self._onset_loud = 0  # frames of that run at or above the level floor
        self._pause: list[bytes] = []  # silence inside an utterance, held back
        self._in_speech = False
        self._forced = False
        self._voiced_ms = 0
        self._silence_ms = 0
        self._utterance_ms = 0  # onset .. last voiced frame
        self.guarded = False  # half-duplex guard: set while the kiosk's own answer plays
        self.no_speech_timeout_s = no_speech_timeout_s

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def force_open(self) -> None:
        """Treat the person as speaking now (button tap / push-to-talk / wake word)."""
        self._in_speech = True
        self._forced = True
        # No pre-roll goes up for a button-opened turn, and audio from before it must not
        # become the pre-roll of the next onset either.
        self._preroll.clear()
        self._voiced_ms = 0
        self._silence_ms = 0
        self._utterance_ms = 0
        self._pause = []
        self._onset_frames = []
        self._onset_loud = 0

    def reset(self) -> None:
        """Forget the current utterance (the turn ended elsewhere: mute, barge-in, error).

        Also forgets the pre-roll and a half-proved onset: audio from before the reset must
        not be sent as the next onset's pre-roll (after a mute it may be minutes old).
        """
        self._preroll.clear()
        self._in_speech = False
        self._forced = False
        self._onset_frames = []
        self._onset_loud = 0
        self._pause = []
        self._voiced_ms = 0
        self._silence_ms = 0
        self._utterance_ms = 0

    def process(self, frame: bytes) -> list[EndpointEvent]:
        voiced = self._is_speech(frame)
        if self._in_speech:
            return self._continue(frame, voiced)
        return self._wait_for_onset(frame, voiced)

    def _wait_for_onset(self, frame: bytes, voiced: bool) -> list[EndpointEvent]:
        """Onset = enough *loud* voiced frames within one voiced run.

        webrtcvad ignores level: after a stretch of silence it calls faint hum speech, so a
        frame counts only at a person-at-the-kiosk level (``min_level_dbfs``); while our
        answer plays without AEC, at a louder one (``barge_in_min_level_dbfs``), since the
        speaker's echo is quieter than someone talking to us. Quieter voiced frames inside
        the run neither count nor break it (real speech dips between syllables); an
        unvoiced frame ends the run (a cough or click stays a blip).
        """
        s = self.settings
        if not voiced:
            if self._onset_frames:
                for f in self._onset_frames:
                    self._preroll.append(f)
                self._onset_frames = []
                self._onset_loud = 0
            self._preroll.append(frame)
            return []
        floor = s.barge_in_min_level_dbfs if self.guarded else s.min_level_dbfs
        self._onset_frames.append(frame)
        if frame_dbfs(frame) >= floor:
            self._onset_loud += 1
        need_ms = s.barge_in_min_speech_ms if self.guarded else s.min_speech_ms
        if self._onset_loud * self.frame_ms < need_ms:
            if len(self._onset_frames) * self.frame_ms > 3 * max(need_ms, 100):
                # A long quiet voiced run (hum): keep only its tail; the rest is pre-roll.
                oldest = self._onset_frames.pop(0)
                self._preroll.append(oldest)
                if frame_dbfs(oldest) >= floor:
                    self._onset_loud -= 1
            return []
        audio = b"".join(self._preroll) + b"".join(self._onset_frames)
        self._utterance_ms = len(self._onset_frames) * self.frame_ms
        self._preroll.clear()
        self._onset_frames = []
        self._onset_loud = 0
        self._in_speech = True
        self._forced = False
        self._silence_ms = 0
        self._voiced_ms = self._utterance_ms
        return [Onset(audio)]

    def _continue(self, frame: bytes, voiced: bool) -> list[EndpointEvent]:
        s = self.settings
        if voiced:
            # A pause counts once speech resumes; the wait before a button-opened turn's
            # first word does not (speech_s is onset .. last voiced frame).
            waited_ms = self._silence_ms if self._voiced_ms else 0
            self._voiced_ms += self.frame_ms
            self._utterance_ms += waited_ms + self.frame_ms
            self._silence_ms = 0
            audio = b"".join(self._pause) + frame
            self._pause = []
            return [Speech(audio)]
        self._silence_ms += self.frame_ms
        self._pause.append(frame)
        if self._forced and self._voiced_ms == 0:
            # Opened by the button, nobody spoke yet: keep only a pre-roll's worth of the wait.
            keep = max(1, self.settings.preroll_ms // self.frame_ms)
            del self._pause[:-keep]
            if self._silence_ms >= self.no_speech_timeout_s * 1000:
                self.reset()
                return [EndOfSpeech(0.0, no_speech=True)]
            return []
        if self._silence_ms >= s.hangover_ms:
            speech_s = self._utterance_ms / 1000
            self.reset()
            return [EndOfSpeech(speech_s)]
        return []

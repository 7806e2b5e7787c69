"""The "service unreachable" message: a pre-rendered clip instead of silence.

Owns loading the shipped clips (``kiosk/data/offline_{en,ja}.wav``, made by
``tools/make_offline_clips.py``) and :class:`OfflineNotice`, an event-stream subscriber
that plays the clip when the kiosk cannot answer for want of the service: the connection
could not be made (``ErrorReported`` code ``upstream_unavailable``) or the cost budget is
spent (code ``budget_exhausted``). It does not decide *that* the service is unreachable
(``kiosk.net.policy`` and the app do) and does not own the speaker: it writes into the
playback buffer's earcon lane (``item_id=None``), which barge-in can flush and which is never
counted as answer audio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Protocol

from kiosk.core.events import ErrorReported, KioskEvent

log = logging.getLogger(__name__)

CLIP_RATE_HZ = 24_000
NOTICE_CODES = frozenset({"upstream_unavailable", "budget_exhausted"})
# A person who keeps asking while the service is down hears the message once a while, not
# after every sentence.
MIN_INTERVAL_S = 20.0
_PAUSE_BETWEEN_LANGUAGES_S = 0.4


class EarconLane(Protocol):
    """What :class:`OfflineNotice` needs of the playback buffer."""

    def write(self, pcm: bytes, item_id: str | None = None) -> None: ...


def clip_path(language: str) -> Path:
    """The shipped clip for ``"en"`` or ``"ja"`` (anything else: English)."""
    name = "offline_ja.wav" if language.lower().startswith("ja") else "offline_en.wav"
    return Path(str(resources.files("kiosk") / "data" / name))


def load_offline_message(language: str = "", rate_hz: int = CLIP_RATE_HZ) -> bytes:
    """PCM16 mono at ``rate_hz`` of the message in ``language`` ("" = English, then Japanese).

    Raises:
        AudioFileError: a clip is missing or unreadable (a broken install).
    """
    from kiosk.audio.wav import read_wav_mono  # numpy/soxr: only when a clip is loaded

    languages = [language] if language else ["en", "ja"]
    parts: list[bytes] = []
    for i, lang in enumerate(languages):
        if i:
            parts.append(bytes(2 * int(rate_hz * _PAUSE_BETWEEN_LANGUAGES_S)))
        parts.append(read_wav_mono(clip_path(lang), rate_hz).astype("<i2").tobytes())
    return b"".join(parts)


class OfflineNotice:
    """Subscriber: on an "unreachable" or "budget spent" error, queue the offline message.

    Args:
        playback: the speaker's buffer (its earcon lane is used).
        clock: monotonic seconds (the pipeline's clock).
        message: the PCM16 to play (default: :func:`load_offline_message` for ``language``).
        language: "en", "ja" or "" (both), when ``message`` is not given.
        min_interval_s: at most one message per this many seconds.
        loader: loads the message for ``language`` (default :func:`load_offline_message`).

    A clip that cannot be loaded is logged once and the notice stays silent: a missing
    file must not take the daemon down.
    """

    def __init__(
        self,
        playback: EarconLane,
        clock: Callable[[], float],
        *,
        message: bytes | None = None,
        language: str = "",
        min_interval_s: float = MIN_INTERVAL_S,
        loader: Callable[[str], bytes] = load_offline_message,
    ) -> None:
        self._playback = playback
        self._loader = loader
        self._clock = clock
        self._language = language
        self._message = message
        self._min_interval_s = min_interval_s
        self._last_played: float | None = None
        self._load_failed = False
        self.played = 0

    def _clip(self) -> bytes | None:
        if self._message is None and not self._load_failed:
            try:
                self._message = self._loader(self._language)
            except (OSError, ValueError) as exc:
                self._load_failed = True
                log.error("offline message unavailable: %s", exc)
        return self._message

    def __call__(self, event: KioskEvent) -> None:
        if not isinstance(event, ErrorReported) or event.code not in NOTICE_CODES:
            return
        now = self._clock()
        if self._last_played is not None and now - self._last_played < self._min_interval_s:
            return
        clip = self._clip()
        if not clip:
            return
        self._last_played = now
        self.played += 1
        self._playback.write(clip, None)
        log.info("playing the offline message (%s)", event.code)

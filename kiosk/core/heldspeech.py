"""Speech heard while the kiosk shows ERROR, kept to be answered once it can listen again.

The turn machine ignores speech during the ERROR hold (the error is being shown; the link
is down or being retried). A visitor does not know that: they ask anyway. The adapter feeds
the endpointer's events here while in ERROR and, when the hold clears, starts a turn with
:attr:`HeldSpeech.audio` as its pre-roll (and ends it at once if the speech was complete).
Pure: bytes in, bytes out; bounded to ``max_bytes``.
"""

from __future__ import annotations

from kiosk.core.endpointing import EndOfSpeech, EndpointEvent, Onset, Speech


class HeldSpeech:
    """One held utterance: its 16 kHz PCM16 audio from the onset (pre-roll included).

    ``skip_tail``: the failure cut the visitor off mid-sentence; the first utterance heard
    in the hold is the rest of that sentence (the endpointer was reset, so it opens again),
    not a new question: it is not kept.
    """

    def __init__(self, max_bytes: int, *, skip_tail: bool = False) -> None:
        self.max_bytes = max_bytes
        self.audio = bytearray()
        self.complete = False  # the endpointer heard its end
        self.started = False
        self._skip_tail = skip_tail
        self._in_tail = False

    def __bool__(self) -> bool:
        return self.started

    def add(self, event: EndpointEvent) -> None:
        """An endpointer event heard during the hold (a second onset starts over)."""
        if self._skip_tail or self._in_tail:
            self._skip_tail = False
            self._in_tail = isinstance(event, (Onset, Speech))  # until the tail's end
            return
        if isinstance(event, Onset):
            self.clear()
            self.started = True
            self._keep(event.audio)
        elif isinstance(event, Speech) and self.started and not self.complete:
            self._keep(event.audio)
        elif isinstance(event, EndOfSpeech) and self.started:
            if event.no_speech:
                self.clear()
            else:
                self.complete = True

    def clear(self) -> None:
        self.audio = bytearray()
        self.complete = False
        self.started = False

    def _keep(self, pcm: bytes) -> None:
        room = self.max_bytes - len(self.audio)
        if room > 0:
            self.audio += pcm[:room]

"""Per-turn bookkeeping that becomes a :class:`~kiosk.core.events.TurnSummary`.

Pure: the app tells it what happened (with ``now``); it does no I/O. One summary per turn
feeds the journal's turn line, the simulate report and cost accounting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.core.events import Citation, TurnSummary, Usage

UPSTREAM_BYTES_PER_S = 24000 * 2  # PCM16 mono 24 kHz


@dataclass(slots=True)
class TurnRecord:
    turn_id: int
    trigger: str
    started_t_s: float
    user_speech_s: float = 0.0
    upstream_bytes: int = 0
    speech_end_t_s: float | None = None
    first_audio_t_s: float | None = None
    transcript: str = ""
    answer_parts: list[str] = field(default_factory=list)
    answer_chars: int = 0
    citations: list[Citation] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    noise_floor_dbfs: float | None = None
    engine: str = ""

    def add_citations(self, citations: tuple[Citation, ...]) -> None:
        known = {c.chunk_id for c in self.citations}
        for citation in citations:
            # One report may name a source twice: keep each chunk once, in first-seen order.
            if citation.chunk_id not in known:
                known.add(citation.chunk_id)
                self.citations.append(citation)

    def add_transcript(self, text: str, max_chars: int) -> None:
        """What the recogniser heard, at most ``max_chars`` in all (a transcript bomb stops)."""
        if len(self.transcript) < max_chars:
            self.transcript = (self.transcript + " " + text).strip()[:max_chars]

    def add_answer_text(self, text: str, max_chars: int) -> None:
        """A piece of the answer's transcript, at most ``max_chars`` in all."""
        part = text[: max_chars - self.answer_chars]
        if part:
            self.answer_parts.append(part)
            self.answer_chars += len(part)

    def note_answer_audio(self, now: float) -> None:
        if self.first_audio_t_s is None:
            self.first_audio_t_s = now

    def summary(self, now: float, outcome: str) -> TurnSummary:
        latency_ms = None
        if self.first_audio_t_s is not None and self.speech_end_t_s is not None:
            latency_ms = round((self.first_audio_t_s - self.speech_end_t_s) * 1000, 1)
        return TurnSummary(
            turn_id=self.turn_id,
            started_t_s=self.started_t_s,
            ended_t_s=now,
            trigger=self.trigger,
            outcome=outcome,
            user_speech_s=round(self.user_speech_s, 3),
            upstream_audio_s=round(self.upstream_bytes / UPSTREAM_BYTES_PER_S, 3),
            response_latency_ms=latency_ms,
            transcript=self.transcript,
            answer_transcript="".join(self.answer_parts),
            citations=tuple(self.citations),
            usage=self.usage,
            noise_floor_dbfs=None if self.noise_floor_dbfs is None else round(self.noise_floor_dbfs, 1),
            engine=self.engine,
        )

"""kiosk.core.turnrecord: what one turn's summary says (latency, audio sent, citations)."""

from __future__ import annotations

from kiosk.core.events import Citation, TurnSummary, Usage
from kiosk.core.turnrecord import UPSTREAM_BYTES_PER_S, TurnRecord

T0 = 500.0


def test_summary_of_unanswered_turn_has_no_latency() -> None:
    record = TurnRecord(turn_id=3, trigger="button", started_t_s=T0)
    summary = record.summary(T0 + 6.0, "no_answer")
    assert summary == TurnSummary(
        turn_id=3, started_t_s=T0, ended_t_s=T0 + 6.0, trigger="button", outcome="no_answer"
    )
    assert summary.response_latency_ms is None


def test_latency_runs_from_speech_end_to_first_answer_audio() -> None:
    record = TurnRecord(1, "vad", T0)
    record.speech_end_t_s = T0 + 2.0
    record.note_answer_audio(T0 + 2.8504)
    record.note_answer_audio(T0 + 3.5)  # later deltas do not move it
    assert record.summary(T0 + 9, "answered").response_latency_ms == 850.4


def test_answer_audio_without_speech_end_gives_no_latency() -> None:
    record = TurnRecord(1, "vad", T0)
    record.note_answer_audio(T0 + 1)
    assert record.summary(T0 + 2, "answered").response_latency_ms is None


def test_upstream_audio_seconds_come_from_bytes_sent() -> None:
    record = TurnRecord(1, "vad", T0)
    record.upstream_bytes = UPSTREAM_BYTES_PER_S * 3 // 2  # 1.5 s of PCM16 24 kHz mono
    record.user_speech_s = 1.23456
    summary = record.summary(T0 + 5, "answered")
    assert (summary.upstream_audio_s, summary.user_speech_s) == (1.5, 1.235)


def test_answer_transcript_joins_parts_and_usage_is_kept() -> None:
    record = TurnRecord(1, "vad", T0)
    record.transcript = "where is the restroom"
    record.answer_parts += ["The restroom ", "is on the ", "second floor."]
    record.usage = Usage(input_audio=50) + Usage(output_audio=120)
    summary = record.summary(T0 + 5, "answered")
    assert summary.transcript == "where is the restroom"
    assert summary.answer_transcript == "The restroom is on the second floor."
    assert summary.usage == Usage(input_audio=50, output_audio=120)


def test_citations_are_kept_once_each_in_first_seen_order() -> None:
    record = TurnRecord(1, "vad", T0)
    a, b, c = Citation("doc-1#0", "Floors"), Citation("doc-2#3", "Hours"), Citation("doc-9#1")
    record.add_citations((a, b))
    record.add_citations((b, c, a))
    record.add_citations((c, c))  # the model may name one source twice in one report
    assert record.summary(T0 + 1, "answered").citations == (a, b, c)


def test_same_source_twice_in_first_report_is_kept_once() -> None:
    record = TurnRecord(1, "vad", T0)
    a = Citation("doc-1#0", "Floors")
    record.add_citations((a, a))
    assert record.summary(T0 + 1, "answered").citations == (a,)

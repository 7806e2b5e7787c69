"""kiosk.core.realtime: function calls (reported once, middle-tier quirks), the end of an answer
(stale and cancelled responses, late audio), usage split by modality and error codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiosk.core.events import Usage
from kiosk.core.realtime import (
    BENIGN_ERROR_CODES,
    MAX_CODE_CHARS,
    MAX_MESSAGE_CHARS,
    AudioDelta,
    Dialect,
    FunctionCallRequested,
    RateLimitsUpdated,
    ResponseFinished,
    ResponseStarted,
    ServerError,
    ServerEventIgnored,
    parse_usage,
)
from kiosk.testing.validation import validate_client_event
from tests.unit.helpers import feed, only

from .realtime_frames import (
    DIALECTS,
    PCM,
    SEARCH_TOOL,
    USAGE,
    audio_delta,
    call_args_done,
    call_item,
    created,
    done,
    error,
    output_item_done,
    session,
)

# --- function calls and the end of an answer -----------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_function_call_reported_once_though_it_arrives_twice(dialect: Dialect) -> None:
    s = session(dialect, tools=(SEARCH_TOOL,))
    events = feed(
        s, created(), call_args_done(dialect), output_item_done(), done(output=[call_item()])
    )
    calls = [e for e in events if isinstance(e, FunctionCallRequested)]
    assert calls == [FunctionCallRequested("resp_1", "call_1", "search", '{"query":"restroom"}')]
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (1, False)


def test_function_call_seen_only_in_response_done_still_counts_as_tool_round() -> None:
    s = session("ga", tools=(SEARCH_TOOL,))
    feed(s, created())
    finished = only(feed(s, done(output=[call_item()])), ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (1, False)


def test_response_done_with_another_id_is_stale_and_keeps_the_active_response() -> None:
    s = session("ga")
    feed(s, created("resp_1"), audio_delta("ga"))
    stale = only(feed(s, done("resp_other", usage={"output_tokens": 7})), ResponseFinished)
    assert stale.stale and not stale.answer_over and stale.usage.output_total == 7
    assert s.active_response_id == "resp_1"
    assert isinstance(only(feed(s, audio_delta("ga")), AudioDelta), AudioDelta)
    finished = only(feed(s, done("resp_1")), ResponseFinished)
    assert not finished.stale and finished.answer_over and finished.had_audio


def test_response_done_without_any_response_in_progress_is_stale() -> None:
    s = session("ga")
    assert only(feed(s, done("resp_unknown")), ResponseFinished).stale
    feed(s, created("resp_1"), done("resp_1"))
    assert only(feed(s, done("resp_1")), ResponseFinished).stale  # a second done of it


def test_response_done_without_an_id_finishes_the_active_response() -> None:
    s = session("ga")
    feed(s, created("resp_1"))
    finished = only(feed(s, done("")), ResponseFinished)
    assert not finished.stale and finished.response_id == "resp_1"


def test_error_code_and_message_come_out_bounded_on_one_line() -> None:
    s = session("ga")
    huge = "x\n2026-01-01 INFO kiosk: forged\x1b[31m" * 10_000
    err = only(feed(s, {"type": "error", "error": {"code": huge, "message": huge}}), ServerError)
    for text, cap in ((err.code, MAX_CODE_CHARS), (err.message, MAX_MESSAGE_CHARS)):
        assert len(text) <= cap + 20 and "\n" not in text and "\x1b" not in text


def test_function_call_without_active_response_is_ignored() -> None:
    s = session("ga", tools=(SEARCH_TOOL,))
    only(feed(s, call_args_done("ga")), ServerEventIgnored)


def test_output_item_done_of_audio_item_is_quiet() -> None:
    s = session("ga")
    feed(s, created())
    item = {"type": "message", "role": "assistant", "content": []}
    assert (
        feed(s, {"type": "response.output_item.done", "response_id": "resp_1", "item": item}) == []
    )


def test_function_call_event_from_middle_tier_is_ignored_not_run() -> None:
    # A middle tier runs its tools itself; the kiosk must never try to answer one.
    s = session("beta", middle_tier=True)
    feed(s, created())
    events = feed(s, output_item_done(), call_args_done("beta"))
    assert all(isinstance(e, ServerEventIgnored) for e in events) and len(events) == 2
    finished = only(feed(s, audio_delta("beta"), done())[1:], ResponseFinished)
    assert finished.function_calls == 0
    assert finished.answer_over


def test_middle_tier_preamble_with_call_left_in_output_is_a_tool_round() -> None:
    # VoiceRAG hides its calls but its response.done filter can leave one in the output
    # (it pops by reversed index): audio then is not the answer, a tool round follows.
    s = session("beta", middle_tier=True)
    events = feed(s, created(), audio_delta("beta"), done(output=[call_item()]))
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert not any(isinstance(e, FunctionCallRequested) for e in events)
    assert (finished.had_audio, finished.function_calls, finished.answer_over) == (True, 0, False)


@pytest.mark.parametrize(("had_audio", "answer_over"), [(False, False), (True, True)])
def test_middle_tier_response_done_is_answer_only_with_audio(
    had_audio: bool, answer_over: bool
) -> None:
    s = session("beta", middle_tier=True)
    feed(s, created())
    if had_audio:
        feed(s, audio_delta("beta"))
    finished = only(feed(s, done()), ResponseFinished)
    assert (finished.had_audio, finished.answer_over) == (had_audio, answer_over)


def test_direct_response_done_without_audio_is_answer_over() -> None:
    s = session("ga")
    finished = only(feed(s, created(), done())[1:], ResponseFinished)
    assert (finished.had_audio, finished.answer_over) == (False, True)


@pytest.mark.parametrize("middle_tier", [False, True])
def test_cancelled_response_is_not_answer_over(middle_tier: bool) -> None:
    s = session("beta", middle_tier=middle_tier)
    feed(s, created(), audio_delta("beta"))
    frame = done(status="cancelled")
    frame["response"]["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
    finished = only(feed(s, frame), ResponseFinished)
    assert (finished.status, finished.status_detail, finished.answer_over) == (
        "cancelled",
        "client_cancelled",
        False,
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_late_audio_delta_after_response_done_is_ignored(dialect: Dialect) -> None:
    s = session(dialect)
    feed(s, created(), audio_delta(dialect), done())
    assert (
        "no active response" in only(feed(s, audio_delta(dialect)), ServerEventIgnored).event_type
    )


def test_audio_delta_of_another_response_is_ignored() -> None:
    s = session("ga")
    feed(s, created("resp_2"))
    only(feed(s, audio_delta("ga", rid="resp_1")), ServerEventIgnored)
    assert s.answer_item_id is None


# --- usage and errors ----------------------------------------------------------------------------


def test_usage_with_details_is_split_by_modality() -> None:
    assert parse_usage(USAGE) == Usage(
        input_text=100, input_audio=30, input_cached=64, output_text=20, output_audio=180
    )


def test_usage_with_totals_only_counts_as_text() -> None:
    assert parse_usage({"input_tokens": 50, "output_tokens": 70}) == Usage(
        input_text=50, output_text=70
    )


@pytest.mark.parametrize("raw", [None, "lots", [], {"input_tokens": -3, "output_tokens": True}])
def test_usage_of_wrong_shape_counts_zero(raw: Any) -> None:
    assert parse_usage(raw) == Usage()


def test_response_done_carries_usage() -> None:
    s = session("beta")
    finished = only(feed(s, created(), done(usage=USAGE))[1:], ResponseFinished)
    assert finished.usage.output_audio == 180


@pytest.mark.parametrize("code", sorted(BENIGN_ERROR_CODES))
def test_benign_error_codes_are_flagged(code: str) -> None:
    err = only(feed(session("ga"), error(code)), ServerError)
    assert (err.code, err.benign) == (code, True)


def test_other_error_is_not_benign_and_falls_back_to_type() -> None:
    s = session("ga")
    err = only(
        feed(s, error("session_expired", "Your session hit the maximum duration")), ServerError
    )
    assert (err.code, err.benign, err.message) == (
        "session_expired",
        False,
        "Your session hit the maximum duration",
    )
    assert only(feed(s, error(None)), ServerError).code == "invalid_request_error"
    assert only(feed(s, {"type": "error"}), ServerError).code == "unknown"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_session_update_without_transcription_or_language_is_valid(dialect: Dialect) -> None:
    event = session(dialect, transcription_model="").session_update_event()
    assert validate_client_event(event, dialect) == []
    assert "transcription" not in json.dumps(event)
    event = session(dialect, language="").session_update_event()
    assert '"language"' not in json.dumps(event)


def test_rate_limits_skip_entries_that_are_not_objects() -> None:
    frame = {"type": "rate_limits.updated", "rate_limits": ["x", {"name": "tokens", "limit": 9}]}
    assert only(feed(session("ga"), frame), RateLimitsUpdated).limits == (("tokens", 9, 0, 0.0),)


def test_response_done_output_of_messages_only_is_not_a_tool_round() -> None:
    s = session("ga")
    message = {"type": "message", "role": "assistant", "content": []}
    finished = only(feed(s, created(), done(output=[message, "junk"]))[1:], ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (0, True)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_response_with_null_id_still_plays_its_audio(dialect: Dialect) -> None:
    s = session(dialect)
    frame = created()
    frame["response"]["id"] = None
    assert only(feed(s, frame), ResponseStarted).response_id == ""
    assert only(feed(s, audio_delta(dialect, rid="resp_1")), AudioDelta).pcm == PCM
    finished_frame = done()
    finished_frame["response"]["id"] = None
    assert only(feed(s, finished_frame), ResponseFinished).response_id == ""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_two_calls_in_one_response_are_each_reported_once(dialect: Dialect) -> None:
    s = session(dialect, tools=(SEARCH_TOOL,))
    events = feed(
        s,
        created(),
        call_args_done(dialect, call_id="call_1"),
        output_item_done(call_id="call_1"),
        call_args_done(dialect, call_id="call_2"),
        output_item_done(call_id="call_2"),
        done(output=[call_item("call_1"), call_item("call_2")]),
    )
    calls = [e.call_id for e in events if isinstance(e, FunctionCallRequested)]
    assert calls == ["call_1", "call_2"]
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert (finished.function_calls, finished.answer_over) == (2, False)

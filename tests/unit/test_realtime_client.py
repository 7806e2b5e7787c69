"""kiosk.core.realtime, what the session sends: every client event checked against the openai
SDK's types, in both dialects. No sockets: commands queue JSON we drain with ``data_to_send``."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kiosk.core.realtime import (
    Dialect,
    ResponseFinished,
    ResponseStarted,
    ServerEventIgnored,
)
from kiosk.errors import LocalProtocolError
from kiosk.testing.validation import validate_client_event
from tests.unit.helpers import assert_sent, feed, only, sent

from .realtime_frames import (
    DIALECTS,
    PCM,
    SEARCH_TOOL,
    audio_delta,
    created,
    done,
    error,
    session,
)

# --- client events -------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("detection", ["local", "server_vad", "semantic_vad"])
@pytest.mark.parametrize("tools", [(), (SEARCH_TOOL,)], ids=["no_tools", "tools"])
def test_session_update_is_valid_sdk_event(
    dialect: Dialect, detection: str, tools: tuple[Any, ...]
) -> None:
    s = session(
        dialect, turn_detection=detection, tools=tools, language="ja", max_output_tokens=500
    )
    s.configure()
    (event,) = assert_sent(s, "session.update")
    assert validate_client_event(event, dialect) == []
    body = event["session"]
    turn_detection = (
        body["audio"]["input"]["turn_detection"] if dialect == "ga" else body["turn_detection"]
    )
    if detection == "local":
        assert turn_detection is None  # the kiosk commits and asks for the answer itself
    else:
        assert turn_detection["type"] == detection
    assert ("tools" in body) == bool(tools)
    if tools:
        assert body["tools"] == [SEARCH_TOOL]
        assert body["tool_choice"] == "auto"


def test_ga_session_update_puts_audio_settings_under_audio() -> None:
    body = session("ga", voice="marin", max_output_tokens=0).session_update_event()["session"]
    assert body["type"] == "realtime"
    assert body["audio"]["output"]["voice"] == "marin"
    assert body["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert body["max_output_tokens"] == "inf"
    assert "temperature" not in body and "voice" not in body


def test_beta_session_update_uses_flat_beta_keys() -> None:
    body = session("beta", temperature=0.7, max_output_tokens=300).session_update_event()["session"]
    assert body["input_audio_format"] == body["output_audio_format"] == "pcm16"
    assert body["temperature"] == 0.7
    assert body["max_response_output_tokens"] == 300


@pytest.mark.parametrize("detection", ["local", "server_vad"])
def test_middle_tier_session_update_has_no_tools_and_is_valid(detection: str) -> None:
    s = session("beta", middle_tier=True, tools=(SEARCH_TOOL,), turn_detection=detection)
    event = s.session_update_event()
    assert "tools" not in event["session"] and "tool_choice" not in event["session"]
    assert validate_client_event(event, "beta") == []


def test_middle_tier_with_ga_dialect_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="beta"):
        session("ga", middle_tier=True)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="dialect"):
        session("v2")  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_command_queues_valid_sdk_event(dialect: Dialect) -> None:
    s = session(dialect, tools=(SEARCH_TOOL,))
    s.configure()
    s.append_audio(PCM)
    s.commit()
    s.clear_input()
    s.create_response()
    feed(s, created(), audio_delta(dialect))
    assert s.cancel_response()
    assert s.truncate_answer(1234)
    s.send_tool_output("call_1", "[doc-1]: second floor, left")
    events = assert_sent(
        s,
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "response.create",
        "response.cancel",
        "conversation.item.truncate",
        "conversation.item.create",
    )
    for event in events:
        assert validate_client_event(event, dialect) == [], event
    assert base64.b64decode(events[1]["audio"]) == PCM
    assert events[6] == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 1234,
    }
    assert events[7]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "[doc-1]: second floor, left",
    }


def test_append_audio_with_odd_byte_count_is_refused() -> None:
    s = session("ga")
    with pytest.raises(LocalProtocolError, match="even"):
        s.append_audio(b"\x01\x00\x02")
    assert sent(s) == []


def test_append_empty_audio_sends_nothing_and_counts_bytes_sent() -> None:
    s = session("ga")
    s.append_audio(b"")
    s.append_audio(PCM)
    s.append_audio(PCM)
    assert len(sent(s)) == 2
    assert s.audio_sent_bytes == 2 * len(PCM)


def test_cancel_without_active_response_sends_nothing() -> None:
    s = session("ga")
    assert not s.cancel_response()
    feed(s, created(), done())
    assert not s.cancel_response()
    assert sent(s) == []


def test_a_response_cancelled_before_it_began_is_cancelled_as_it_begins() -> None:
    # The visitor went on while response.create was in flight: nothing to cancel yet, but
    # the answer it would bring must be neither generated in full (billed) nor played.
    s = session("ga")
    s.create_response()
    (request,) = assert_sent(s, "response.create")
    assert request["response"]["metadata"] == {"kiosk_request": "1"}
    assert not s.cancel_response()
    assert_sent(s)
    assert only(feed(s, created("resp_old", request=1)), ServerEventIgnored)
    assert_sent(s, "response.cancel")
    assert not s.response_active
    assert only(feed(s, audio_delta("ga", rid="resp_old")), ServerEventIgnored)
    finished = only(feed(s, done("resp_old", status="cancelled")), ResponseFinished)
    assert finished.stale and not finished.answer_over


def test_only_the_dropped_request_is_cancelled_as_it_begins() -> None:
    # A server that never answered the dropped request must not make the kiosk cancel the
    # next turn's answer; one that does not echo metadata gets the old behaviour.
    s = session("ga")
    s.create_response()
    s.cancel_response()  # turn 1 dropped, its request never answered
    s.create_response()
    assert_sent(s, "response.create", "response.create")
    assert isinstance(only(feed(s, created("resp_2", request=2)), ResponseStarted), ResponseStarted)
    assert s.active_response_id == "resp_2"
    assert_sent(s)
    feed(s, done("resp_2"))
    s.create_response()
    assert isinstance(only(feed(s, created("resp_3")), ResponseStarted), ResponseStarted)


def test_a_request_refused_behind_the_one_cancelled_as_it_began_goes_after_it() -> None:
    s = session("ga")
    s.create_response()
    s.cancel_response()
    s.create_response()  # the next turn's, sent: nothing was known to be winding down
    assert_sent(s, "response.create", "response.create")
    feed(s, created("resp_old", request=1))
    assert_sent(s, "response.cancel")
    feed(s, error("conversation_already_has_active_response"))  # the server refused #2
    assert_sent(s)
    feed(s, done("resp_old", status="cancelled"))
    assert_sent(s, "response.create")  # asked again once the old one is over
    feed(s, created("resp_new", request=3))
    assert s.active_response_id == "resp_new"


def test_a_request_is_never_held_behind_a_response_that_may_never_end() -> None:
    # A dead server: the cancelled response never gets its response.done. The next
    # turn's request goes out at once.
    s = session("ga")
    s.create_response()
    feed(s, created("resp_1", request=1))
    assert s.cancel_response()
    s.create_response()
    assert_sent(s, "response.create", "response.cancel", "response.create")


def test_a_refused_request_does_not_hold_up_the_next_one() -> None:
    s = session("ga")
    s.create_response()
    feed(s, error("server_error"))  # the request failed: no response.created will come
    s.create_response()
    assert_sent(s, "response.create", "response.create")


def test_truncate_without_answer_audio_sends_nothing() -> None:
    s = session("beta")
    assert not s.truncate_answer(500)
    assert sent(s) == []


def test_truncate_names_latest_answer_item_and_clamps_negative_ms() -> None:
    s = session("ga")
    feed(s, created("resp_1"), audio_delta("ga", rid="resp_1", item="item_a"), done("resp_1"))
    feed(s, created("resp_2"), audio_delta("ga", rid="resp_2", item="item_b"))
    assert s.answer_item_id == "item_b"
    assert s.truncate_answer(-5)
    (event,) = assert_sent(s, "conversation.item.truncate")
    assert (event["item_id"], event["audio_end_ms"]) == ("item_b", 0)


def test_tool_output_in_middle_tier_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="middle tier"):
        session("beta", middle_tier=True).send_tool_output("call_1", "x")


def test_data_to_send_drains_queue_oldest_first() -> None:
    s = session("ga")
    s.commit()
    s.create_response()
    assert [json.loads(t)["type"] for t in s.data_to_send()] == [
        "input_audio_buffer.commit",
        "response.create",
    ]
    assert s.data_to_send() == []

"""The fake Realtime server, driven by a plain `websockets` client: VoiceRAG's middle tier
(tool calls hidden, grounding by extension) and barge-in (cancel and truncate)."""

from __future__ import annotations

import json

import pytest

from kiosk.testing.fake_realtime import (
    FakeRealtimeServer,
    FakeScript,
)
from kiosk.testing.validation import Dialect

from .fake_realtime_client import (
    AUDIO_DELTA,
    TOOLS,
    assert_all_sent_events_valid,
    client,
    no_pacing,
    types,
)

# -- VoiceRAG middle tier ----------------------------------------------------------------------


async def test_voicerag_turn_hides_tool_calls_and_reports_grounding_by_extension() -> None:
    script = no_pacing(answer_audio_s=0.5)
    async with (
        FakeRealtimeServer("beta", mode="voicerag", script=script) as server,
        client(server, "/realtime") as c,
    ):
        await c.configure("beta")
        await c.speak_and_ask()
        events = []
        for _ in range(3):
            events += await c.until("response.done")
    order = types(events)
    assert order.count("response.created") == 3
    assert order.count("response.done") == 3
    assert not any(t.startswith("response.function_call_arguments") for t in order)
    first_done = order.index("response.done")
    assert "response.audio.delta" not in order[:first_done]
    extension = events[order.index("extension.middle_tier_tool_response")]
    assert set(extension) == {"type", "previous_item_id", "tool_name", "tool_result"}
    assert extension["tool_name"] == "report_grounding"
    assert json.loads(extension["tool_result"]) == {"sources": script.grounding_sources}
    assert order.index("extension.middle_tier_tool_response") < order.index("response.audio.delta")
    assert order.count("response.audio.delta") == 5
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_voicerag_without_grounding_yields_two_responses() -> None:
    script = no_pacing(answer_audio_s=0.2, call_grounding=False)
    async with (
        FakeRealtimeServer("beta", mode="voicerag", script=script) as server,
        client(server, "/realtime") as c,
    ):
        await c.configure("beta")
        await c.speak_and_ask()
        events = await c.until("response.done") + await c.until("response.done")
    assert "extension.middle_tier_tool_response" not in types(events)
    assert types(events).count("response.audio.delta") == 2
    assert events[-1]["response"]["status"] == "completed"


async def test_voicerag_client_declaring_tools_is_a_validation_error() -> None:
    async with FakeRealtimeServer("beta", mode="voicerag") as server, client(server) as c:
        await c.configure("beta", tools=TOOLS)
    assert server.validation_errors == [
        "session.update: voicerag: the client must not declare tools"
    ]
    assert server.connections[0].declared_tools == ["search", "report_grounding"]


def test_voicerag_with_ga_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="beta"):
        FakeRealtimeServer("ga", mode="voicerag")


# -- barge-in: cancel and truncate -------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_cancel_mid_audio_stops_deltas_and_reports_cancelled(dialect: Dialect) -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with FakeRealtimeServer(dialect, script=script) as server, client(server) as c:
        await c.configure(dialect)
        await c.speak_and_ask()
        for _ in range(3):
            await c.until(AUDIO_DELTA[dialect])
        await c.send({"type": "response.cancel"})
        after_cancel = await c.until("response.done")
        late = await c.drain(0.3)
    # Nothing of that answer may follow its response.done.
    assert types(late) == ["rate_limits.updated"]
    done = after_cancel[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "client_cancelled"
    assert done["output"][0]["status"] == "incomplete"
    deltas = [e for e in c.events if e["type"] == AUDIO_DELTA[dialect]]
    assert 3 <= len(deltas) <= 10  # of 30: stopped soon after the cancel (slack for slow CI)
    assert done["usage"]["output_token_details"]["audio_tokens"] == round(len(deltas) * 0.1 * 20)
    assert server.validation_errors == []
    assert_all_sent_events_valid(server)


async def test_cancel_without_active_response_answers_cancel_not_active() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.configure("ga")
        await c.send({"type": "response.cancel"})
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "response_cancel_not_active"


async def test_truncate_is_acknowledged_and_recorded_with_audio_sent() -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with FakeRealtimeServer("beta", script=script) as server, client(server) as c:
        await c.configure("beta")
        await c.speak_and_ask()
        first = (await c.until("response.audio.delta"))[-1]
        await c.until("response.audio.delta")
        await c.send({"type": "response.cancel"})
        await c.until("response.done")
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": first["item_id"],
                "content_index": 0,
                "audio_end_ms": 150,
            }
        )
        truncated = (await c.until("conversation.item.truncated"))[-1]
    sent_ms = 100 * sum(1 for e in c.events if e["type"] == "response.audio.delta")
    assert truncated["audio_end_ms"] == 150
    assert len(server.truncations) == 1
    assert server.truncations[0].item_id == first["item_id"]
    assert server.truncations[0].audio_end_ms == 150
    assert server.truncations[0].audio_ms_sent == sent_ms
    assert server.connections[0].answer_audio_ms == {first["item_id"]: sent_ms}
    assert server.connections[0].input_audio_ms == 1000
    assert server.validation_errors == []


async def test_truncate_past_the_audio_sent_answers_error() -> None:
    async with (
        FakeRealtimeServer("ga", script=no_pacing(answer_audio_s=0.3)) as server,
        client(server) as c,
    ):
        await c.configure("ga")
        await c.speak_and_ask()
        item_id = (await c.until("response.done"))[-1]["response"]["output"][0]["id"]
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 5000,
            }
        )
        error = (await c.until("error"))[-1]
    assert error["error"]["code"] == "invalid_value"
    assert server.truncations[0].audio_ms_sent == 300

"""Hypothesis through the running pipeline: after a real turn, a scripted server answers
with arbitrary frames (garbage, unknown or out-of-order events, bad audio, errors, mixed with
valid answer events). Nothing escapes a task, the kiosk comes back to IDLE, and the next
turn on the same kiosk is answered normally."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kiosk.core.events import State

from .rig import TIMEOUT_FACTOR, PipelineRig, rig_config
from .test_fuzz_realtime import frame_text, server_events

PCM = base64.b64encode(b"\x10\x20" * 2400).decode()


def answer(rid: str, item: str) -> list[str]:
    """A valid GA spoken answer: created, two audio deltas, done."""
    return [
        json.dumps({"type": "response.created", "response": {"id": rid, "status": "in_progress"}}),
        json.dumps(
            {
                "type": "response.output_audio.delta",
                "response_id": rid,
                "item_id": item,
                "delta": PCM,
            }
        ),
        json.dumps(
            {
                "type": "response.output_audio.delta",
                "response_id": rid,
                "item_id": item,
                "delta": PCM,
            }
        ),
        json.dumps(
            {
                "type": "response.done",
                "response": {
                    "id": rid,
                    "status": "completed",
                    "output": [],
                    "usage": {"input_tokens": 5},
                },
            }
        ),
    ]


VALID = [
    *answer("resp_1", "item_1"),
    json.dumps({"type": "error", "error": {"code": "server_error"}}),
]
frames = st.lists(st.one_of(server_events.map(frame_text), st.sampled_from(VALID)), max_size=14)


class ScriptedServer:
    """Answers the first response.create with ``first`` frames, later ones properly."""

    def __init__(self, first: list[str]) -> None:
        self.first = first
        self.responses = 0

    async def handle(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "session.created", "session": {"id": "sess_1"}}))
        try:
            async for message in ws:
                if json.loads(message).get("type") != "response.create":
                    continue
                self.responses += 1
                script = (
                    self.first
                    if self.responses == 1
                    else answer(f"resp_ok{self.responses}", "item_ok")
                )
                for text in script:
                    await ws.send(text)
        except ConnectionClosed:
            pass


async def scenario(first: list[str]) -> tuple[State, str | None, list[dict[str, Any]]]:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    scripted = ScriptedServer(first)
    async with serve(scripted.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        cfg = rig_config(
            f"ws://127.0.0.1:{port}",
            f"[turns]\nanswer_timeout_s = {0.5 * TIMEOUT_FACTOR}\naudio_stall_s = 0.3\n",
        )
        rig = PipelineRig(cfg, scripted)
        try:
            await rig.turn()  # whatever the frames did to this one
            await rig.recover()
            state_after = rig.state
            second = await rig.turn()
        finally:
            await rig.aclose()
    return state_after, second.outcome if second else None, problems


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(first=frames)
@example(  # a call whose response never finishes: the kiosk stayed busy for good
    first=[
        '{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}',
        '{"type": "response.function_call_arguments.done", "name": "search"}',
    ]
)
@example(  # an error after the response began, then its call: the kiosk stayed busy for good
    first=[
        '{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}',
        '{"type": "error", "error": {"code": "server_error"}}',
        '{"type": "response.function_call_arguments.done", "name": "search"}',
    ]
)
def test_arbitrary_answer_frames_leave_the_kiosk_idle_and_able_to_answer(first: list[str]) -> None:
    state_after, second_outcome, problems = asyncio.run(
        asyncio.wait_for(scenario(first), 30.0 * TIMEOUT_FACTOR)
    )
    assert problems == []
    assert state_after is State.IDLE
    assert second_outcome == "answered"

"""A hostile or broken upstream, scripted frame by frame, against the running pipeline.

Real webrtcvad, real websockets on 127.0.0.1 (a scripted ``websockets`` server), accelerated
time (:class:`~.rig.PipelineRig`). Each script answers one ``response.create``; later ones get
a plain spoken answer, so every test also shows the kiosk answering normally afterwards.

Covers issue 12 items 5 (memory and log safety: giant audio deltas, transcript bombs, 300 tool
calls in one response, 200 KB error strings with control characters) and 6 (losing nothing
after a drop: a close right after ``response.done``, a close mid-answer, speech during the
ERROR hold, ``response.done`` with an unknown id). Peak RSS of the real process under the
issue's full-size inputs is measured by ``bench/bench_hostile_server.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kiosk.core.events import EarconRequested, ErrorReported, State, StateChanged, TurnSummary

from .rig import TIMEOUT_FACTOR, VAD_RATE_HZ, PipelineRig, rig_config, speech

DELTA_PCM = b"\x10\x20" * 2400  # 100 ms at 24 kHz
CLOSE = "<close the socket>"
MAX_LOG_CHARS = 2000  # no kiosk log line from server text may be longer than this
CONTROL_CHARS = [chr(c) for c in range(32) if c != 9] + ["\x7f", "\x9b", "\u2028", "\u202e"]
FORGED = "\n2026-12-02 12:00:00 INFO kiosk.app: visitor authenticated as admin\x1b[2K\r"


def ev(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


def created(rid: str) -> str:
    return ev("response.created", response={"id": rid, "status": "in_progress"})


def delta(rid: str, item: str, pcm: bytes = DELTA_PCM) -> str:
    return ev(
        "response.output_audio.delta",
        response_id=rid,
        item_id=item,
        delta=base64.b64encode(pcm).decode(),
    )


def done(rid: str, output: list[dict[str, Any]] | None = None) -> str:
    response = {"id": rid, "status": "completed", "output": output or [], "usage": {}}
    return ev("response.done", response=response)


def answer(rid: str, item: str = "item_ok", deltas: int = 3) -> list[str]:
    return [created(rid), *(delta(rid, item) for _ in range(deltas)), done(rid)]


class HostileServer:
    """Plays ``scripts[n]`` for the n-th ``response.create`` (over all connections); a plain
    answer after that. ``CLOSE`` in a script closes the socket there."""

    def __init__(self, *scripts: list[str]) -> None:
        self.scripts = list(scripts)
        self.responses = 0
        self.connections = 0
        self.received: list[dict[str, Any]] = []

    def received_types(self) -> list[str]:
        return [str(e.get("type")) for e in self.received]

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            await ws.send(ev("session.created", session={"id": f"sess_{self.connections}"}))
            async for message in ws:
                event = json.loads(message)
                self.received.append(event)
                if event.get("type") != "response.create":
                    continue
                n, self.responses = self.responses, self.responses + 1
                script = self.scripts[n] if n < len(self.scripts) else answer(f"resp_ok{n}")
                for step in script:
                    if step == CLOSE:
                        await ws.close()
                        return
                    await ws.send(step)
        except ConnectionClosed:
            pass


class Scene:
    """A rig against a :class:`HostileServer`, with loop exceptions collected."""

    def __init__(self, rig: PipelineRig, server: HostileServer, problems: list[Any]) -> None:
        self.rig, self.server, self.problems = rig, server, problems

    async def drain_until(self, turns: int, max_frames: int = 20_000) -> list[TurnSummary]:
        """Feed silence (the speaker plays along) until ``turns`` turns have ended."""
        async with asyncio.timeout(30.0 * TIMEOUT_FACTOR):
            for _ in range(max_frames):
                if len(self.rig.summaries()) >= turns and not self.rig.pipeline.busy:
                    break
                await self.rig.silence(self.rig.frame_s)
        return self.rig.summaries()

    def states(self) -> list[State]:
        return [e.new for e in self.rig.events if isinstance(e, StateChanged)]


async def run_scene(server: HostileServer, toml: str, body: Any) -> Scene:
    loop = asyncio.get_running_loop()
    problems: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    async with serve(server.handle, "127.0.0.1", 0, max_size=None) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        rig = PipelineRig(rig_config(f"ws://127.0.0.1:{port}", toml), server)
        scene = Scene(rig, server, problems)
        try:
            await body(scene)
        finally:
            await rig.aclose()
    assert problems == []
    return scene


def assert_log_lines_safe(caplog: pytest.LogCaptureFixture) -> None:
    """Every kiosk log line is one bounded line without control characters."""
    for record in caplog.records:
        if not record.name.startswith("kiosk"):
            continue
        message = record.getMessage()
        assert len(message) <= MAX_LOG_CHARS, (record.name, len(message), message[:200])
        bad = [c for c in CONTROL_CHARS if c in message]
        assert bad == [], (record.name, bad, message[:200])


def played_ms(scene: Scene, item: str) -> int:
    return scene.rig.playback.played_ms(item)


# --- item 5: memory and logs -------------------------------------------------------------------


async def test_giant_audio_deltas_queue_at_most_max_answer_s_and_log_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    one_mb = b"\x01\x02" * (512 * 1024)  # ~21.8 s of audio per delta
    server = HostileServer(
        [
            created("resp_big"),
            *(delta("resp_big", "item_big", one_mb) for _ in range(12)),
            done("resp_big"),
        ]
    )
    peak_ms: list[float] = []

    async def body(scene: Scene) -> None:
        rig = scene.rig
        await rig.feed(speech())
        async with asyncio.timeout(30.0 * TIMEOUT_FACTOR):
            while len(rig.summaries()) < 1:
                peak_ms.append(rig.playback.pending_ms)
                await rig.silence(rig.frame_s)
        await rig.recover()
        second = await rig.turn()
        assert second is not None and second.outcome == "answered"

    await run_scene(server, "[turns]\nmax_answer_s = 10.0\n", body)
    assert max(peak_ms) <= 10_000 + 1  # 12 x 21.8 s were sent
    drops = [r for r in caplog.records if r.getMessage().startswith("answer audio: more than")]
    assert len(drops) == 1, [r.getMessage() for r in drops]
    assert_log_lines_safe(caplog)


async def test_transcript_bombs_are_capped_and_lose_their_control_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    bomb = ("\x1b[2J\x1b[31mwhere is the restroom" + FORGED) * 50_000  # 6 MB frames
    server = HostileServer(
        [
            ev(
                "conversation.item.input_audio_transcription.completed",
                item_id="item_user",
                transcript=bomb,
            ),
            created("resp_1"),
            *(
                ev("response.output_audio_transcript.delta", response_id="resp_1", delta=bomb)
                for _ in range(2)
            ),
            delta("resp_1", "item_1"),
            done("resp_1"),
        ]
    )

    async def body(scene: Scene) -> None:
        first = await scene.rig.turn()
        assert first is not None and first.outcome == "answered"
        assert len(first.transcript) <= 4100 and len(first.answer_transcript) <= 4100
        for text in (first.transcript, first.answer_transcript):
            assert "where is the restroom" in text
            assert [c for c in CONTROL_CHARS if c in text] == []
        assert (await scene.rig.turn()).outcome == "answered"  # type: ignore[union-attr]

    await run_scene(server, "", body)
    assert_log_lines_safe(caplog)


async def test_three_hundred_tool_calls_in_one_response_send_at_most_the_cap_upstream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = [
        {
            "type": "function_call",
            "call_id": f"call_{i}",
            "name": "search",
            "arguments": json.dumps({"query": f"q{i}"}),
        }
        for i in range(300)
    ]
    server = HostileServer(
        [
            created("resp_tools"),
            *(
                ev(
                    "response.function_call_arguments.done",
                    response_id="resp_tools",
                    item_id=f"fc_{c['call_id']}",
                    call_id=c["call_id"],
                    name=c["name"],
                    arguments=c["arguments"],
                )
                for c in calls
            ),
            done("resp_tools", calls),
        ]
    )

    async def body(scene: Scene) -> None:
        first = await scene.rig.turn()
        assert first is not None and first.outcome == "answered"  # answered after the tools

    scene = await run_scene(server, "", body)  # rag.max_tool_calls: 4 by default
    outputs = [
        e
        for e in server.received
        if e.get("type") == "conversation.item.create"
        and e.get("item", {}).get("type") == "function_call_output"
    ]
    assert len(outputs) == 4
    assert scene.server.received_types().count("response.create") == 2
    ignored = [r for r in caplog.records if "tool calls" in r.getMessage()]
    assert len(ignored) == 1
    assert_log_lines_safe(caplog)


async def test_error_strings_of_200_kb_with_control_characters_cannot_forge_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    huge = ("boom" + FORGED) * (200_000 // (len(FORGED) + 4))
    server = HostileServer(
        [
            created("resp_1"),
            ev("error", error={"code": huge, "message": huge, "type": huge}),
        ],
        [
            created("resp_2"),
            ev(
                "response.done",
                response={
                    "id": "resp_2",
                    "status": "failed",
                    "status_details": {"type": "failed", "reason": huge},
                    "output": [],
                },
            ),
        ],
    )

    async def body(scene: Scene) -> None:
        first = await scene.rig.turn()
        assert first is not None and first.outcome == "error"
        await scene.rig.recover()
        second = await scene.rig.turn()
        assert second is not None and second.outcome == "error"
        await scene.rig.recover()
        third = await scene.rig.turn()
        assert third is not None and third.outcome == "answered"

    scene = await run_scene(server, "", body)
    errors = [e for e in scene.rig.events if isinstance(e, ErrorReported)]
    assert len(errors) >= 2
    for error in errors:
        assert len(error.message) <= MAX_LOG_CHARS and len(error.code) <= 200
        assert [c for c in CONTROL_CHARS if c in error.message + error.code] == []
    assert_log_lines_safe(caplog)


# --- item 6: losing nothing after a drop ------------------------------------------------------


async def test_close_right_after_response_done_plays_the_whole_answer_without_error() -> None:
    server = HostileServer([*answer("resp_1", "item_1", deltas=10), CLOSE])

    async def body(scene: Scene) -> None:
        first = await scene.rig.turn()
        assert first is not None and first.outcome == "answered"
        assert played_ms(scene, "item_1") == 1000
        second = await scene.rig.turn()  # the next turn simply reconnects
        assert second is not None and second.outcome == "answered"

    scene = await run_scene(server, "", body)
    assert State.ERROR not in scene.states()
    assert not any(isinstance(e, ErrorReported) for e in scene.rig.events)
    assert EarconRequested("error") not in scene.rig.events
    assert server.connections == 2


async def test_close_mid_answer_plays_what_arrived_then_reports_the_error() -> None:
    server = HostileServer(
        [created("resp_1"), *(delta("resp_1", "item_1") for _ in range(5)), CLOSE]
    )

    async def body(scene: Scene) -> None:
        first = await scene.rig.turn()
        assert first is not None and first.outcome == "error"
        assert played_ms(scene, "item_1") == 500  # all that arrived, nothing flushed
        await scene.rig.recover()
        second = await scene.rig.turn()
        assert second is not None and second.outcome == "answered"

    scene = await run_scene(server, "", body)
    assert any(
        isinstance(e, ErrorReported) and e.code == "connection_lost" for e in scene.rig.events
    )


async def test_speech_during_the_error_hold_is_kept_and_answered_after_it() -> None:
    server = HostileServer([created("resp_1"), ev("error", error={"code": "server_error"})])
    question = speech()

    async def body(scene: Scene) -> None:
        rig = scene.rig
        first = await rig.turn()
        assert first is not None and first.outcome == "error"
        assert rig.state is State.ERROR
        await rig.feed(question)  # spoken while the kiosk still shows the error
        assert rig.state is State.ERROR  # the hold is 6 s; the question took 3 s
        summaries = await scene.drain_until(2)
        assert len(summaries) == 2
        second = summaries[1]
        assert second.outcome == "answered"
        # The whole question went upstream, pre-roll included (not just a tail of it).
        assert second.upstream_audio_s >= 0.8 * len(question) / VAD_RATE_HZ

    scene = await run_scene(server, "[turns]\nerror_hold_s = 6.0\n", body)
    commits = scene.server.received_types().count("input_audio_buffer.commit")
    assert commits == 2


async def test_response_done_with_an_unknown_id_does_not_end_the_turn() -> None:
    server = HostileServer(
        [
            created("resp_1"),
            done("resp_bogus"),  # before any audio: would end the turn as "no audio"
            delta("resp_1", "item_1"),
            delta("resp_1", "item_1"),
            done("resp_other"),  # mid-answer: would cut the rest of it
            delta("resp_1", "item_1"),
            delta("resp_1", "item_1"),
            done("resp_1"),
        ]
    )

    async def body(scene: Scene) -> None:
        first = await scene.rig.turn()
        assert first is not None and first.outcome == "answered"
        assert played_ms(scene, "item_1") == 400

    await run_scene(server, "", body)

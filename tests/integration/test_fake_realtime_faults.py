"""The fake Realtime server, driven by a plain `websockets` client: the handshake (credentials,
refused handshakes), the fault hooks (errors, silence, dropped connections, garbage frames),
its helpers and running it as a program."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from kiosk.testing.fake_realtime import (
    FakeRealtimeServer,
    FakeScript,
    chunk_ids_from_search_output,
    speech_like_pcm16,
)

from .fake_realtime_client import (
    SEARCH_OUTPUT,
    TIMEOUT_S,
    Client,
    append,
    client,
    no_pacing,
    session_update,
    types,
)

# -- handshake: auth and faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "headers"),
    [
        (("api-key", "k1"), {}),
        (("api-key", "k1"), {"api-key": "wrong"}),
        (("bearer", "k1"), {"api-key": "k1"}),
        (("bearer", "k1"), {"Authorization": "Bearer wrong"}),
    ],
)
async def test_missing_or_wrong_credential_is_rejected_with_401(
    expected: Any, headers: dict[str, str]
) -> None:
    async with FakeRealtimeServer("ga", expected_auth=expected) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with client(server, additional_headers=headers):
                pass
    assert caught.value.response.status_code == 401
    assert [r.status for r in server.rejections] == [401]
    assert server.connections == []


@pytest.mark.parametrize(
    ("expected", "headers"),
    [(("api-key", "k1"), {"api-key": "k1"}), (("bearer", "k1"), {"Authorization": "Bearer k1"})],
)
async def test_right_credential_is_accepted(expected: Any, headers: dict[str, str]) -> None:
    async with (
        FakeRealtimeServer("ga", expected_auth=expected) as server,
        client(server, additional_headers=headers) as c,
    ):
        await c.until("session.created")
    assert server.rejections == []
    assert len(server.connections) == 1


async def test_fail_handshakes_refuses_next_n_with_status_and_retry_after() -> None:
    async with FakeRealtimeServer("ga") as server:
        server.fail_handshakes(429, times=2, retry_after_s=1.5)
        for _ in range(2):
            with pytest.raises(InvalidStatus) as caught:
                async with client(server):
                    pass
            assert caught.value.response.status_code == 429
            assert caught.value.response.headers["Retry-After"] == "2"
        async with client(server) as c:
            await c.until("session.created")
    assert [r.status for r in server.rejections] == [429, 429]
    assert len(server.connections) == 1


async def test_fail_handshakes_500_without_retry_after_sends_no_header() -> None:
    async with FakeRealtimeServer("beta") as server:
        server.fail_handshakes(500)
        with pytest.raises(InvalidStatus) as caught:
            async with client(server):
                pass
    assert caught.value.response.status_code == 500
    assert "Retry-After" not in caught.value.response.headers


# -- fault hooks in the conversation ---------------------------------------------------------


async def test_error_after_commit_sends_that_code_and_never_answers() -> None:
    script = no_pacing(error_after_commit="server_error")
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga")
        await c.speak_and_ask()
        events = await c.until("error")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(c.ws.recv(), 0.3)
    assert "input_audio_buffer.committed" in types(events)
    assert events[-1]["error"]["code"] == "server_error"
    assert "response.created" not in types(c.events)
    assert server.validation_errors == []


async def test_silent_script_sends_nothing_after_session_created() -> None:
    async with (
        FakeRealtimeServer("beta", script=no_pacing(silent=True)) as server,
        client(server) as c,
    ):
        await c.until("session.created")
        await c.send(session_update("beta"))
        await c.speak_and_ask()
        await server.wait_until(lambda: len(server.connections[0].received) == 4, TIMEOUT_S)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(c.ws.recv(), 0.3)
    assert server.connections[0].sent_types() == ["session.created"]


async def test_drop_next_after_events_aborts_without_close_frame() -> None:
    async with FakeRealtimeServer("ga") as server, client(server) as c:
        await c.configure("ga")
        server.drop_next(after_events=2)
        await c.send(append(speech_like_pcm16(0.2)))
        await c.send({"type": "input_audio_buffer.commit"})
        with pytest.raises(ConnectionClosedError) as caught:
            await c.until("never")
    assert caught.value.rcvd is None  # abrupt: no close frame (1006)
    assert "input_audio_buffer.committed" not in types(c.events)
    assert server.connections[0].received_types()[-1] == "input_audio_buffer.commit"


async def test_drop_next_mid_audio_aborts_halfway_through_the_answer() -> None:
    async with (
        FakeRealtimeServer("beta", script=no_pacing(answer_audio_s=1.0)) as server,
        client(server) as c,
    ):
        await c.configure("beta")
        server.drop_next(mid_audio=True)
        await c.speak_and_ask()
        with pytest.raises(ConnectionClosedError):
            await c.until("response.done")
    assert types(c.events).count("response.audio.delta") == 5


async def test_drop_next_before_response_done_aborts_after_the_whole_audio() -> None:
    async with (
        FakeRealtimeServer("ga", script=no_pacing(answer_audio_s=0.5)) as server,
        client(server) as c,
    ):
        await c.configure("ga")
        server.drop_next(before_response_done=True)
        await c.speak_and_ask()
        with pytest.raises(ConnectionClosedError) as caught:
            await c.until("response.done")
    assert caught.value.rcvd is None
    assert types(c.events).count("response.output_audio.delta") == 5
    assert "response.output_item.done" in types(c.events)


async def test_drop_next_needs_exactly_one_point() -> None:
    server = FakeRealtimeServer("ga")
    with pytest.raises(ValueError):
        server.drop_next()
    with pytest.raises(ValueError):
        server.drop_next(after_events=1, mid_audio=True)
    with pytest.raises(ValueError):
        server.drop_next(mid_audio=True, before_response_done=True)


async def test_drop_upstream_goes_silent_then_closes_normally_on_next_client_event() -> None:
    script = FakeScript(answer_audio_s=3.0, realtime_pacing=True)
    async with (
        FakeRealtimeServer("beta", mode="voicerag", script=script) as server,
        client(server, "/realtime") as c,
    ):
        await c.configure("beta")
        await c.speak_and_ask()
        await c.until("response.audio.delta")
        server.drop_upstream()
        sent_before = len(server.connections[0].sent)
        await c.drain(0.3)
        sent_after = len(server.connections[0].sent)
        await c.send(append(speech_like_pcm16(0.1)))
        with pytest.raises(ConnectionClosed) as caught:
            await c.until("never")
    assert sent_after == sent_before
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1000


@pytest.mark.parametrize("garbage", ["non_json", "unknown_type", "bad_base64"])
async def test_send_garbage_sends_one_bad_frame_before_the_audio(garbage: Any) -> None:
    script = no_pacing(answer_audio_s=0.3, send_garbage=garbage)
    async with FakeRealtimeServer("ga", script=script) as server, client(server) as c:
        await c.configure("ga")
        await c.speak_and_ask()
        frames: list[str] = []
        while True:
            frame = await asyncio.wait_for(c.ws.recv(), TIMEOUT_S)
            assert isinstance(frame, str)
            frames.append(frame)
            if '"response.done"' in frame:
                break
    bad = []
    for frame in frames:
        try:
            event = json.loads(frame)
        except ValueError:
            bad.append("non_json")
            continue
        if event["type"] == "fake.unknown_event":
            bad.append("unknown_type")
        elif event["type"] == "response.output_audio.delta":
            try:
                base64.b64decode(event["delta"], validate=True)
            except ValueError:
                bad.append("bad_base64")
    assert bad == [garbage]


# -- helpers and manual runs -------------------------------------------------------------------


def test_chunk_ids_are_parsed_from_voicerag_style_search_output() -> None:
    assert chunk_ids_from_search_output(SEARCH_OUTPUT + "[doc_a_0]: again\n-----\n") == [
        "doc_a_0",
        "doc_b_3",
    ]
    assert chunk_ids_from_search_output("no results") == []


def test_speech_like_audio_is_speech_to_webrtcvad() -> None:
    webrtcvad = pytest.importorskip("webrtcvad")
    import numpy as np

    pcm24 = np.frombuffer(speech_like_pcm16(1.0), dtype="<i2")
    pcm8k = pcm24[::3].astype("<i2").tobytes()  # 24 kHz -> 8 kHz: enough for this check
    frames = [pcm8k[i : i + 160 * 2] for i in range(0, len(pcm8k) - 319, 320)]
    vad = webrtcvad.Vad(3)
    speech = sum(vad.is_speech(frame, 8000) for frame in frames)
    assert speech >= 0.9 * len(frames)


def test_module_runs_as_a_program_and_prints_its_url() -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiosk.testing.fake_realtime",
            "--port",
            "0",
            "--dialect",
            "beta",
            "--mode",
            "voicerag",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
        finally:
            process.terminate()
            process.wait(timeout=TIMEOUT_S)
    assert line.startswith("fake realtime server (beta, voicerag) listening on ws://127.0.0.1:")


async def test_closing_server_closes_clients() -> None:
    async with FakeRealtimeServer("ga") as server:
        ws_client = await connect(server.url, open_timeout=TIMEOUT_S)
        c = Client(ws_client)
        await c.until("session.created")
    with pytest.raises(ConnectionClosed):
        await c.until("never")

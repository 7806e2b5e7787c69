"""The websocket's life: idle close, session rollover between turns, and keepalive pings
that notice a dead link (Wi-Fi gone, no FIN, no RST) in seconds.

A real TCP proxy on 127.0.0.1 sits between the kiosk and the fake server; ``blackhole()``
makes it swallow bytes in both directions without closing anything, which is what a link
looks like when the access point disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from kiosk.core.events import ConnectionChanged, State
from kiosk.errors import UpstreamUnavailable
from kiosk.net.connection import CLOSE_TIMEOUT_S, MAX_FRAME_BYTES, WebsocketLink
from kiosk.net.endpoints import realtime_endpoint
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .rig import TIMEOUT_FACTOR, PipelineRig, rig_config, speech


def script(**overrides: object) -> FakeScript:
    base: dict[str, object] = dict(
        realtime_pacing=False, call_search=False, call_grounding=False, answer_audio_s=0.6
    )
    base.update(overrides)
    return FakeScript(**base)  # type: ignore[arg-type]


def closes(rig: PipelineRig) -> list[str]:
    return [e.detail for e in rig.events if isinstance(e, ConnectionChanged) and not e.connected]


async def test_idle_link_is_closed_after_idle_close_s_and_next_turn_reconnects() -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = PipelineRig(rig_config(server.url, "[turns]\nidle_close_s = 20.0\n"), server)
        try:
            assert (await rig.turn()).outcome == "answered"  # type: ignore[union-attr]
            await rig.silence(10.0)
            assert closes(rig) == []
            await rig.silence(11.0)
            assert closes(rig) == ["idle"]
            assert (await rig.turn()).outcome == "answered"  # type: ignore[union-attr]
            assert len(rig.connect_times) == 2
        finally:
            await rig.aclose()


async def test_session_rolls_over_between_turns_never_mid_answer() -> None:
    async with FakeRealtimeServer("ga", script=script(answer_audio_s=3.0)) as server:
        cfg = rig_config(
            server.url, "[connection]\nsession_max_s = 30.0\n[turns]\nidle_close_s = 600.0\n"
        )
        rig = PipelineRig(cfg, server)
        try:
            for _ in range(8):
                summary = await rig.turn()
                assert summary is not None and summary.outcome == "answered"
                await rig.silence(4.0)
        finally:
            await rig.aclose()
    rollovers = [
        e.t_s
        for e in rig.events
        if isinstance(e, ConnectionChanged) and e.detail == "session rollover"
    ]
    assert len(rollovers) >= 2
    # Each rollover before the last connection was followed by exactly one reconnect, and
    # nothing else connected (a rollover after the last turn has no turn to reconnect for).
    # By time, not by turn: a rollover may fall in the silence before a turn's speech, and
    # how much real time THINKING takes (more on a loaded machine) moves it there.
    last_connect = rig.connect_times[-1]
    assert len(rig.connect_times) == 1 + sum(t <= last_connect for t in rollovers)
    # Each answer was spoken whole on one connection: none of them was cut by a rollover.
    for conn in server.connections:
        sent = conn.sent_types()
        assert sent.count("response.created") == sent.count("response.done")
    assert server.validation_errors == []


class BlackholeProxy:
    """TCP proxy 127.0.0.1:0 -> target; ``blackhole()`` silently drops all traffic."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.dropping = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> BlackholeProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def blackhole(self) -> None:
        self.dropping = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if not self.dropping:
                        dst.write(data)
                        await dst.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_dead_link_mid_answer_is_noticed_by_keepalive_within_seconds() -> None:
    async with FakeRealtimeServer(
        "ga", script=script(answer_audio_s=30.0, realtime_pacing=True)
    ) as server:
        host, port = server.url.removeprefix("ws://").split(":")
        async with BlackholeProxy(host, int(port)) as proxy:
            cfg = rig_config(
                f"ws://127.0.0.1:{proxy.port}",
                "[connection]\nping_interval_s = 1.0\nping_timeout_s = 1.0\n"
                "[turns]\naudio_stall_s = 60.0\nmax_answer_s = 120.0\n",
            )
            rig = PipelineRig(cfg, server)
            try:
                await rig.feed(speech())
                async with asyncio.timeout(20.0 * TIMEOUT_FACTOR):
                    while rig.state is not State.SPEAKING:
                        await rig.silence(0.02)
                proxy.blackhole()
                cut_at = time.monotonic()
                async with asyncio.timeout(15.0 * TIMEOUT_FACTOR):
                    while not any(d.startswith("lost") for d in closes(rig)):
                        await asyncio.sleep(0.02)
                        rig.pipeline.tick()
                noticed_s = time.monotonic() - cut_at
                # ping interval + ping timeout + close timeout, plus slack for a loaded CI box
                assert noticed_s < 1.0 + 1.0 + CLOSE_TIMEOUT_S + 1.0 * TIMEOUT_FACTOR, noticed_s
                # What arrived before the cut still plays (issue 12 item 6), then the turn
                # ends as an error.
                assert rig.state is State.SPEAKING
                await rig.settle()
                (summary,) = rig.summaries()
                assert summary.outcome == "error"
            finally:
                await rig.aclose()


async def test_huge_server_frame_closes_the_link_cleanly_instead_of_eating_memory() -> None:
    async def flood(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created","session":{"id":"s"}}')
        await ws.send('{"type":"error","error":{"message":"' + "x" * (MAX_FRAME_BYTES + 1) + '"}}')
        await ws.wait_closed()

    async with serve(flood, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        link = await WebsocketLink.open(
            realtime_endpoint(rig_config(f"ws://127.0.0.1:{port}")), timeout_s=5.0
        )
        async with asyncio.timeout(10.0 * TIMEOUT_FACTOR):
            first = await link.recv()
            second = await link.recv()
        await link.close()
    assert first is not None and "session.created" in first
    assert second is None  # closed (1009 message too big), not an exception, not 9 MB in memory
    assert link.close_reason.startswith("closed")


@pytest.mark.parametrize(
    ("header", "value", "expected_s"),
    [
        ("Retry-After", "20", 20.0),
        ("retry-after-ms", "1500", 1.5),
        ("Retry-After", "HTTP-DATE+30", 30.0),
        ("Retry-After", "soon", None),
    ],
)
async def test_refused_handshake_carries_the_retry_hint_in_any_documented_form(
    header: str, value: str, expected_s: float | None
) -> None:
    if value.startswith("HTTP-DATE+"):
        value = email.utils.formatdate(
            time.time() + float(value.removeprefix("HTTP-DATE+")), usegmt=True
        )

    def refuse(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(429, "slow down\n")
        response.headers[header] = value
        return response

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(UpstreamUnavailable) as refused:
            await WebsocketLink.open(
                realtime_endpoint(rig_config(f"ws://127.0.0.1:{port}")), timeout_s=5.0
            )
    assert "429" in str(refused.value)
    if expected_s is None:
        assert refused.value.retry_after_s is None
    else:
        assert refused.value.retry_after_s == pytest.approx(expected_s, abs=1.0)

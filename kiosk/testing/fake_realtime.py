"""A fake OpenAI/Azure Realtime API server on 127.0.0.1, for tests and manual runs.

Owns: one local websocket server (``websockets`` asyncio API) that speaks either dialect
(``"ga"`` or ``"beta"``) well enough for a kiosk client to run whole turns against it:
session.created/updated, audio buffer append/commit/clear, optional server-VAD emulation,
a scripted ``search`` (+ ``report_grounding``) tool round, a spoken answer of speech-like
PCM16 24 kHz audio paced in real time, ``response.cancel`` and ``conversation.item.truncate``.
In ``mode="voicerag"`` it plays Azure-Samples' VoiceRAG middle tier instead (tools run
"server-side", function-call events hidden, ``extension.middle_tier_tool_response``).

It is also a checker: every client event is validated strictly against the openai SDK's
types (:mod:`kiosk.testing.validation`); each failure lands in ``server.validation_errors``
and is answered with an ``error`` event, so a test ends with
``assert server.validation_errors == []``. Everything it sends is itself a valid server
event of its dialect (apart from the VoiceRAG extension event and deliberate garbage).

Fault hooks for reliability tests (all one-line to arm):

- ``server.fail_handshakes(status, times=N, retry_after_s=...)``: the next N handshakes get
  that HTTP status (401/403/429/500...), with ``Retry-After`` when given.
- ``server.drop_next(after_events=N)`` / ``(mid_audio=True)`` / ``(before_response_done=True)``:
  abort the TCP connection (no close frame: the client sees 1006) after N more client
  events, halfway through the next spoken answer, or after its audio but before its
  ``response.done``.
- ``server.drop_upstream()``: VoiceRAG with a dead upstream: open connections go silent and
  close normally (1000) at the client's next event.
- ``script.error_after_commit = "server_error"``: after a commit, send an ``error`` with that
  code and never answer that turn.
- ``script.silent = True``: after ``session.created``, read and record but never send.
- ``script.send_garbage = "non_json" | "unknown_type" | "bad_base64"``: with each spoken
  answer, send a non-JSON frame / an event of unknown type before the first audio delta,
  or make the first audio delta's base64 invalid.

``server.script`` is read at every step, so a test may change it between turns.

This module owns the socket, the handshake (auth, refusals), the connection records and
the connection-level hooks; one connection's conversation is
:mod:`kiosk.testing.fake_conversation` (its responses :mod:`kiosk.testing.fake_responses`,
session shapes :mod:`kiosk.testing.fake_session`, usage :mod:`kiosk.testing.fake_usage`),
the script and record types :mod:`kiosk.testing.fake_script`. Does not own: the client side (``kiosk/core/realtime.py``,
``kiosk/net``), or a model of real API timing beyond real-time audio pacing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal
from urllib.parse import parse_qsl

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from kiosk.errors import KioskError
from kiosk.testing.fake_conversation import DropPoint, FakeConversation, Mode
from kiosk.testing.fake_script import (
    ConnectionRecord,
    FakeScript,
    Garbage,
    RejectedHandshake,
    Truncation,
    chunk_ids_from_search_output,
    speech_like_pcm16,
)
from kiosk.testing.validation import Dialect

__all__ = [
    "Auth",
    "ConnectionRecord",
    "Dialect",
    "FakeRealtimeServer",
    "FakeScript",
    "Garbage",
    "Mode",
    "RejectedHandshake",
    "Truncation",
    "chunk_ids_from_search_output",
    "main",
    "serve_forever",
    "speech_like_pcm16",
]

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 10.0

Auth = tuple[Literal["bearer", "api-key"], str]


class TestExtraMissing(KioskError):
    """The fake server needs the openai SDK (its event checker), which only the test extra has."""


def require_test_extra() -> None:
    """Refuse in one line, before listening, when the openai SDK is not installed."""
    if importlib.util.find_spec("openai") is None:
        raise TestExtraMissing(
            "the fake Realtime server is a test tool and checks every event with the openai "
            "SDK, which only the test extra installs: pip install 'kiosk[test]' (or use "
            'realtime.provider = "local" for real answers without a key)'
        )


class FakeRealtimeServer:
    """Async context manager serving the fake Realtime API on ``host``, port 0 by default.

    Args:
        dialect: ``"ga"`` or ``"beta"``.
        mode: ``"direct"`` (an OpenAI/Azure endpoint; the client runs tools) or
            ``"voicerag"`` (a VoiceRAG middle tier; beta only; tools run "server-side").
        expected_auth: ``None`` (accept all), ``("bearer", key)`` or ``("api-key", key)``;
            a missing or wrong credential gets HTTP 401.
        script: what the fake model says; see :class:`FakeScript`.

    Use ``server.url`` (``ws://127.0.0.1:PORT``) once entered; clients append their own
    path and query, which land in ``server.connections[i].path`` / ``.query``.
    """

    def __init__(
        self,
        dialect: Dialect = "ga",
        *,
        mode: Mode = "direct",
        expected_auth: Auth | None = None,
        script: FakeScript | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        require_test_extra()
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
        if mode not in ("direct", "voicerag"):
            raise ValueError(f"mode must be 'direct' or 'voicerag', not {mode!r}")
        if mode == "voicerag" and dialect != "beta":
            raise ValueError("a VoiceRAG middle tier speaks the beta dialect only")
        self.dialect: Dialect = dialect
        self.mode: Mode = mode
        self.expected_auth = expected_auth
        self.script = script if script is not None else FakeScript()
        self.connections: list[ConnectionRecord] = []
        self.rejections: list[RejectedHandshake] = []
        self.validation_errors: list[str] = []
        self.truncations: list[Truncation] = []
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._handshake_faults: list[tuple[int, float | None]] = []
        self._pending: dict[ServerConnection, ConnectionRecord] = {}
        self._drop_after_events: int | None = None
        self._drop_point: DropPoint | None = None
        self._live: set[FakeConversation] = set()
        self._changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> FakeRealtimeServer:
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._process_request,
            max_size=16 * 2**20,
        )
        log.info("fake realtime server (%s, %s) at %s", self.dialect, self.mode, self.url)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            # Bounded: `kiosk fake-server` once hung on Ctrl-C under load waiting here for a
            # connection handler; a test server must always exit.
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._server.wait_closed()
            except TimeoutError:
                log.warning("fake realtime server: connections still open after %.0f s; exiting anyway", CLOSE_TIMEOUT_S)
            self._server = None

    @property
    def url(self) -> str:
        """``ws://HOST:PORT`` of the listening socket (valid once entered)."""
        if self._server is None:
            raise RuntimeError("FakeRealtimeServer is not running: use `async with`")
        sockname = next(iter(self._server.sockets)).getsockname()
        return f"ws://{sockname[0]}:{sockname[1]}"

    # -- fault hooks -----------------------------------------------------------------

    def fail_handshakes(
        self, status: int, *, times: int = 1, retry_after_s: float | None = None
    ) -> None:
        """Refuse the next ``times`` handshakes with HTTP ``status`` (+ ``Retry-After``)."""
        self._handshake_faults.extend([(status, retry_after_s)] * times)

    def drop_next(
        self,
        *,
        after_events: int | None = None,
        mid_audio: bool = False,
        before_response_done: bool = False,
    ) -> None:
        """Abort the TCP connection (no close frame: the client sees 1006) once, at one point.

        Args:
            after_events: right after the server has received this many more client
                events (on any connection), before acting on the last one.
            mid_audio: halfway through the next spoken answer's audio deltas.
            before_response_done: after the next spoken answer's audio and its ``.done``
                events, just before its ``response.done`` (VoiceRAG's known crash point).
        """
        points = (after_events is not None) + mid_audio + before_response_done
        if points != 1:
            raise ValueError(
                "drop_next takes exactly one of after_events=N, mid_audio=True, "
                "before_response_done=True"
            )
        if after_events is not None and after_events < 1:
            raise ValueError("after_events must be >= 1")
        self._drop_after_events = after_events
        if mid_audio:
            self._drop_point = "mid_audio"
        elif before_response_done:
            self._drop_point = "before_response_done"
        else:
            self._drop_point = None

    def drop_upstream(self) -> None:
        """Play a VoiceRAG middle tier whose upstream just dropped, on every open connection.

        From now on those connections send nothing (an answer in progress just stops); the
        next event the client sends is answered by a normal close (1000). New connections
        are not affected.
        """
        for conversation in self._live:
            conversation.upstream_dropped = True

    # -- waiting (for tests) ----------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is re-checked whenever the server sends,
        receives, connects or disconnects.

        Raises:
            TimeoutError: still false after ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def notify_changed(self) -> None:
        self._changed.set()

    # -- handshake -------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query_text = request.path.partition("?")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        if self._handshake_faults:
            status, retry_after_s = self._handshake_faults.pop(0)
            return self._reject(connection, path, query, headers, status, retry_after_s)
        if not self._auth_ok(headers):
            return self._reject(connection, path, query, headers, 401, None)
        self._pending[connection] = ConnectionRecord(path, query, headers, time.monotonic())
        return None

    def _reject(
        self,
        connection: ServerConnection,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        status: int,
        retry_after_s: float | None,
    ) -> Response:
        self.rejections.append(RejectedHandshake(path, query, headers, status, time.monotonic()))
        self.notify_changed()
        log.debug("= handshake refused with %d", status)
        response = connection.respond(status, f"fake realtime server refused: HTTP {status}\n")
        if retry_after_s is not None:
            response.headers["Retry-After"] = str(math.ceil(retry_after_s))
        return response

    def _auth_ok(self, headers: Mapping[str, str]) -> bool:
        if self.expected_auth is None:
            return True
        scheme, key = self.expected_auth
        if scheme == "bearer":
            return headers.get("authorization") == f"Bearer {key}"
        return headers.get("api-key") == key

    async def _handle(self, connection: ServerConnection) -> None:
        record = self._pending.pop(connection)
        self.connections.append(record)
        self.notify_changed()
        conversation = FakeConversation(self, connection, record)
        self._live.add(conversation)
        try:
            await conversation.run()
        finally:
            self._live.discard(conversation)
            record.closed_at = time.monotonic()
            self.notify_changed()

    # -- hooks the conversations consult ------------------------------------------------------

    def take_drop_after_event(self) -> bool:
        if self._drop_after_events is None:
            return False
        self._drop_after_events -= 1
        if self._drop_after_events > 0:
            return False
        self._drop_after_events = None
        return True

    def take_drop_point(self, point: DropPoint) -> bool:
        if self._drop_point != point:
            return False
        self._drop_point = None
        return True


# -- manual runs -------------------------------------------------------------------------


async def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    dialect: Dialect = "beta",
    mode: Mode = "direct",
    expected_auth: Auth | None = None,
    script: FakeScript | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until cancelled (Ctrl-C).

    Once listening, calls ``on_ready(url)``; by default prints
    ``fake realtime server (DIALECT, MODE) listening on ws://HOST:PORT`` to stdout.

    Raises:
        OSError: the address cannot be bound.
    """
    async with FakeRealtimeServer(
        dialect, mode=mode, expected_auth=expected_auth, script=script, host=host, port=port
    ) as server:
        if on_ready is not None:
            on_ready(server.url)
        else:
            print(f"fake realtime server ({dialect}, {mode}) listening on {server.url}", flush=True)
        await asyncio.Event().wait()


# Exit codes as the daemon's: Ctrl-C is an interrupted command (130), SIGTERM a stop (0).
STOP_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 0}


async def serve_until_signalled(**serve_kwargs: object) -> int:
    """:func:`serve_forever` until SIGINT or SIGTERM; returns the exit code (130 or 0).

    The handlers are installed explicitly, as the daemon's are: a shell without job control
    starts background commands with SIGINT ignored, and Python then never raises
    ``KeyboardInterrupt`` (a server started that way used to ignore Ctrl-C and a test's
    SIGINT). Main thread only (``loop.add_signal_handler``).

    Raises:
        OSError: the address cannot be bound.
    """
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[int] = loop.create_future()

    def stop(code: int) -> None:
        if not stopped.done():
            stopped.set_result(code)

    for sig, code in STOP_SIGNALS.items():
        loop.add_signal_handler(sig, stop, code)
    server = asyncio.ensure_future(serve_forever(**serve_kwargs))  # type: ignore[arg-type]
    try:
        await asyncio.wait({server, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if server.done():
            server.result()  # the bind's OSError
        return stopped.result()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kiosk.testing.fake_realtime --port 8765 --dialect beta --mode voicerag``."""
    parser = argparse.ArgumentParser(
        prog="python -m kiosk.testing.fake_realtime",
        description="Serve a fake Realtime API (GA or beta dialect) for manual kiosk runs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dialect", choices=["ga", "beta"], default="beta")
    parser.add_argument("--mode", choices=["direct", "voicerag"], default="direct")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--api-key", help="require header `api-key: KEY`")
    auth.add_argument("--bearer", help="require header `Authorization: Bearer KEY`")
    parser.add_argument("--answer-audio-s", type=float, default=FakeScript.answer_audio_s)
    parser.add_argument("--no-pacing", action="store_true", help="send answer audio at once")
    parser.add_argument(
        "--response-delay-s",
        type=float,
        default=0.0,
        help="each response starts this late (the real service's think time, ~0.3-0.6 s)",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    args = parser.parse_args(argv)
    if args.mode == "voicerag" and args.dialect != "beta":
        parser.error("--mode voicerag needs --dialect beta (VoiceRAG speaks beta only)")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    expected_auth: Auth | None = None
    if args.api_key:
        expected_auth = ("api-key", args.api_key)
    elif args.bearer:
        expected_auth = ("bearer", args.bearer)
    script = FakeScript(
        answer_audio_s=args.answer_audio_s,
        realtime_pacing=not args.no_pacing,
        response_delay_s=max(0.0, args.response_delay_s),
    )

    try:
        code = asyncio.run(
            serve_until_signalled(
                host=args.host,
                port=args.port,
                dialect=args.dialect,
                mode=args.mode,
                expected_auth=expected_auth,
                script=script,
            )
        )
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
        return 130
    except OSError as exc:
        print(
            f"fake realtime server: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())

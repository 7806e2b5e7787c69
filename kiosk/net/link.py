"""The pipeline's link to its answer engine: one Realtime session at a time, across reconnects.

:class:`UpstreamLink` owns the connection's life: *when* to connect (the cost-aware
:class:`~kiosk.net.policy.ConnectPolicy`: new-connections-per-minute budget, backoff,
holds), opening the transport through the engine's ``connect``, the
:class:`~kiosk.core.realtime.RealtimeSession` of each connection, the sender and receiver
tasks, closing when idle or before the server's session limit, and the audio of the current
utterance until a server has it (resampled from the microphone's 16 kHz to the protocol's
24 kHz, pending while the link comes up, replayed once after a drop).

It does not decide what a server event means for the turn: every parsed event goes to the
pipeline's ``on_event`` (except rate limits, which feed the policy, and frames the session
rejected or ignored, which are logged here once per kind); a lost link is reported to
``on_lost`` (after the link is closed), a connection that could not be made to
``on_failed``. Whether a drop is worth a replay is also the pipeline's call
(:meth:`UpstreamLink.replay_once`).

Everything runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from kiosk.audio.resample import Resampler
from kiosk.config import Config
from kiosk.core.bus import EventStream
from kiosk.core.events import ConnectionChanged, ErrorReported
from kiosk.core.realtime import (
    RateLimitsUpdated,
    RealtimeSession,
    ServerEvent,
    ServerEventIgnored,
    ServerEventRejected,
    SessionOptions,
)
from kiosk.errors import BudgetExhausted, UpstreamRejected, UpstreamUnavailable
from kiosk.net.endpoints import RealtimeEndpoint
from kiosk.net.engine import OFFLINE_MODE_INSTRUCTIONS, Engine, TextLink
from kiosk.net.policy import ConnectPolicy, failure_kind_for_status

log = logging.getLogger(__name__)

# A connection that would come later than this makes the person wait too long: report the
# failure now (the turn goes to ERROR) and retry on the next turn.
MAX_CONNECT_WAIT_S = 1.5
MIC_RATE_HZ = 16_000  # what the pipeline hands in (the VAD's rate)
UPSTREAM_RATE_HZ = 24_000  # PCM16 mono, the Realtime protocol's input format


@dataclass(slots=True)
class _Connection:
    """The transport of the moment and its session (replaced on reconnect)."""

    transport: TextLink
    session: RealtimeSession
    opened_at: float
    outgoing: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class UpstreamLink:
    """The kiosk's upstream: connect on demand, send utterance audio, hand back server events.

    Args:
        cfg: validated settings (``[connection]``, ``realtime.connect_timeout_s``,
            ``realtime.turn_detection``).
        engine: who answers (endpoint + connect function).
        options: the session settings sent on every new connection.
        bus: ``ConnectionChanged`` goes here.
        clock: monotonic seconds.
        rng: randomness for backoff jitter.
        on_event: ``(session, event)`` for every event of the current connection.
        on_lost: ``(reason)`` after the current connection dropped (already closed here).
        on_failed: ``(reason)`` when a connection was needed and could not be made.
        fallback: the engine that answers a turn the main one cannot (``realtime.fallback =
            "local"``): see :meth:`use_fallback`. Its loopback connections bypass the
            connection policy (no budget, no backoff: they cost nothing).
    """

    def __init__(
        self,
        cfg: Config,
        engine: Engine,
        options: SessionOptions,
        bus: EventStream,
        clock: Callable[[], float],
        rng: random.Random,
        *,
        on_event: Callable[[RealtimeSession, ServerEvent], None],
        on_lost: Callable[[str], None],
        on_failed: Callable[[str], None],
        fallback: Engine | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.primary = engine
        self.fallback = fallback
        self.options = options
        self.bus = bus
        self.clock = clock
        self.policy = ConnectPolicy(cfg.connection, rng, clock())
        self.connections_opened = 0
        self._on_event = on_event
        self._on_lost = on_lost
        self._on_failed = on_failed
        # Local endpointing commits and asks for the answer itself; server VAD does both.
        self._commit_creates_response = cfg.realtime.turn_detection == "local"
        self._current: _Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self._reported: set[str] = set()  # log-once keys
        # The current utterance (24 kHz PCM16 chunks), for the replay after a drop; the
        # upsampler (soxr) is made by start_utterance, the first when someone speaks.
        self._upsampler: Resampler | None = None
        self.utterance_bytes = 0  # of 24 kHz audio sent (or pending) this utterance
        self._turn_audio: list[bytes] = []
        self._replayed = False
        self._pending_audio: list[bytes] = []  # waiting for the connection
        self._pending_commit = False
        self._committed = False  # this turn's utterance is complete

    # --- the connection ----------------------------------------------------------------------

    @property
    def session(self) -> RealtimeSession | None:
        """The open connection's session; None while connecting or disconnected."""
        return self._current.session if self._current is not None else None

    @property
    def opened_at(self) -> float | None:
        return self._current.opened_at if self._current is not None else None

    def ensure(self) -> None:
        """Start connecting unless connected, already connecting, or closed for good."""
        if (
            self._closed
            or self._current is not None
            or (self._connecting and not self._connecting.done())
        ):
            return
        self._connecting = asyncio.get_running_loop().create_task(self._open())

    def forget_context(self, keep_turns: int) -> None:
        """Delete all but the last ``keep_turns`` visitor turns from the server's conversation
        (0 = all: a new visitor). Between answers only; nothing to do without a session."""
        current = self._current
        if current is not None and current.session.forget_older_turns(keep_turns):
            self.pump()

    def pump(self) -> None:
        """Move the session's queued client events to the sender task. Call after each
        change to the session."""
        current = self._current
        if current is None:
            return
        for text in current.session.data_to_send():
            current.outgoing.put_nowait(text)

    def close_if_idle(self, now: float, idle_for_s: float) -> None:
        """Between turns: close after ``idle_close_s`` idle, or roll over before the
        server's session limit (a fresh session for the next turn, never mid-answer)."""
        current = self._current
        if current is None:
            return
        if idle_for_s >= self.cfg.turns.idle_close_s:
            self.close("idle", expected=True)
        elif self.policy.should_rollover(now, current.opened_at):
            self.close("session rollover", expected=True)

    def close(self, why: str, *, expected: bool) -> None:
        """Close the current connection (no-op without one); its tasks end in the background."""
        current = self._current
        if current is None:
            return
        self._current = None
        now = self.clock()
        self.policy.record_closed(now, now - current.opened_at, expected=expected)
        current.outgoing.put_nowait(None)
        log.debug("= websocket closed: %s", why)  # EventLogger logs the ConnectionChanged
        self.bus.publish(ConnectionChanged(now, False, why))
        self._spawn(self._finish_close(current))

    async def aclose(self) -> None:
        """Close for good: cancel a connect in flight, close the connection. Idempotent."""
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        current = self._current
        if current is not None:
            self.close("shutdown", expected=True)
            await self._finish_close(current)

    def cancel_answer(self, item_id: str | None, heard_ms: int) -> str:
        """Barge-in: cancel the response in progress and truncate the answer item at what
        the listener heard. Returns the id of the response cancelled ("" if none)."""
        session = self.session
        if session is None:
            return ""
        current = session.active_response_id or ""
        cancelled = session.cancel_response()
        if item_id is not None and session.answer_item_id == item_id:
            session.truncate_answer(heard_ms)
            log.info("barge-in: answer truncated at %d ms", heard_ms)
        self.pump()
        return current if cancelled else ""

    # --- the utterance -----------------------------------------------------------------------

    def start_utterance(self) -> None:
        """A new turn's audio begins: forget the last one's, and its replay. A turn that the
        fallback answered does not make the next one skip the main engine: back to it."""
        self._upsampler = Resampler(MIC_RATE_HZ, UPSTREAM_RATE_HZ)
        self.utterance_bytes = 0
        self._turn_audio = []
        self._replayed = False
        self._committed = False
        self.drop_pending()
        if self.engine is not self.primary:
            self.close("back to the main engine", expected=True)
            self.engine = self.primary

    @property
    def on_fallback(self) -> bool:
        return self.engine is not self.primary

    def use_fallback(self, reason: str, turn_id: int) -> bool:
        """The main engine cannot answer this turn (``reason``): send the utterance so far (and
        its commit, if it was complete) to the fallback engine instead, and report offline
        mode. False when there is none or it is already in use."""
        if self.fallback is None or self.on_fallback or self._closed:
            return False
        log.warning("offline mode: %s; this turn is answered on this device", reason)
        event = ErrorReported(self.clock(), f"offline mode: {reason}", "offline_mode", turn_id)
        # Not re-entrant (the pipeline may be applying the turn's effects): publish next.
        asyncio.get_running_loop().call_soon(self.bus.publish, event)
        self.close("switching to the fallback engine", expected=True)
        self.engine = self.fallback
        self._pending_audio = list(self._turn_audio)
        self._pending_commit = self._committed
        # Called from the failed attempt's own task (via on_failed), so ensure() would see
        # a connect in flight: start the fallback's directly.
        self._connecting = asyncio.get_running_loop().create_task(self._open())
        return True

    @property
    def utterance_s(self) -> float:
        return self.utterance_bytes / (UPSTREAM_RATE_HZ * 2)

    def send_audio(self, pcm16k: bytes) -> None:
        """Utterance audio from the microphone (16 kHz PCM16): on the session, or pending
        until it is up."""
        self._send(self._utterance_upsampler().process(pcm16k))

    def _utterance_upsampler(self) -> Resampler:
        if self._upsampler is None:
            self._upsampler = Resampler(MIC_RATE_HZ, UPSTREAM_RATE_HZ)
        return self._upsampler

    def _send(self, pcm: bytes) -> None:
        if not pcm:
            return
        self.utterance_bytes += len(pcm)
        self._turn_audio.append(pcm)
        session = self.session
        if session is not None:
            session.append_audio(pcm)
            self.pump()
        else:
            self._pending_audio.append(pcm)

    def commit(self) -> None:
        """The utterance is complete: commit it now, or as soon as the link is up."""
        self._send(self._utterance_upsampler().flush())
        self._committed = True
        session = self.session
        if session is not None:
            self._send_commit(session)
        else:
            self._pending_commit = True
            self.ensure()

    def clear_input(self) -> None:
        """Forget the utterance upstream (not a turn after all)."""
        self.drop_pending()
        session = self.session
        if session is not None:
            session.clear_input()
            self.pump()

    def drop_pending(self) -> None:
        self._pending_audio.clear()
        self._pending_commit = False

    def replay_once(self, *, then_commit: bool) -> bool:
        """After a drop: send this utterance again on a new connection, once per turn.

        ``then_commit``: the utterance was complete (commit it after the replay); that needs
        audio and a commit that had gone out. Returns False if there is nothing to replay or
        the replay was used up.
        """
        if self._replayed or (then_commit and (self._pending_commit or not self._turn_audio)):
            return False
        self._replayed = True
        self._pending_audio = list(self._turn_audio)
        self._pending_commit = then_commit
        self.ensure()
        return True

    @property
    def pending_chunks(self) -> int:
        return len(self._pending_audio)

    # --- internals ---------------------------------------------------------------------------

    def _send_commit(self, session: RealtimeSession) -> None:
        if self._commit_creates_response:
            session.commit()
            session.create_response()
        self.pump()

    def _connect_failed(self, reason: str) -> None:
        self.drop_pending()
        self._on_failed(reason)

    async def _open(self) -> None:
        if self.on_fallback:
            await self._connect(self.engine.endpoint)  # loopback: no budget, no backoff
            return
        now = self.clock()
        at = self.policy.next_attempt_at(now)
        if at is None:
            self._connect_failed(self.policy.reason or "not connecting")
            return
        wait_s = at - now
        if wait_s > 0:
            if wait_s > MAX_CONNECT_WAIT_S:
                self._connect_failed(f"upstream unavailable, retrying in {wait_s:.0f} s")
                return
            await asyncio.sleep(wait_s)
        try:
            self.policy.record_attempt(self.clock())
        except BudgetExhausted as exc:
            self._connect_failed(str(exc))
            return
        await self._connect(self.engine.endpoint)

    async def _connect(self, endpoint: RealtimeEndpoint) -> None:
        fallback = self.on_fallback
        try:
            transport = await self.engine.connect(
                endpoint,
                timeout_s=self.cfg.realtime.connect_timeout_s,
                ping_interval_s=self.cfg.connection.ping_interval_s,
                ping_timeout_s=self.cfg.connection.ping_timeout_s,
            )
        except UpstreamRejected as exc:
            if not fallback:
                self.policy.record_failure(self.clock(), "auth")
            self._connect_failed(str(exc))
            return
        except UpstreamUnavailable as exc:
            if not fallback:
                kind = failure_kind_for_status(exc.status) if exc.status is not None else "network"
                self.policy.record_failure(self.clock(), kind, exc.retry_after_s)
            self._connect_failed(str(exc))
            return
        if self._closed or self.on_fallback != fallback:
            await transport.close()
            return
        if not fallback:
            self.policy.record_success(self.clock())
        self.connections_opened += 1
        options = self.options
        if fallback:
            options = dataclasses.replace(options, instructions=OFFLINE_MODE_INSTRUCTIONS)
        session = RealtimeSession(endpoint.dialect, options, middle_tier=endpoint.middle_tier)
        session.configure()
        current = _Connection(transport, session, self.clock())
        self._current = current
        loop = asyncio.get_running_loop()
        current.tasks = [
            loop.create_task(self._sender(current)),
            loop.create_task(self._receiver(current)),
        ]
        self.bus.publish(ConnectionChanged(self.clock(), True, endpoint.redacted))
        log.debug("= connected (%s engine, %s dialect)", self.engine.name, endpoint.dialect)
        for pcm in self._pending_audio:
            session.append_audio(pcm)
        self._pending_audio.clear()
        if self._pending_commit:
            self._pending_commit = False
            self._send_commit(session)
        self.pump()

    async def _sender(self, current: _Connection) -> None:
        while True:
            text = await current.outgoing.get()
            if text is None or not await current.transport.send(text):
                return

    async def _receiver(self, current: _Connection) -> None:
        while True:
            text = await current.transport.recv()
            if text is None:
                break
            current.session.receive_text(text)
            for event in current.session.events_received():
                if self._current is not current:
                    return
                self._dispatch(current.session, event)
            self.pump()  # what the session answers by itself (a cancel, a held response.create)
        if self._current is current:
            reason = current.transport.close_reason or "connection closed"
            self.close(f"lost: {reason}", expected=False)
            self._on_lost(reason)

    def _dispatch(self, session: RealtimeSession, event: ServerEvent) -> None:
        match event:
            case RateLimitsUpdated(limits=limits):
                self.policy.apply_rate_limits(self.clock(), limits)
            case ServerEventRejected(reason=reason):
                self._log_once(
                    "rejected:" + reason.split(":")[0],
                    logging.WARNING,
                    "ignored a bad server frame: %s",
                    reason,
                )
            case ServerEventIgnored(event_type=kind):
                self._log_once("ignored:" + kind, logging.DEBUG, "ignoring server event %s", kind)
            case _:
                self._on_event(session, event)

    def _log_once(self, key: str, level: int, msg: str, *args: object) -> None:
        if key in self._reported:
            return
        if len(self._reported) < 1000:
            self._reported.add(key)
        log.log(level, msg, *args)

    async def _finish_close(self, current: _Connection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(current.tasks[0], timeout=1.0)
        await current.transport.close()
        for task in current.tasks:
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task kept referenced (the loop keeps only weak ones)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

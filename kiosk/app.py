"""Wires the adapters around the pure core: the kiosk's conversation pipeline (asyncio).

:class:`KioskPipeline` owns one kiosk's moving parts: the endpointer, the turn machine, the
Realtime session of the current websocket, the playback buffer and the tool runner. Audio
frames, button gestures and server frames go in; effects come out of the turn machine and
are carried out here. It knows nothing about *which* microphone or speaker is attached: the
daemon (``kiosk.daemon``) feeds it PyAudio frames, ``kiosk.simulate`` feeds it WAV frames.

Threads: everything here runs on the event loop thread. PortAudio / gpiozero callbacks
must hop over with ``loop.call_soon_threadsafe`` before calling in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.resample import Resampler
from kiosk.config import Config
from kiosk.core.bus import EventStream
from kiosk.core.endpointing import EndOfSpeech, Endpointer, Onset, Speech
from kiosk.core.events import (
    Citation,
    CitationsReported,
    ConnectionChanged,
    EarconRequested,
    ErrorReported,
    State,
    StateChanged,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
    TurnSummary,
    UsageReported,
)
from kiosk.core.realtime import (
    AnswerTranscriptDelta,
    AudioDelta,
    FunctionCallRequested,
    MiddleTierToolResponse,
    RateLimitsUpdated,
    RealtimeSession,
    ResponseFinished,
    ServerError,
    ServerEvent,
    ServerEventIgnored,
    ServerEventRejected,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionOptions,
    UserTranscript,
)
from kiosk.core.turnrecord import TurnRecord
from kiosk.core.turns import (
    AnswerAudioReceived,
    AnswerFinished,
    CancelResponse,
    ClearInput,
    CommitInput,
    Effect,
    EndTurn,
    FlushPlayback,
    PlaybackDrained,
    Publish,
    SpeechEnded,
    SpeechStarted,
    StartUpstream,
    StopUpstream,
    ToolRoundFinished,
    TurnInput,
    TurnMachine,
    TurnTimeouts,
    UpstreamFailed,
    WakeWordDetected,
)
from kiosk.errors import BudgetExhausted, InvalidTransition, UpstreamRejected, UpstreamUnavailable
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import RealtimeEndpoint
from kiosk.net.policy import ConnectPolicy, failure_kind_for_status

log = logging.getLogger(__name__)

VAD_RATE_HZ = 16000
UPSTREAM_RATE_HZ = 24000


class ToolRunnerLike(Protocol):
    def schemas(self) -> list[dict[str, Any]]: ...

    async def run_async(self, name: str, arguments: str, timeout_s: float) -> Any: ...


@dataclass(slots=True)
class _Link:
    """The websocket of the moment and its session (replaced on reconnect)."""

    link: WebsocketLink
    session: RealtimeSession
    opened_at: float
    outgoing: asyncio.Queue[str | None]
    tasks: list[asyncio.Task[None]]
    closing: bool = False


def session_options(cfg: Config, tools: ToolRunnerLike | None) -> SessionOptions:
    rt = cfg.realtime
    return SessionOptions(
        instructions=rt.instructions,
        voice=rt.voice,
        model=rt.model,
        language=rt.language,
        temperature=rt.temperature,
        max_output_tokens=rt.max_output_tokens,
        turn_detection=rt.turn_detection,
        transcription_model=rt.transcription_model,
        tools=tuple(tools.schemas()) if tools is not None and rt.provider != "voicerag" else (),
    )


class KioskPipeline:
    """One kiosk conversation pipeline.

    Args:
        cfg: validated settings.
        endpoint: where the Realtime websocket goes (URL, headers, dialect).
        bus: the event stream everything subscribes to.
        playback: the speaker's buffer (the speaker adapter reads it).
        is_speech: voice detector for 16 kHz frames of ``cfg.audio.frame_ms``.
        clock: monotonic seconds (loop.time in the daemon; a skipping clock in simulate).
        tools: the knowledge tools (None: no tools declared).
        rng: randomness for backoff jitter.
    """

    def __init__(
        self,
        cfg: Config,
        endpoint: RealtimeEndpoint,
        bus: EventStream,
        playback: PlaybackBuffer,
        is_speech: Callable[[bytes], bool],
        clock: Callable[[], float],
        *,
        tools: ToolRunnerLike | None = None,
        rng: random.Random | None = None,
        connect: Callable[..., Any] = WebsocketLink.open,
        citations_from_middle_tier: Callable[[str, str], tuple[Citation, ...]] | None = None,
        budget_left: Callable[[], Any] | None = None,
        unheard_ms: Callable[[], float] | None = None,
    ) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.bus = bus
        self.playback = playback
        self.clock = clock
        self.tools = tools
        self._connect = connect
        self._citations_from_middle_tier = citations_from_middle_tier
        self._budget_left = budget_left  # -> kiosk.cost.BudgetStatus (ok, reason)
        # Audio handed to the speaker but not heard yet (device latency): not part of truncate.
        self.unheard_ms = unheard_ms
        now = clock()
        self.machine = TurnMachine(
            TurnTimeouts(
                max_utterance_s=cfg.vad.max_utterance_s,
                answer_timeout_s=cfg.turns.answer_timeout_s,
                audio_stall_s=cfg.turns.audio_stall_s,
                max_answer_s=cfg.turns.max_answer_s,
                error_hold_s=cfg.turns.error_hold_s,
            ),
            wake=cfg.wake.mode,
            now=now,
        )
        self.endpointer = Endpointer(is_speech, cfg.vad, cfg.audio.frame_ms)
        # wake.mode = "wakeword": a detector with process(frame16k, now) -> detection | None.
        self.wake_detector: Any = None
        self.policy = ConnectPolicy(cfg.connection, rng or random.Random(), now)
        self.options = session_options(cfg, tools)
        self.local_endpointing = cfg.realtime.turn_detection == "local"
        self.connections_opened = 0
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._streaming = False
        self._upsampler = Resampler(VAD_RATE_HZ, UPSTREAM_RATE_HZ)
        self._pending_audio: list[bytes] = []  # upstream audio waiting for the connection
        self._pending_commit = False
        self._turn_audio: list[bytes] = []  # this utterance, for one replay after a drop
        self._replayed = False
        self._onset_audio = b""
        self._record: TurnRecord | None = None
        self._answer_item: str | None = None  # answer audio item of the current turn
        self._cancelled: set[str] = (
            set()
        )  # response ids we cancelled: their late deltas are dropped
        self._tool_tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._idle_since = now
        self._reported: set[str] = set()  # log-once keys
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self.summaries: deque[TurnSummary] = deque(maxlen=100)  # recent turns (tests, reports)

    # --- inputs ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    def on_mic_frame(self, frame: bytes) -> None:
        """One 16 kHz PCM16 frame of ``frame_ms`` from the microphone (or a WAV)."""
        self.tick()
        if self.machine.state is State.MUTED:
            return  # mute stops all upstream audio and the VAD itself
        self.endpointer.guarded = not self.cfg.audio.echo_cancelled and not self.playback.is_idle
        if self.wake_detector is not None and self.machine.state in (State.IDLE, State.THINKING, State.SPEAKING):
            if self.wake_detector.process(frame, self.clock()) is not None:
                self.feed(WakeWordDetected())
        far_end = self.playback.recent_output_dbfs if self.endpointer.guarded else None
        for event in self.endpointer.process(frame, far_end):
            if isinstance(event, Onset):
                self._onset_audio = event.audio
                self.feed(SpeechStarted())
                self._onset_audio = b""
            elif isinstance(event, Speech):
                if self._streaming and self.local_endpointing:
                    self._upstream(event.audio)
            elif isinstance(event, EndOfSpeech):
                if self._record is not None and self.machine.state is State.LISTENING:
                    self._record.user_speech_s = event.speech_s
                if self.local_endpointing or event.no_speech:
                    self.feed(SpeechEnded(no_speech=event.no_speech))
        if self._streaming and not self.local_endpointing:
            self._upstream(frame)  # server VAD needs the silences too, to find the end
        # Fall silent at the first loud syllable over an answer; a proved barge-in flushes,
        # a blip (cough) resumes the answer where it paused.
        suspect = (
            self.machine.state is State.SPEAKING
            and self.endpointer.suspected_speech_ms >= self.cfg.vad.barge_in_pause_ms
        )
        if suspect != self.playback.held:
            self.playback.hold(suspect)

    def feed(self, event: TurnInput) -> None:
        """Apply a turn input (speech, button gesture, ...) and carry out its effects."""
        now = self.clock()
        try:
            effects = self.machine.handle(event, now)
        except InvalidTransition as exc:  # a bug, never worth a crash: log and carry on
            log.error("turns: %s", exc)
            return
        self._run(effects, now)

    def tick(self) -> None:
        """Timers: turn deadlines, playback drained, idle close. Call often (every frame)."""
        now = self.clock()
        if (
            self.machine.state is State.SPEAKING
            and not self.machine.playback_drained
            and self.playback.is_idle
        ):
            self.feed(PlaybackDrained())
        deadline = self.machine.next_deadline()
        if deadline is not None and now >= deadline:
            self._run(self.machine.on_deadline(now), now)
        if (
            self._link is not None
            and not self._link.closing
            and self.machine.state in (State.IDLE, State.MUTED, State.ERROR)
            and not self._tool_tasks
        ):
            idle_for = now - self._idle_since
            if idle_for >= self.cfg.turns.idle_close_s:
                self._close_link("idle", expected=True)
            elif self.policy.should_rollover(now, self._link.opened_at):
                self._close_link("session rollover", expected=True)

    # --- effects -----------------------------------------------------------------------------

    def _run(self, effects: list[Effect], now: float) -> None:
        for effect in effects:
            match effect:
                case Publish(event=event):
                    if isinstance(event, TurnStarted):
                        self._begin_record(event)
                    elif isinstance(event, StateChanged) and State.MUTED in (event.old, event.new):
                        self.endpointer.reset()  # audio from before a mute is never pre-roll
                    self.bus.publish(event)
                case StartUpstream(with_preroll=with_preroll):
                    self._start_upstream(with_preroll)
                case StopUpstream():
                    self._streaming = False
                    if self.endpointer.in_speech:
                        self.endpointer.reset()
                case CommitInput():
                    self._commit(now)
                case ClearInput():
                    self._pending_audio.clear()
                    self._pending_commit = False
                    if self._link is not None:
                        self._link.session.clear_input()
                        self._pump()
                case FlushPlayback():
                    self.playback.flush()
                case CancelResponse():
                    self._cancel_answer()
                case EndTurn(turn_id=turn_id, outcome=outcome):
                    self._end_record(turn_id, outcome, now)
                case _:  # pragma: no cover - exhaustive over Effect
                    raise AssertionError(effect)

    def _start_upstream(self, with_preroll: bool) -> None:
        self._streaming = True
        self._upsampler = Resampler(VAD_RATE_HZ, UPSTREAM_RATE_HZ)
        self._turn_audio = []
        self._replayed = False
        self._pending_audio.clear()
        self._pending_commit = False
        self._answer_item = None
        if self._budget_left is not None:
            status = self._budget_left()
            if not status.ok:
                # Not re-entrant: the turn's own StateChanged must be published first.
                self._streaming = False
                asyncio.get_running_loop().call_soon(self._refuse_turn, status.reason)
                return
        if with_preroll and self._onset_audio:
            self._upstream(self._onset_audio)
        elif not with_preroll:
            self.endpointer.force_open()
        self._ensure_connection()

    def _refuse_turn(self, reason: str) -> None:
        self.bus.publish(
            ErrorReported(self.clock(), reason, "budget_exhausted", self.machine.turn_id)
        )
        log.warning("turn refused: %s", reason)
        self.feed(UpstreamFailed(reason))

    def _upstream(self, pcm16k: bytes) -> None:
        self._send_upstream(self._upsampler.process(pcm16k))

    def _send_upstream(self, pcm: bytes) -> None:
        """Queue 24 kHz utterance audio: on the link, or pending until it is up."""
        if not pcm:
            return
        self._turn_audio.append(pcm)
        if self._record is not None:
            self._record.upstream_bytes += len(pcm)
        if self._link is not None and not self._link.closing:
            self._link.session.append_audio(pcm)
            self._pump()
        else:
            self._pending_audio.append(pcm)

    def _commit(self, now: float) -> None:
        self._send_upstream(self._upsampler.flush())
        if self._record is not None:
            self._record.speech_end_t_s = now
            if not self._record.user_speech_s:
                self._record.user_speech_s = self._record.upstream_bytes / (UPSTREAM_RATE_HZ * 2)
        if self._link is not None and not self._link.closing:
            self._send_commit(self._link.session)
        else:
            self._pending_commit = True
            self._ensure_connection()

    def _send_commit(self, session: RealtimeSession) -> None:
        if self.local_endpointing:
            session.commit()
            session.create_response()
        # Server VAD commits and answers by itself once it hears the end of speech.
        self._pump()

    def _cancel_answer(self) -> None:
        link = self._link
        if link is None:
            return
        session = link.session
        item = self._answer_item
        played = self.playback.played_ms(item) if item else 0
        if played and self.unheard_ms is not None:
            played = max(0, played - int(self.unheard_ms()))
        current = session.active_response_id or ""
        if session.cancel_response() and current:
            self._cancelled.add(current)
        if item is not None and session.answer_item_id == item:
            session.truncate_answer(played)
            log.info("barge-in: answer truncated at %d ms", played)
        self._pump()

    # --- turn records ------------------------------------------------------------------------

    def _begin_record(self, event: TurnStarted) -> None:
        self._record = TurnRecord(event.turn_id, event.trigger, event.t_s)

    def _end_record(self, turn_id: int, outcome: str, now: float) -> None:
        self._idle_since = now
        record, self._record = self._record, None
        if record is None or record.turn_id != turn_id:
            return
        summary = record.summary(now, outcome)
        self.summaries.append(summary)
        if summary.citations:
            self.bus.publish(CitationsReported(turn_id, summary.citations))
        self.bus.publish(TurnEnded(summary))

    # --- connection --------------------------------------------------------------------------

    def _ensure_connection(self) -> None:
        if (
            self._closed
            or self._link is not None
            or (self._connecting and not self._connecting.done())
        ):
            return
        self._connecting = asyncio.get_running_loop().create_task(self._open_link())

    async def _open_link(self) -> None:
        now = self.clock()
        at = self.policy.next_attempt_at(now)
        if at is None:
            self._connect_failed(self.policy.reason or "not connecting")
            return
        wait_s = at - now
        if wait_s > 0:
            if wait_s > 1.5:  # the person would wait too long: say so now, retry later
                self._connect_failed(f"upstream unavailable, retrying in {wait_s:.0f} s")
                return
            await asyncio.sleep(wait_s)
        now = self.clock()
        try:
            self.policy.record_attempt(now)
        except BudgetExhausted as exc:
            self._connect_failed(str(exc))
            return
        try:
            link = await self._connect(
                self.endpoint,
                timeout_s=self.cfg.realtime.connect_timeout_s,
                ping_interval_s=self.cfg.connection.ping_interval_s,
                ping_timeout_s=self.cfg.connection.ping_timeout_s,
            )
        except UpstreamRejected as exc:
            self.policy.record_failure(self.clock(), "auth")
            self._connect_failed(str(exc))
            return
        except UpstreamUnavailable as exc:
            kind = failure_kind_for_status(exc.status) if exc.status is not None else "network"
            self.policy.record_failure(self.clock(), kind, exc.retry_after_s)
            self._connect_failed(str(exc))
            return
        if self._closed:
            await link.close()
            return
        self.policy.record_success(self.clock())
        self.connections_opened += 1
        session = RealtimeSession(
            self.endpoint.dialect, self.options, middle_tier=self.endpoint.middle_tier
        )
        session.configure()
        state = _Link(link, session, self.clock(), asyncio.Queue(), [])
        self._link = state
        loop = asyncio.get_running_loop()
        state.tasks = [
            loop.create_task(self._sender(state)),
            loop.create_task(self._receiver(state)),
        ]
        self.bus.publish(ConnectionChanged(self.clock(), True, self.endpoint.redacted))
        log.debug("= connected (%s dialect)", self.endpoint.dialect)
        for pcm in self._pending_audio:
            session.append_audio(pcm)
        self._pending_audio.clear()
        if self._pending_commit:
            self._pending_commit = False
            self._send_commit(session)
        self._pump()

    def _connect_failed(self, reason: str) -> None:
        self._pending_audio.clear()
        self._pending_commit = False
        self.bus.publish(
            ErrorReported(self.clock(), reason, "upstream_unavailable", self.machine.turn_id)
        )
        log.warning("connection: %s", reason)
        self.feed(UpstreamFailed(reason))

    def _pump(self) -> None:
        """Move the session's queued client events to the sender task."""
        link = self._link
        if link is None:
            return
        for text in link.session.data_to_send():
            link.outgoing.put_nowait(text)

    async def _sender(self, state: _Link) -> None:
        while True:
            text = await state.outgoing.get()
            if text is None or not await state.link.send(text):
                return

    async def _receiver(self, state: _Link) -> None:
        while True:
            text = await state.link.recv()
            if text is None:
                break
            state.session.receive_text(text)
            for event in state.session.events_received():
                if self._link is not state:
                    return
                self._on_server_event(state, event)
        if self._link is state:
            self._link_lost(state, state.link.close_reason or "connection closed")

    def _close_link(self, why: str, *, expected: bool) -> None:
        state = self._link
        if state is None:
            return
        state.closing = True
        self._link = None
        now = self.clock()
        self.policy.record_closed(now, now - state.opened_at, expected=expected)
        state.outgoing.put_nowait(None)
        log.debug("= websocket closed: %s", why)  # EventLogger logs the ConnectionChanged
        self.bus.publish(ConnectionChanged(now, False, why))
        self._spawn(self._finish_close(state))

    async def _finish_close(self, state: _Link) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(state.tasks[0], timeout=1.0)
        await state.link.close()
        for task in state.tasks:
            task.cancel()

    def _link_lost(self, state: _Link, reason: str) -> None:
        self._close_link(f"lost: {reason}", expected=False)
        for tasks in self._tool_tasks.values():
            for task in tasks:
                task.cancel()
        self._tool_tasks.clear()
        st = self.machine.state
        if st is State.LISTENING and not self._replayed:
            # The person is still talking: reconnect and replay what they said, once.
            self._replayed = True
            self._pending_audio = list(self._turn_audio)
            log.warning(
                "connection lost while listening; replaying %d chunks once",
                len(self._pending_audio),
            )
            self._ensure_connection()
        elif (
            st is State.THINKING
            and self._pending_commit is False
            and not self._replayed
            and self._turn_audio
        ):
            self._replayed = True
            self._pending_audio = list(self._turn_audio)
            self._pending_commit = True
            log.warning("connection lost before the answer; replaying the utterance once")
            self._ensure_connection()
        elif st in (State.LISTENING, State.THINKING, State.SPEAKING):
            self.bus.publish(
                ErrorReported(
                    self.clock(),
                    f"connection lost: {reason}",
                    "connection_lost",
                    self.machine.turn_id,
                )
            )
            self.feed(UpstreamFailed(f"connection lost: {reason}"))

    # --- server events -------------------------------------------------------------------------

    def _on_server_event(self, state: _Link, event: ServerEvent) -> None:
        now = self.clock()
        record = self._record
        match event:
            case AudioDelta(response_id=rid, item_id=item_id, pcm=pcm):
                if rid in self._cancelled or self.machine.state not in (
                    State.THINKING,
                    State.SPEAKING,
                ):
                    return  # late audio of an answer that was interrupted or timed out
                self._answer_item = item_id
                self.playback.write(pcm, item_id)
                if record is not None:
                    record.note_answer_audio(now)
                self.feed(AnswerAudioReceived())
            case AnswerTranscriptDelta(text=text):
                if record is not None and self.machine.state in (State.THINKING, State.SPEAKING):
                    record.answer_parts.append(text)
            case UserTranscript(text=text):
                if record is not None:
                    record.transcript = (record.transcript + " " + text).strip()
                log.debug("< user transcript: %r", text)
            case FunctionCallRequested():
                self._start_tool(state, event)
            case ResponseFinished():
                self._on_response_finished(state, event)
            case MiddleTierToolResponse(tool_name=name, tool_result=result):
                if self._citations_from_middle_tier is not None and record is not None:
                    record.add_citations(self._citations_from_middle_tier(name, result))
            case ServerSpeechStarted():
                if not self.local_endpointing:
                    self.feed(SpeechStarted())
            case ServerSpeechStopped():
                if not self.local_endpointing:
                    self.feed(SpeechEnded())
            case ServerError(code=code, message=message, benign=benign):
                if benign:
                    log.debug("< benign error %s", code)
                    return
                log.warning("server error %s: %s", code, message)
                self.bus.publish(
                    ErrorReported(now, f"{code}: {message}", code, self.machine.turn_id)
                )
                if self.machine.state in (State.LISTENING, State.THINKING, State.SPEAKING):
                    self.feed(UpstreamFailed(f"server error {code}"))
            case RateLimitsUpdated(limits=limits):
                self.policy.apply_rate_limits(now, limits)
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
                pass

    def _on_response_finished(self, state: _Link, event: ResponseFinished) -> None:
        if event.usage.input_total or event.usage.output_total:
            if self._record is not None:
                self._record.usage = self._record.usage + event.usage
            self.bus.publish(UsageReported(self.machine.turn_id, event.usage))
        if event.response_id in self._cancelled or event.status == "cancelled":
            self._cancelled.discard(event.response_id)
            return
        if event.status == "failed":
            reason = f"response failed: {event.status_detail or 'unknown'}"
            self.bus.publish(
                ErrorReported(self.clock(), reason, "response_failed", self.machine.turn_id)
            )
            if self.machine.state in (State.THINKING, State.SPEAKING):
                self.feed(UpstreamFailed(reason))
            return
        if event.function_calls and not state.session.middle_tier:
            self.feed(ToolRoundFinished())
            turn_id = self.machine.turn_id
            tasks = self._tool_tasks.pop(event.response_id, [])
            self._spawn(self._respond_after_tools(state, tasks, turn_id))
        elif event.answer_over:
            self.policy.record_answered(self.clock())  # the link proved healthy
            self.feed(AnswerFinished(had_audio=event.had_audio))
        else:
            self.feed(ToolRoundFinished())  # the middle tier's hidden tool round

    # --- tools ---------------------------------------------------------------------------------

    def _start_tool(self, state: _Link, call: FunctionCallRequested) -> None:
        turn_id = self.machine.turn_id
        self.bus.publish(ToolCallStarted(self.clock(), turn_id, call.name))
        task = asyncio.get_running_loop().create_task(self._run_tool(state, call, turn_id))
        self._tool_tasks.setdefault(call.response_id, []).append(task)

    async def _run_tool(self, state: _Link, call: FunctionCallRequested, turn_id: int) -> None:
        started = self.clock()
        ok = False
        if self.tools is None:
            output = "error: no tools are available on this kiosk"
        else:
            result = await self.tools.run_async(
                call.name, call.arguments, self.cfg.rag.tool_timeout_s
            )
            output, ok = result.output, result.ok
            if result.citations and self._record is not None and self._record.turn_id == turn_id:
                self._record.add_citations(tuple(result.citations))
        self.bus.publish(
            ToolCallFinished(self.clock(), turn_id, call.name, ok, (self.clock() - started) * 1000)
        )
        if self._link is state and self.machine.turn_id == turn_id:
            state.session.send_tool_output(call.call_id, output)
            self._pump()

    async def _respond_after_tools(
        self, state: _Link, tasks: list[asyncio.Task[None]], turn_id: int
    ) -> None:
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        still_this_turn = self._link is state and self.machine.turn_id == turn_id
        if still_this_turn and self.machine.state in (State.THINKING, State.SPEAKING):
            gate = self.policy.response_gate(self.clock())
            if not gate.ok:
                await asyncio.sleep(min(gate.until - self.clock(), self.cfg.turns.answer_timeout_s))
            if self._link is state and self.machine.turn_id == turn_id:
                state.session.create_response()
                self._pump()

    # --- misc ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the pipeline keeps a reference to (the loop keeps only weak ones)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _log_once(self, key: str, level: int, msg: str, *args: object) -> None:
        if key in self._reported:
            return
        if len(self._reported) < 1000:
            self._reported.add(key)
        log.log(level, msg, *args)

    @property
    def busy(self) -> bool:
        """A turn or its answer is in progress (simulate waits for this to clear)."""
        return (
            self.machine.state in (State.LISTENING, State.THINKING, State.SPEAKING)
            or not self.playback.is_idle
            or bool(self._tool_tasks)
        )

    async def aclose(self) -> None:
        """Stop everything: close the websocket, cancel tasks. Idempotent."""
        if self._record is not None and not self._closed:
            self._end_record(self._record.turn_id, "shutdown", self.clock())  # its journal line
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        state = self._link
        if state is not None:
            self._close_link("shutdown", expected=True)
            await self._finish_close(state)
        for tasks in self._tool_tasks.values():
            for task in tasks:
                task.cancel()


def earcon_subscriber(
    playback: PlaybackBuffer, volume: float, rate_hz: int
) -> Callable[[Any], None]:
    """Play requested earcons through the speaker's earcon lane (never counted as answer audio)."""
    cache: dict[str, bytes] = {}

    def on_event(event: Any) -> None:
        if not isinstance(event, EarconRequested):
            return
        if event.name not in cache:
            try:
                from kiosk.audio.earcons import render_earcon
            except ImportError:
                return
            cache[event.name] = render_earcon(event.name, rate_hz=rate_hz, volume=volume)
        playback.write(cache[event.name], None)

    return on_event

"""Wires the adapters around the pure core: the kiosk's conversation pipeline (asyncio).

:class:`KioskPipeline` owns one kiosk's turn: the endpointer, the turn machine, the
playback buffer and the tool runner. Audio frames, button gestures and server events go in;
effects come out of the turn machine and are carried out here. What comes back from
upstream (server events, a lost or failed connection, tool outputs) is handled by its
:class:`~kiosk.upstream_replies.UpstreamReplies`. It knows nothing about
*which* microphone or speaker is attached (the daemon feeds it PyAudio frames,
``kiosk.simulate`` WAV frames), nor about the connection's life: that is
:class:`~kiosk.net.link.UpstreamLink` (connect policy, idle close, rollover, replay after a
drop), talking to whichever :class:`~kiosk.net.engine.Engine` answers.

Threads: everything here runs on the event loop thread. PortAudio / gpiozero callbacks
must hop over with ``loop.call_soon_threadsafe`` before calling in.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from kiosk.audio.earcons import earcon_subscriber
from kiosk.audio.echo_cancel import EchoCanceller
from kiosk.audio.echo_level import EchoLevelTap
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.raw_guard import RawMicGuard
from kiosk.config import Config
from kiosk.core.bus import EventStream
from kiosk.core.endpointing import EndOfSpeech, Endpointer, Onset, Speech, frame_levels_dbfs
from kiosk.core.events import (
    Citation,
    CitationsReported,
    ErrorReported,
    State,
    StateChanged,
    TurnEnded,
    TurnStarted,
    TurnSummary,
)
from kiosk.core.heldspeech import HeldSpeech
from kiosk.core.turnrecord import TurnRecord
from kiosk.core.turns import (
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
    TurnInput,
    TurnMachine,
    TurnTimeouts,
    UpstreamFailed,
    WakeWordDetected,
)
from kiosk.errors import InvalidTransition
from kiosk.hearing import EchoFrontEnd
from kiosk.net.endpoints import RealtimeEndpoint
from kiosk.net.engine import Connect, Engine, cloud_engine, session_options
from kiosk.net.link import UpstreamLink
from kiosk.net.policy import ConnectPolicy
from kiosk.tool_calls import ToolCalls, ToolRunnerLike
from kiosk.upstream_replies import UpstreamReplies

# Re-exported: the daemon, simulate and tests build pipelines with these.
__all__ = ["VAD_RATE_HZ", "KioskPipeline", "earcon_subscriber", "session_options"]

log = logging.getLogger(__name__)

VAD_RATE_HZ = 16000


class KioskPipeline:
    """One kiosk conversation pipeline.

    Args:
        cfg: validated settings.
        endpoint: who answers: an :class:`Engine`, or a bare Realtime endpoint (then
            ``connect`` opens it; the "cloud" engine).
        bus: the event stream everything subscribes to.
        playback: the speaker's buffer (the speaker adapter reads it).
        is_speech: voice detector for 16 kHz frames of ``cfg.audio.frame_ms``.
        clock: monotonic seconds (loop.time in the daemon; a skipping clock in simulate).
        tools: the knowledge tools (None: no tools declared).
        rng: randomness for backoff jitter.
        connect: opens the link to a bare ``endpoint`` (default: a websocket).
    """

    def __init__(
        self,
        cfg: Config,
        endpoint: RealtimeEndpoint | Engine,
        bus: EventStream,
        playback: PlaybackBuffer,
        is_speech: Callable[[bytes], bool],
        clock: Callable[[], float],
        *,
        tools: ToolRunnerLike | None = None,
        rng: random.Random | None = None,
        connect: Connect | None = None,
        citations_from_middle_tier: Callable[[str, str], tuple[Citation, ...]] | None = None,
        budget_left: Callable[[], Any] | None = None,
        unheard_ms: Callable[[], float] | None = None,
        fallback: Engine | None = None,
    ) -> None:
        self.cfg = cfg
        engine = endpoint if isinstance(endpoint, Engine) else cloud_engine(endpoint, connect)
        self.bus = bus
        self.playback = playback
        self.clock = clock
        self.tools = tools
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
        self.hearing = EchoFrontEnd(cfg, playback, clock, self._unheard_s, self.endpointer)
        # wake.mode = "wakeword": a detector with process(frame16k, now) -> detection | None.
        self.wake_detector: Any = None
        self.options = session_options(cfg, tools)
        self.replies = UpstreamReplies(self, citations_from_middle_tier)
        self.link = UpstreamLink(
            cfg,
            engine,
            self.options,
            bus,
            clock,
            rng or random.Random(),
            on_event=self.replies.on_server_event,
            on_lost=self.replies.link_lost,
            on_failed=self.replies.connect_failed,
            fallback=fallback,
        )
        self.local_endpointing = cfg.realtime.turn_detection == "local"
        self._streaming = False
        self._onset_audio = b""
        self._held = HeldSpeech(int(cfg.vad.max_utterance_s * VAD_RATE_HZ) * 2)
        self.turn_record: TurnRecord | None = None  # the turn in progress, if any
        self.tool_calls = ToolCalls(tools, bus, clock, cfg.rag, self.replies.deliver_tool_output)
        self._idle_since = now
        self._logged_floor_dbfs = float("-inf")
        self._closed = False
        self.summaries: deque[TurnSummary] = deque(maxlen=100)  # recent turns (tests, reports)

    # --- the engine and its link -------------------------------------------------------------

    @property
    def endpoint(self) -> RealtimeEndpoint:
        return self.link.engine.endpoint

    @property
    def policy(self) -> ConnectPolicy:
        return self.link.policy

    @policy.setter
    def policy(self, policy: ConnectPolicy) -> None:
        # A SIGHUP's new pipeline inherits the old budget (a reload buys no connections).
        self.link.policy = policy

    @property
    def connections_opened(self) -> int:
        return self.link.connections_opened

    # --- inputs ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    def _unheard_s(self) -> float:
        return self.unheard_ms() / 1000 if self.unheard_ms is not None else 0.0

    def on_mic_frame(self, frame: bytes, captured_at_s: float | None = None) -> None:
        """One 16 kHz PCM16 frame of ``frame_ms`` from the microphone (or a WAV), captured
        from ``captured_at_s`` on (clock time; default: it just ended)."""
        self.tick()
        self._hear(frame, captured_at_s)

    def on_mic_frames(self, frames: list[bytes], captured_at_s: list[float] | None = None) -> None:
        """Consecutive frames handed over at once (a device block, or several gathered while
        quiet), each captured from ``captured_at_s[i]`` on if known: the timers run once."""
        self.tick()
        if self.echo_canceller is not None:  # levels of the cancelled frames: one at a time
            for i, frame in enumerate(frames):
                self._hear(frame, None if captured_at_s is None else captured_at_s[i])
            return
        for i, (frame, level) in enumerate(zip(frames, frame_levels_dbfs(frames), strict=True)):
            self._hear(frame, None if captured_at_s is None else captured_at_s[i], level)

    # The echo parts live in the front end (kiosk.hearing); read here by the daemon, tests
    # and benches.
    @property
    def echo_canceller(self) -> EchoCanceller | None:
        return self.hearing.echo_canceller

    @property
    def echo_level(self) -> EchoLevelTap | None:
        return self.hearing.echo_level

    @property
    def raw_guard(self) -> RawMicGuard | None:
        return self.hearing.raw_guard

    @property
    def echo_tap(self) -> EchoCanceller | EchoLevelTap | None:
        """What lines the speaker's output up with the microphone, if anything."""
        return self.hearing.tap

    @property
    def quiet(self) -> bool:
        """Nothing to react to soon: IDLE (or MUTED) with nothing playing, no speech and no
        loud voiced frame towards an onset. The microphone may then hand over its audio in
        larger batches (fewer wake-ups); any frame of such a batch can still open a turn,
        with its pre-roll, only later."""
        return (
            self.machine.state in (State.IDLE, State.MUTED)
            and not self._held
            and not self.endpointer.in_speech
            and self.endpointer.suspected_speech_ms == 0
            and self.playback.is_idle
        )

    def _hear(
        self, frame: bytes, captured_at_s: float | None = None, level_dbfs: float | None = None
    ) -> None:
        if self.machine.state is State.MUTED:
            return  # mute stops all upstream audio and the VAD itself
        frame, raw_onset = self.hearing.clean(frame, captured_at_s)
        if self.wake_detector is not None and self.machine.state in (State.IDLE, State.THINKING, State.SPEAKING):
            if self.wake_detector.process(frame, self.clock()) is not None:
                self.feed(WakeWordDetected())
        events = self.hearing.judge(frame, level_dbfs)
        for event in events:
            if self.machine.state is State.ERROR and self.machine.wake == "vad":
                self._held.add(event)  # asked during the error hold: answered after it
            elif isinstance(event, Onset):
                self._onset_audio = event.audio
                self.feed(SpeechStarted())
                self._onset_audio = b""
            elif isinstance(event, Speech):
                if self._streaming and self.local_endpointing:
                    self._upstream(event.audio)
            elif isinstance(event, EndOfSpeech):
                if self.turn_record is not None and self.machine.state is State.LISTENING:
                    self.turn_record.user_speech_s = event.speech_s
                if self.local_endpointing or event.no_speech:
                    self.feed(SpeechEnded(no_speech=event.no_speech))
        speaking = self.machine.state is State.SPEAKING
        if raw_onset is not None and speaking and not self.endpointer.in_speech:
            # The guard alone proved a barge-in on the raw microphone (the canceller is not
            # trusted yet): the turn is the visitor's, followed on the cleaned frames from here.
            self.endpointer.force_open()
            self._onset_audio = raw_onset
            self.feed(SpeechStarted())
            self._onset_audio = b""
        if self._streaming and not self.local_endpointing:
            self._upstream(frame)  # server VAD needs the silences too, to find the end
        # Fall silent at the first loud syllable over an answer; a proved barge-in flushes,
        # a blip (cough) resumes the answer where it paused.
        suspect = (
            self.machine.state is State.SPEAKING
            and self.hearing.suspected_speech_ms >= self.cfg.vad.barge_in_pause_ms
        )
        if suspect != self.playback.held:
            self.playback.hold(suspect)
        if (floor := self.endpointer.noise_floor_dbfs) is not None and abs(floor - self._logged_floor_dbfs) >= 3:
            self._logged_floor_dbfs = floor
            log.debug("room ambient %.1f dBFS: turns open above %.1f dBFS", floor, self.endpointer.onset_level_dbfs)

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
        if self._held and self.machine.state is not State.ERROR:
            self._answer_held_speech()
        if self.machine.state in (State.IDLE, State.MUTED, State.ERROR) and not self.tool_calls:
            self.link.close_if_idle(now, now - self._idle_since)

    # --- effects -----------------------------------------------------------------------------

    def _run(self, effects: list[Effect], now: float) -> None:
        cut_mid_speech = False
        for effect in effects:
            match effect:
                case Publish(event=event):
                    if isinstance(event, TurnStarted):
                        self._begin_record(event)
                    elif isinstance(event, StateChanged) and State.MUTED in (event.old, event.new):
                        self.endpointer.reset()  # audio from before a mute is never pre-roll
                    elif isinstance(event, StateChanged) and event.new is State.ERROR:
                        # Speech the failure cut off goes on: that tail is not a new question.
                        self._held = HeldSpeech(self._held.max_bytes, skip_tail=cut_mid_speech)
                    self.bus.publish(event)
                case StartUpstream(with_preroll=with_preroll):
                    self._start_upstream(with_preroll)
                case StopUpstream():
                    self._streaming = False
                    if self.endpointer.in_speech:
                        self.endpointer.reset()
                        cut_mid_speech = True
                case CommitInput():
                    self._commit(now)
                case ClearInput():
                    self.link.clear_input()
                case FlushPlayback():
                    self.playback.flush()
                case CancelResponse():
                    self.replies.cancel_answer()
                case EndTurn(turn_id=turn_id, outcome=outcome):
                    # A call whose response never finished (no response.done before the
                    # timeout) would keep the kiosk busy for good: the turn is over, so are they.
                    self.tool_calls.cancel_all()
                    self._end_record(turn_id, outcome, now)
                case _:  # pragma: no cover - exhaustive over Effect
                    raise AssertionError(effect)

    def _start_upstream(self, with_preroll: bool) -> None:
        self._streaming = True
        self.link.start_utterance()
        self.replies.answer_item = None
        if self._budget_left is not None:
            status = self._budget_left()
            if not status.ok and self.link.use_fallback(status.reason, self.machine.turn_id):
                pass  # answered on the device: the budget is not touched
            elif not status.ok:
                # Not re-entrant: the turn's own StateChanged must be published first.
                self._streaming = False
                asyncio.get_running_loop().call_soon(self._refuse_turn, status.reason)
                return
        if self.clock() - self._idle_since >= self.cfg.turns.new_visitor_after_s:
            self.link.forget_context(0)  # a new visitor: a fresh conversation
        if with_preroll and self._onset_audio:
            self._upstream(self._onset_audio)
        elif not with_preroll:
            self.endpointer.force_open()
        self.link.ensure()

    def _answer_held_speech(self) -> None:
        """The ERROR hold is over: the question asked during it starts a turn, pre-roll and
        all, on a fresh connection (and is committed at once if it was complete)."""
        held, self._held = self._held, HeldSpeech(self._held.max_bytes)
        if self.machine.state is not State.IDLE:
            return
        self._onset_audio = bytes(held.audio)
        self.feed(SpeechStarted())
        self._onset_audio = b""
        if held.complete and self.local_endpointing and self.state is State.LISTENING:
            self.feed(SpeechEnded())

    def _refuse_turn(self, reason: str) -> None:
        self.bus.publish(
            ErrorReported(self.clock(), reason, "budget_exhausted", self.machine.turn_id)
        )
        log.warning("turn refused: %s", reason)
        self.feed(UpstreamFailed(reason))

    def _upstream(self, pcm16k: bytes) -> None:
        self.link.send_audio(pcm16k)

    def _commit(self, now: float) -> None:
        self.link.commit()
        if self.turn_record is not None:
            self.turn_record.upstream_bytes = self.link.utterance_bytes
            self.turn_record.speech_end_t_s = now
            if not self.turn_record.user_speech_s:
                self.turn_record.user_speech_s = self.link.utterance_s

    # --- turn records ------------------------------------------------------------------------

    def _begin_record(self, event: TurnStarted) -> None:
        self.turn_record = TurnRecord(event.turn_id, event.trigger, event.t_s)
        self.turn_record.noise_floor_dbfs = self.endpointer.noise_floor_dbfs

    def _end_record(self, turn_id: int, outcome: str, now: float) -> None:
        self._idle_since = now
        record, self.turn_record = self.turn_record, None
        if record is None or record.turn_id != turn_id:
            return
        record.engine = self.link.engine.name  # the fallback, if it took over this turn
        record.upstream_bytes = self.link.utterance_bytes
        summary = record.summary(now, outcome)
        self.summaries.append(summary)
        if summary.citations:
            self.bus.publish(CitationsReported(turn_id, summary.citations))
        self.bus.publish(TurnEnded(summary))

    # --- misc ----------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A turn or its answer is in progress (simulate waits for this to clear)."""
        return (
            self.machine.state in (State.LISTENING, State.THINKING, State.SPEAKING)
            or not self.playback.is_idle
            or bool(self.tool_calls)
        )

    async def aclose(self) -> None:
        """Stop everything: close the websocket, cancel tasks. Idempotent."""
        if self.turn_record is not None and not self._closed:
            self._end_record(self.turn_record.turn_id, "shutdown", self.clock())  # its journal line
        self._closed = True
        self.hearing.close()
        await self.link.aclose()
        self.tool_calls.cancel_all()

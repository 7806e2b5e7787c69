"""What comes back from upstream during a turn, carried into the kiosk.

:class:`UpstreamReplies` is the answer side of :class:`~kiosk.app.KioskPipeline`: the typed
server events (answer audio to the speaker, transcripts and citations to the turn record,
function calls to the tool runner, ``response.done`` as an answer's end or a tool round,
server errors), what the link reports (a failed connect, a lost connection), cancelling an
answer (truncate at what was heard), and the tool outputs going back up. It owns which
responses were cancelled and which item is the answer audio; the turn machine, the
playback buffer and the link stay the pipeline's.

Kept apart from the pipeline, which handles the microphone side (endpointing, wake word,
held speech) and carries out the turn machine's effects. Everything runs on the event loop
thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiosk.core.events import Citation, ErrorReported, State, UsageReported
from kiosk.core.realtime import (
    MAX_TRANSCRIPT_CHARS,
    AnswerTranscriptDelta,
    AudioDelta,
    FunctionCallRequested,
    MiddleTierToolResponse,
    RealtimeSession,
    ResponseFinished,
    ServerError,
    ServerEvent,
    ServerSpeechStarted,
    ServerSpeechStopped,
    UserTranscript,
)
from kiosk.core.turns import (
    AnswerAudioReceived,
    AnswerFinished,
    SpeechEnded,
    SpeechStarted,
    ToolRoundFinished,
    UpstreamFailed,
)
from kiosk.tool_calls import ToolOutput

if TYPE_CHECKING:
    from kiosk.app import KioskPipeline

# The pipeline's log lines keep the logger name they had before this module was split out.
log = logging.getLogger("kiosk.app")

ANSWERING = (State.THINKING, State.SPEAKING)


class UpstreamReplies:
    """The answer side of one pipeline (see the module docstring).

    Args:
        pipeline: the pipeline whose turn machine, playback, link and turn record it drives.
        citations_from_middle_tier: turns VoiceRAG's grounding event into citations.
    """

    def __init__(
        self,
        pipeline: KioskPipeline,
        citations_from_middle_tier: Callable[[str, str], tuple[Citation, ...]] | None,
    ) -> None:
        self.pipeline = pipeline
        self._citations_from_middle_tier = citations_from_middle_tier
        self.answer_item: str | None = None  # answer audio item of the current turn
        self._answer_response: tuple[int, str] | None = None  # (turn, response) playing now
        # A turn cannot play more than max_answer_s: queue no more than that (memory bound).
        self._max_queued_ms = pipeline.cfg.turns.max_answer_s * 1000
        self._cancelled: set[str] = set()  # response ids we cancelled: late deltas dropped

    def cancel_answer(self) -> None:
        p = self.pipeline
        item = self.answer_item
        played = p.playback.played_ms(item) if item else 0
        if played and p.unheard_ms is not None:
            played = max(0, played - int(p.unheard_ms()))
        if cancelled := p.link.cancel_answer(item, played):
            self._cancelled.add(cancelled)

    # --- what the link reports ---------------------------------------------------------------

    def connect_failed(self, reason: str) -> None:
        p = self.pipeline
        if p.link.use_fallback(reason, p.machine.turn_id):
            return  # realtime.fallback = "local": the device answers this turn
        p.bus.publish(ErrorReported(p.clock(), reason, "upstream_unavailable", p.machine.turn_id))
        log.warning("connection: %s", reason)
        p.feed(UpstreamFailed(reason))

    def link_lost(self, reason: str) -> None:
        p = self.pipeline
        p.tool_calls.cancel_all()
        st = p.machine.state
        if st is State.LISTENING and p.link.replay_once(then_commit=False):
            # The person is still talking: reconnect and replay what they said, once.
            log.warning(
                "connection lost while listening; replaying %d chunks once",
                p.link.pending_chunks,
            )
        elif st is State.THINKING and p.link.replay_once(then_commit=True):
            log.warning("connection lost before the answer; replaying the utterance once")
        elif st is State.SPEAKING and p.machine.answer_over:
            log.debug("= connection lost after the whole answer arrived; it plays on")
        elif st in (State.LISTENING, State.THINKING, State.SPEAKING):
            why = f"connection lost: {reason}"
            turn_id = p.machine.turn_id
            p.bus.publish(ErrorReported(p.clock(), why, "connection_lost", turn_id))
            # Mid-answer: what arrived still plays, then the turn ends as an error.
            p.feed(UpstreamFailed(why, after_playback=st is State.SPEAKING))

    # --- server events -------------------------------------------------------------------------

    def on_server_event(self, session: RealtimeSession, event: ServerEvent) -> None:
        p = self.pipeline
        now = p.clock()
        record = p.turn_record
        match event:
            case AudioDelta(response_id=rid, item_id=item_id, pcm=pcm):
                if rid in self._cancelled or p.machine.state not in ANSWERING:
                    return  # late audio of an answer that was interrupted or timed out
                # Ids are unique per connection only (a fake or local server restarts them):
                # a new turn's or response's answer counts its playback from zero.
                if (p.machine.turn_id, rid) != self._answer_response:
                    self._answer_response = (p.machine.turn_id, rid)
                    p.playback.restart_item(item_id)
                self.answer_item = item_id
                p.playback.write(pcm, item_id, limit_ms=self._max_queued_ms)
                if record is not None:
                    record.note_answer_audio(now)
                p.feed(AnswerAudioReceived())
            case AnswerTranscriptDelta(text=text):
                if record is not None and p.machine.state in ANSWERING:
                    record.add_answer_text(text, MAX_TRANSCRIPT_CHARS)
            case UserTranscript(text=text):
                if record is not None:
                    record.add_transcript(text, MAX_TRANSCRIPT_CHARS)
                log.debug("< user transcript: %r", text[:200])
            case FunctionCallRequested(name=name):
                if p.machine.state not in ANSWERING:
                    # Its turn is over (an error, a barge-in): nobody waits for the result, and
                    # its response may never finish, which would leave the call pending for good.
                    log.debug("< call %r after its turn ended: ignored", name[:40])
                    return
                p.tool_calls.start(session, event, p.machine.turn_id)
            case ResponseFinished():
                self._on_response_finished(session, event)
            case MiddleTierToolResponse(tool_name=name, tool_result=result):
                if self._citations_from_middle_tier is not None and record is not None:
                    record.add_citations(self._citations_from_middle_tier(name, result))
            case ServerSpeechStarted():
                if not p.local_endpointing:
                    p.feed(SpeechStarted())
            case ServerSpeechStopped():
                if not p.local_endpointing:
                    p.feed(SpeechEnded())
            case ServerError(code=code, message=message, benign=benign):
                if benign:
                    log.debug("< benign error %s", code)
                    return
                log.warning("server error %s: %s", code, message)
                p.bus.publish(ErrorReported(now, f"{code}: {message}", code, p.machine.turn_id))
                if p.machine.state in (State.LISTENING, State.THINKING, State.SPEAKING):
                    p.feed(UpstreamFailed(f"server error {code}"))
            case _:
                pass  # rate limits and bad or unknown frames: the link's business

    def _on_response_finished(self, session: RealtimeSession, event: ResponseFinished) -> None:
        p = self.pipeline
        if event.usage.input_total or event.usage.output_total:
            if p.turn_record is not None:
                p.turn_record.usage = p.turn_record.usage + event.usage
            p.bus.publish(UsageReported(p.machine.turn_id, event.usage))
        if event.response_id in self._cancelled or event.status == "cancelled" or event.stale:
            self._cancelled.discard(event.response_id)  # stale: not the answer in progress
            return
        if event.status == "failed":
            reason = f"response failed: {event.status_detail or 'unknown'}"
            p.bus.publish(ErrorReported(p.clock(), reason, "response_failed", p.machine.turn_id))
            if p.machine.state in (State.THINKING, State.SPEAKING):
                p.feed(UpstreamFailed(reason))
            return
        if event.function_calls and not session.middle_tier:
            p.feed(ToolRoundFinished())
            turn_id = p.machine.turn_id
            p.tool_calls.then(
                event.response_id, lambda: self._respond_after_tools(session, turn_id)
            )
        elif event.answer_over:
            p.policy.record_answered(p.clock())  # the link proved healthy
            p.feed(AnswerFinished(had_audio=event.had_audio))
            # Bound what the next response re-bills: only the last few turns stay upstream.
            p.link.forget_context(p.cfg.turns.context_turns)
        else:
            p.feed(ToolRoundFinished())  # the middle tier's hidden tool round

    # --- tools ---------------------------------------------------------------------------------

    def deliver_tool_output(self, result: ToolOutput) -> None:
        p = self.pipeline
        record = p.turn_record
        if result.citations and record is not None and record.turn_id == result.turn_id:
            record.add_citations(result.citations)
        if p.link.session is result.session and p.machine.turn_id == result.turn_id:
            result.session.send_tool_output(result.call_id, result.output)
            p.link.pump()

    async def _respond_after_tools(self, session: RealtimeSession, turn_id: int) -> None:
        p = self.pipeline
        still_this_turn = p.link.session is session and p.machine.turn_id == turn_id
        if still_this_turn and p.machine.state in (State.THINKING, State.SPEAKING):
            gate = p.policy.response_gate(p.clock())
            if not gate.ok:
                await asyncio.sleep(min(gate.until - p.clock(), p.cfg.turns.answer_timeout_s))
            if p.link.session is session and p.machine.turn_id == turn_id:
                session.create_response()
                p.link.pump()

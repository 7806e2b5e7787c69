"""Turn-taking: every state and transition of the kiosk lives in this file (its inputs,
effects and timeouts in :mod:`kiosk.core.turn_types`, re-exported here).

House rules (after h11's ``_state.py``):

- The machine is pure: ``handle(input, now) -> list[Effect]`` and timers as data
  (:meth:`TurnMachine.next_deadline`, :meth:`TurnMachine.on_deadline`). The adapter
  schedules ``loop.call_at``; the machine never reads a clock.
- ``TRANSITIONS`` maps ``(state, input type)`` to a handler. Pairs in ``NO_OPS`` are
  explicit no-ops (a late audio delta after barge-in is one). Any other pair raises
  :class:`~kiosk.errors.InvalidTransition` and leaves the state unchanged.
- No stuck states: every state but IDLE and MUTED has a deadline.

Inputs are past-tense facts (``SpeechStarted``); effects are imperative (``FlushPlayback``).
What the effects *do* (sockets, speakers) is the adapter's business (``kiosk.app``).
"""

from __future__ import annotations

from collections.abc import Callable

from kiosk.core.events import EarconRequested, State, StateChanged, TurnStarted
from kiosk.core.turn_types import INPUT_TYPES as INPUT_TYPES  # re-exported
from kiosk.core.turn_types import (  # callers import these from here too
    AnswerAudioReceived,
    AnswerFinished,
    ButtonPressed,
    ButtonTapped,
    CancelResponse,
    ClearInput,
    CommitInput,
    DeviceRecovered,
    Effect,
    EndTurn,
    FlushPlayback,
    MuteToggled,
    PlaybackDrained,
    Publish,
    PushToTalkEnded,
    PushToTalkStarted,
    SpeechEnded,
    SpeechStarted,
    StartUpstream,
    StopUpstream,
    ToolRoundFinished,
    TurnInput,
    TurnTimeouts,
    UpstreamFailed,
    WakeWordDetected,
)
from kiosk.errors import InvalidTransition

Handler = Callable[["TurnMachine", TurnInput, float], None]


class TurnMachine:
    """The kiosk's conversation state. Feed it inputs and deadlines; run the effects it returns.

    ``wake`` decides what opens a turn: "vad" (speech onset), "wakeword" (WakeWordDetected,
    then the endpointer ends it) or "button" (only the button).
    """

    def __init__(self, timeouts: TurnTimeouts, *, wake: str = "vad", now: float = 0.0) -> None:
        self.timeouts = timeouts
        self.wake = wake
        self.state = State.IDLE
        self.turn_id = 0
        self.trigger = ""
        self.push_to_talk = False
        self.answer_over = False
        self.playback_drained = True
        self._state_since = now
        self._deadline: float | None = None
        self._deadline_kind = ""
        self._press_stopped_answer = False
        self.error_latched = False  # a device is missing: ERROR does not time out
        self._awaiting_tool_answer = False  # a tool round ended mid-answer; the model speaks next
        self._failed_after_playback = ""  # the link died mid-answer: ERROR once drained
        self._effects: list[Effect] = []

    # --- public contract -----------------------------------------------------------------

    def handle(self, event: TurnInput, now: float) -> list[Effect]:
        """Apply one input. Raises InvalidTransition (state unchanged) for a forbidden pair."""
        if isinstance(event, ButtonPressed):
            # Each press starts a new gesture: only the press that stopped an answer may
            # swallow its own tap (a flag left from an earlier press would eat a later one).
            self._press_stopped_answer = False
        key = (self.state, type(event))
        if key in NO_OPS:
            return []
        handler = TRANSITIONS.get(key)
        if handler is None:
            raise InvalidTransition(
                f"can't handle {type(event).__name__} in state {self.state.name}"
            )
        self._effects = []
        handler(self, event, now)
        effects, self._effects = self._effects, []
        return effects

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_deadline(self, now: float) -> list[Effect]:
        """Call at (or after) :meth:`next_deadline`; a stale call does nothing."""
        if self._deadline is None or now < self._deadline:
            return []
        kind, self._deadline = self._deadline_kind, None
        self._effects = []
        if kind == "max_utterance":
            self._commit(now, "max utterance length reached")
        elif kind == "answer_timeout":
            self._effects += [CancelResponse(), FlushPlayback(), StopUpstream()]
            self._earcon("error")
            self._end_turn("no_answer")
            self._go(State.IDLE, now, "no answer in time")
        elif kind == "audio_stall":
            self._effects += [CancelResponse(), FlushPlayback()]
            self._end_turn("answered" if self.answer_over else "stalled")
            self._go(State.IDLE, now, "answer audio stalled")
        elif kind == "max_answer":
            self._effects += [CancelResponse(), FlushPlayback()]
            self._end_turn("too_long")
            self._go(State.IDLE, now, "answer too long")
        elif kind == "error_hold":
            if self.error_latched:
                self._arm(now + self.timeouts.error_hold_s, "error_hold")  # still broken
            else:
                self._go(State.IDLE, now, "error shown; ready again")
        effects, self._effects = self._effects, []
        return effects

    # --- helpers -------------------------------------------------------------------------

    def _go(self, new: State, now: float, reason: str) -> None:
        old, self.state = self.state, new
        self._state_since = now
        self._failed_after_playback = ""
        self._deadline = None
        self._deadline_kind = ""
        t = self.timeouts
        if new is State.LISTENING and not self.push_to_talk:
            self._arm(now + t.max_utterance_s, "max_utterance")
        elif new is State.LISTENING:
            self._arm(now + max(t.max_utterance_s, 60.0), "max_utterance")  # PTT: a generous cap
        elif new is State.THINKING:
            self._arm(now + t.answer_timeout_s, "answer_timeout")
        elif new is State.SPEAKING:
            self._arm(now + t.max_answer_s, "max_answer")
        elif new is State.ERROR:
            self._arm(now + t.error_hold_s, "error_hold")
        self._effects.append(Publish(StateChanged(now, old, new, reason, self.turn_id)))

    def _arm(self, at: float, kind: str) -> None:
        self._deadline, self._deadline_kind = at, kind

    def _earcon(self, name: str) -> None:
        self._effects.append(Publish(EarconRequested(name)))

    def _end_turn(self, outcome: str) -> None:
        self._effects.append(EndTurn(self.turn_id, outcome))

    def _start_turn(
        self, now: float, trigger: str, *, push_to_talk: bool = False, preroll: bool = True
    ) -> None:
        self.turn_id += 1
        self.trigger = trigger
        self.push_to_talk = push_to_talk
        self.answer_over = False
        self.playback_drained = True
        self._awaiting_tool_answer = False
        self._effects.append(Publish(TurnStarted(now, self.turn_id, trigger)))
        if trigger in ("button", "push_to_talk", "wakeword"):
            self._earcon("wake")
        self._effects.append(StartUpstream(with_preroll=preroll))
        self._go(State.LISTENING, now, f"turn {self.turn_id} started by {trigger}")

    def _stop_answer(self, outcome: str) -> None:
        self._effects += [FlushPlayback(), CancelResponse()]
        self._end_turn(outcome)

    def _commit(self, now: float, reason: str) -> None:
        self._effects += [StopUpstream(), CommitInput()]
        self._earcon("listening_end")
        self.push_to_talk = False
        self._go(State.THINKING, now, reason)

    # --- transitions -----------------------------------------------------------------------

    def _idle_speech_started(self, event: TurnInput, now: float) -> None:
        if self.wake == "vad":
            self._start_turn(now, "vad")

    def _idle_wake_word(self, event: TurnInput, now: float) -> None:
        if self.wake == "wakeword":
            self._start_turn(now, "wakeword", preroll=False)

    def _idle_tapped(self, event: TurnInput, now: float) -> None:
        if self._press_stopped_answer:
            self._press_stopped_answer = False  # this tap's press already stopped an answer
            return
        self._start_turn(now, "button", preroll=False)

    def _any_ptt_started(self, event: TurnInput, now: float) -> None:
        self._press_stopped_answer = False
        if self.state in (State.SPEAKING, State.THINKING):
            self._stop_answer("interrupted")
        elif self.state is State.LISTENING:
            self.push_to_talk = True  # already streaming: keep the turn, end it on release
            self._arm(now + max(self.timeouts.max_utterance_s, 60.0), "max_utterance")
            return
        self._start_turn(now, "push_to_talk", push_to_talk=True, preroll=False)

    def _listening_speech_ended(self, event: TurnInput, now: float) -> None:
        assert isinstance(event, SpeechEnded)
        if self.push_to_talk:
            return  # the release ends a push-to-talk turn, not a pause
        if event.no_speech:
            self._effects += [StopUpstream(), ClearInput()]
            self._end_turn("empty")
            self._go(State.IDLE, now, "no speech heard")
            return
        self._commit(now, "speech ended")

    def _listening_ptt_ended(self, event: TurnInput, now: float) -> None:
        if self.push_to_talk:
            self._commit(now, "push-to-talk released")

    def _listening_tapped(self, event: TurnInput, now: float) -> None:
        if self._press_stopped_answer:
            # The release of the press that stopped the answer, after speech reopened a
            # turn while the button was down: not "done talking".
            self._press_stopped_answer = False
            return
        self._commit(now, "button tapped: done talking")

    def _thinking_audio(self, event: TurnInput, now: float) -> None:
        self.playback_drained = False
        self._go(State.SPEAKING, now, "answer audio started")

    def _thinking_tool_round(self, event: TurnInput, now: float) -> None:
        self._arm(
            now + self.timeouts.answer_timeout_s, "answer_timeout"
        )  # the model will speak next

    def _thinking_answer_finished(self, event: TurnInput, now: float) -> None:
        assert isinstance(event, AnswerFinished)
        # Finished without any audio (text-only or empty): nothing to play.
        self._effects.append(StopUpstream())
        self._end_turn("no_audio")
        self._go(State.IDLE, now, "answer had no audio")

    def _speaking_audio(self, event: TurnInput, now: float) -> None:
        self.playback_drained = False
        self._awaiting_tool_answer = False
        if self._deadline_kind == "audio_stall":
            self._arm(self._state_since + self.timeouts.max_answer_s, "max_answer")

    def _speaking_answer_finished(self, event: TurnInput, now: float) -> None:
        self.answer_over = True
        if self.playback_drained:
            self._end_turn("answered")
            self._go(State.IDLE, now, "answer spoken")

    def _speaking_tool_round(self, event: TurnInput, now: float) -> None:
        # "Let me look that up" was spoken, a tool runs, more audio follows: the silence until
        # then is tool time + model latency (an answer wait), not audio_stall_s inside an
        # answer, which would cut the turn before the answer proper arrives.
        self._awaiting_tool_answer = True
        if self._deadline_kind == "audio_stall":
            self._arm(now + self.timeouts.answer_timeout_s, "audio_stall")

    def _speaking_drained(self, event: TurnInput, now: float) -> None:
        self.playback_drained = True
        if self._failed_after_playback:
            self._fail(now, self._failed_after_playback)
        elif self.answer_over:
            self._end_turn("answered")
            self._go(State.IDLE, now, "answer spoken")
        else:
            t = self.timeouts
            wait_s = t.answer_timeout_s if self._awaiting_tool_answer else t.audio_stall_s
            self._arm(now + wait_s, "audio_stall")

    def _barge_in(self, event: TurnInput, now: float) -> None:
        if self.wake != "vad":
            return  # wake word / button modes: speech alone does not interrupt
        self._stop_answer("interrupted")
        self._start_turn(now, "barge_in")

    def _thinking_speech_started(self, event: TurnInput, now: float) -> None:
        # The person goes on before any answer was heard (a pause inside the question ended
        # the utterance): drop the pending answer and listen to the rest. Not "interrupted":
        # nobody heard an answer; the question continues into the next turn, whose answer
        # the model gives with both parts in its context.
        if self.wake != "vad":
            return
        self._stop_answer("continued")
        self._start_turn(now, "continuation")

    def _wake_word_while_answering(self, event: TurnInput, now: float) -> None:
        # "Okay Nabu, stop": in wake word mode the wake word is how speech interrupts.
        if self.wake != "wakeword":
            return
        self._stop_answer("interrupted")
        self._start_turn(now, "wakeword", preroll=False)

    def _pressed_while_answering(self, event: TurnInput, now: float) -> None:
        self._press_stopped_answer = True
        self._stop_answer("stopped_by_button")
        self._effects.append(StopUpstream())
        self._go(State.IDLE, now, "stopped by button")

    def _mute(self, event: TurnInput, now: float) -> None:
        if self.state is State.LISTENING:
            self._effects += [StopUpstream(), ClearInput()]
            self._end_turn("cancelled")
        elif self.state in (State.THINKING, State.SPEAKING):
            self._stop_answer("cancelled")
            self._effects.append(StopUpstream())
        self.push_to_talk = False
        self._earcon("mute_on")
        self._go(State.MUTED, now, "muted")

    def _unmute(self, event: TurnInput, now: float) -> None:
        self._earcon("mute_off")
        self._go(State.IDLE, now, "unmuted")

    def _upstream_failed(self, event: TurnInput, now: float) -> None:
        assert isinstance(event, UpstreamFailed)
        self.error_latched = self.error_latched or event.latch
        if event.after_playback and self.state is State.SPEAKING and not self.playback_drained:
            self._failed_after_playback = event.reason  # PlaybackDrained ends the turn
            return
        if self.state in (State.LISTENING, State.THINKING, State.SPEAKING):
            self._effects += [StopUpstream(), FlushPlayback()]
        self._fail(now, event.reason)

    def _fail(self, now: float, reason: str) -> None:
        if self.state in (State.LISTENING, State.THINKING, State.SPEAKING):
            self._end_turn("error")
        self.push_to_talk = False
        self._earcon("error")
        self._go(State.ERROR, now, reason)

    def _error_failed_again(self, event: TurnInput, now: float) -> None:
        assert isinstance(event, UpstreamFailed)
        self.error_latched = self.error_latched or event.latch

    def _device_recovered(self, event: TurnInput, now: float) -> None:
        was_latched, self.error_latched = self.error_latched, False
        if self.state is State.ERROR and was_latched:
            self._go(State.IDLE, now, "audio device is back")

    def _error_speech_started(self, event: TurnInput, now: float) -> None:
        pass  # shown as ERROR until error_hold_s passes; the adapter decides when to retry


S = State
_ALL = tuple(State)
_ACTIVE = (S.LISTENING, S.THINKING, S.SPEAKING)

TRANSITIONS: dict[tuple[State, type], Handler] = {
    (S.IDLE, SpeechStarted): TurnMachine._idle_speech_started,
    (S.IDLE, WakeWordDetected): TurnMachine._idle_wake_word,
    (S.IDLE, ButtonTapped): TurnMachine._idle_tapped,
    (S.IDLE, PushToTalkStarted): TurnMachine._any_ptt_started,
    (S.LISTENING, PushToTalkStarted): TurnMachine._any_ptt_started,
    (S.THINKING, PushToTalkStarted): TurnMachine._any_ptt_started,
    (S.SPEAKING, PushToTalkStarted): TurnMachine._any_ptt_started,
    (S.ERROR, PushToTalkStarted): TurnMachine._any_ptt_started,
    (S.ERROR, ButtonTapped): TurnMachine._idle_tapped,
    (S.LISTENING, SpeechEnded): TurnMachine._listening_speech_ended,
    (S.LISTENING, PushToTalkEnded): TurnMachine._listening_ptt_ended,
    (S.LISTENING, ButtonTapped): TurnMachine._listening_tapped,
    (S.THINKING, AnswerAudioReceived): TurnMachine._thinking_audio,
    (S.THINKING, ToolRoundFinished): TurnMachine._thinking_tool_round,
    (S.THINKING, AnswerFinished): TurnMachine._thinking_answer_finished,
    (S.THINKING, SpeechStarted): TurnMachine._thinking_speech_started,
    (S.THINKING, ButtonPressed): TurnMachine._pressed_while_answering,
    (S.THINKING, WakeWordDetected): TurnMachine._wake_word_while_answering,
    (S.SPEAKING, WakeWordDetected): TurnMachine._wake_word_while_answering,
    (S.SPEAKING, AnswerAudioReceived): TurnMachine._speaking_audio,
    (S.SPEAKING, AnswerFinished): TurnMachine._speaking_answer_finished,
    (S.SPEAKING, ToolRoundFinished): TurnMachine._speaking_tool_round,
    (S.SPEAKING, PlaybackDrained): TurnMachine._speaking_drained,
    (S.SPEAKING, SpeechStarted): TurnMachine._barge_in,
    (S.SPEAKING, ButtonPressed): TurnMachine._pressed_while_answering,
    (S.ERROR, SpeechStarted): TurnMachine._error_speech_started,
    (S.MUTED, MuteToggled): TurnMachine._unmute,
    **{
        (s, MuteToggled): TurnMachine._mute
        for s in (S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING, S.ERROR)
    },
    **{
        (s, UpstreamFailed): TurnMachine._upstream_failed
        for s in (S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING)
    },
    (S.ERROR, UpstreamFailed): TurnMachine._error_failed_again,
    **{(s, DeviceRecovered): TurnMachine._device_recovered for s in State},
}

# Explicit no-ops: inputs that can legitimately arrive late or out of place.
NO_OPS: frozenset[tuple[State, type]] = frozenset(
    {
        # Server traffic of a turn that already ended (barge-in, timeout, mute, button stop).
        *((s, AnswerAudioReceived) for s in (S.IDLE, S.LISTENING, S.MUTED, S.ERROR)),
        *((s, AnswerFinished) for s in (S.IDLE, S.LISTENING, S.MUTED, S.ERROR)),
        *((s, ToolRoundFinished) for s in (S.IDLE, S.LISTENING, S.MUTED, S.ERROR)),
        *((s, PlaybackDrained) for s in (S.IDLE, S.LISTENING, S.THINKING, S.MUTED, S.ERROR)),
        # The endpointer keeps running; its events matter only while listening.
        *((s, SpeechEnded) for s in (S.IDLE, S.THINKING, S.SPEAKING, S.MUTED, S.ERROR)),
        (S.LISTENING, SpeechStarted),
        (S.MUTED, SpeechStarted),
        # A press edge only matters while an answer can be stopped; taps/holds follow it.
        *((s, ButtonPressed) for s in (S.IDLE, S.LISTENING, S.MUTED, S.ERROR)),
        *((s, ButtonTapped) for s in (S.THINKING, S.SPEAKING, S.MUTED)),
        (S.MUTED, PushToTalkStarted),
        *((s, PushToTalkEnded) for s in (S.IDLE, S.THINKING, S.SPEAKING, S.MUTED, S.ERROR)),
        *((s, WakeWordDetected) for s in (S.LISTENING, S.MUTED, S.ERROR)),
        (S.MUTED, UpstreamFailed),
    }
)


def turn_input_for_gesture(gesture: object, state: State) -> TurnInput | None:
    """Map a button gesture (``kiosk.core.button``) to the turn input it means here.

    The gesture classifier knows timing; the turn machine knows meaning. A mute *switch*
    states a position, so it toggles only when the position differs from the state.
    """
    from kiosk.core import button

    match gesture:
        case button.ButtonPressed():
            return ButtonPressed()
        case button.ButtonTapped():
            return ButtonTapped()
        case button.PushToTalkStarted():
            return PushToTalkStarted()
        case button.PushToTalkEnded():
            return PushToTalkEnded()
        case button.MuteToggled():
            return MuteToggled()
        case button.MuteSwitchChanged(muted=muted):
            return MuteToggled() if muted != (state is State.MUTED) else None
    return None

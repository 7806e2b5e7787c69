"""Hypothesis fuzzing of server-event handling: RealtimeSession parsing and the turn machine.

Whatever the server (or a broken proxy) sends — not JSON, unknown types, wrong field types,
bad base64, huge numbers, events out of order — the session turns it into typed events
without raising, and the turn machine driven by those events never raises anything but
InvalidTransition (state unchanged), never sits in an active state without a deadline, and
returns to IDLE once the deadlines pass.
"""

from __future__ import annotations

import base64
import json
import typing
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core import realtime as rt
from kiosk.core import turns as tm
from kiosk.core.events import State
from kiosk.errors import InvalidTransition

DIALECTS: list[rt.Dialect] = ["ga", "beta"]
SERVER_EVENT_TYPES: tuple[type, ...] = typing.get_args(rt.ServerEvent)
ACTIVE = (State.LISTENING, State.THINKING, State.SPEAKING, State.ERROR)
FUZZ = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# --- strategies ------------------------------------------------------------------------------
# Cheap to draw (fuzzing speed is data generation), but biased towards the values that break
# parsers: wrong types, huge ints that float() cannot hold, NaN/inf, negative counts.

weird: st.SearchStrategy[object] = st.sampled_from(
    [None, True, False, 0, -1, 2**63, 10**400, -(10**400), 1e308, 1.5, "", "3", [], {}]
)
scalars = st.one_of(
    weird,
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)
ids = st.one_of(st.sampled_from(["resp_1", "resp_2", "item_1", "call_1", ""]), weird)
numbers = st.one_of(weird, st.integers(min_value=-5, max_value=10**6), st.floats(allow_nan=True))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


deltas = st.one_of(
    st.binary(max_size=32).map(lambda b: _b64(b[: len(b) // 2 * 2])),  # valid PCM16
    st.sampled_from(
        [_b64(b"\x01"), _b64(b"\x01\x02\x03"), "====", "QQ", "not base64!", "\u3042", "QUJD\n"]
    ),
    st.text(max_size=12),
    weird,
)


def obj(
    required: dict[str, st.SearchStrategy[object]], optional: dict[str, st.SearchStrategy[object]]
) -> st.SearchStrategy[object]:
    """A dict with these keys, or (rarely) some other JSON value in its place."""
    return st.one_of(st.fixed_dictionaries(required, optional=optional), weird)


usages = obj(
    {},
    {
        "input_tokens": numbers,
        "output_tokens": numbers,
        "input_token_details": obj(
            {}, {"text_tokens": numbers, "audio_tokens": numbers, "cached_tokens": numbers}
        ),
        "output_token_details": obj({}, {"text_tokens": numbers, "audio_tokens": numbers}),
    },
)
function_call_items = obj(
    {"type": st.sampled_from(["function_call", "message", 3])},
    {
        "call_id": ids,
        "name": st.sampled_from(["search", "report_grounding", "", 7]),
        "arguments": json_values,
    },
)
responses = obj(
    {},
    {
        "id": ids,
        "status": st.sampled_from(["completed", "cancelled", "failed", "incomplete", None, 5]),
        "status_details": json_values,
        "usage": usages,
        "output": st.one_of(st.lists(function_call_items, max_size=2), weird),
    },
)
rate_limit_entries = obj(
    {}, {"name": scalars, "limit": numbers, "remaining": numbers, "reset_seconds": numbers}
)
errors = obj(
    {},
    {
        "code": st.one_of(
            st.sampled_from([*sorted(rt.BENIGN_ERROR_CODES), "server_error", "invalid_api_key"]),
            weird,
        ),
        "type": scalars,
        "message": scalars,
    },
)

# Per event type, the fields its parser reads (any may be missing or of the wrong type).
FIELDS: dict[str, dict[str, st.SearchStrategy[object]]] = {
    "session.created": {"session": obj({}, {"id": scalars})},
    "input_audio_buffer.committed": {"item_id": ids},
    "input_audio_buffer.speech_started": {"audio_start_ms": numbers},
    "input_audio_buffer.speech_stopped": {"audio_end_ms": numbers},
    "conversation.item.input_audio_transcription.completed": {
        "item_id": ids,
        "transcript": scalars,
    },
    "response.created": {"response": obj({}, {"id": ids})},
    "response.audio.delta": {"delta": deltas, "item_id": ids, "response_id": ids},
    "response.output_audio.delta": {"delta": deltas, "item_id": ids, "response_id": ids},
    "response.audio_transcript.delta": {"delta": scalars, "response_id": ids},
    "response.output_audio_transcript.delta": {"delta": scalars, "response_id": ids},
    "response.function_call_arguments.done": {
        "call_id": ids,
        "name": st.sampled_from(["search", "", 1]),
        "arguments": scalars,
        "response_id": ids,
    },
    "response.output_item.done": {"item": function_call_items},
    "response.done": {"response": responses},
    "extension.middle_tier_tool_response": {"tool_name": scalars, "tool_result": scalars},
    "error": {"error": errors},
    "rate_limits.updated": {
        "rate_limits": st.one_of(st.lists(rate_limit_entries, max_size=3), weird)
    },
}
OTHER_TYPES = [
    "session.updated",
    "conversation.item.created",
    "mcp_list_tools.in_progress",
    "totally.unknown",
    "",
]


def _event_of(kind: str) -> st.SearchStrategy[dict[str, object]]:
    fields = FIELDS.get(kind, {"x": json_values})
    return st.fixed_dictionaries({"type": st.just(kind)}, optional=fields)


server_events = st.one_of(
    st.sampled_from([*FIELDS, *OTHER_TYPES]).flatmap(_event_of),
    st.fixed_dictionaries({"type": weird}, optional={"response": responses}),
)


def frame_text(event: object) -> str:
    return json.dumps(event, allow_nan=True)


raw_frames = st.one_of(
    st.text(max_size=200),
    server_events.map(frame_text).map(lambda s: s[: len(s) // 2]),  # truncated JSON
    json_values.map(frame_text),
    st.sampled_from(["[" * 5000 + "]" * 5000, '{"type":' * 3000, "\x00binary frame", "null", "{}"]),
)
frames = st.one_of(server_events.map(frame_text), raw_frames)


def assert_typed(events: list[rt.ServerEvent]) -> None:
    for event in events:
        assert isinstance(event, SERVER_EVENT_TYPES), f"untyped event {event!r}"


def assert_client_frames_are_json(session: rt.RealtimeSession) -> None:
    for text in session.data_to_send():
        assert isinstance(json.loads(text).get("type"), str)


# --- 1. the parser alone ---------------------------------------------------------------------


@settings(FUZZ, max_examples=4000)
@given(text=frames, dialect=st.sampled_from(DIALECTS), middle_tier=st.booleans())
def test_any_server_frame_becomes_typed_events_without_raising(
    text: str, dialect: rt.Dialect, middle_tier: bool
) -> None:
    if middle_tier and dialect == "ga":
        dialect = "beta"
    session = rt.RealtimeSession(
        dialect, rt.SessionOptions(instructions="x"), middle_tier=middle_tier
    )
    session.receive_text(text)
    assert_typed(session.events_received())


@settings(FUZZ, max_examples=1200)
@given(
    script=st.lists(server_events.map(frame_text), min_size=1, max_size=12),
    dialect=st.sampled_from(DIALECTS),
)
def test_any_sequence_of_server_events_keeps_session_consistent(
    script: list[str], dialect: rt.Dialect
) -> None:
    session = rt.RealtimeSession(dialect, rt.SessionOptions(instructions="x"))
    session.configure()
    for text in script:
        active_before = session.response_active
        session.receive_text(text)
        events = session.events_received()
        assert_typed(events)
        for event in events:
            if isinstance(event, rt.ResponseFinished):
                # A done for another response id is reported stale and must not end (or
                # cut) the answer in progress; any other done ends it.
                assert session.response_active == (active_before if event.stale else False)
                assert event.usage.input_total >= 0 and event.usage.output_total >= 0
        # The client side still works whatever the server did.
        session.append_audio(b"\x00\x00" * 10)
        session.cancel_response()
        session.truncate_answer(123)
        assert_client_frames_are_json(session)


def test_huge_frame_is_rejected_not_parsed() -> None:
    session = rt.RealtimeSession("ga", rt.SessionOptions(instructions="x"))
    session.receive_text(
        '{"type":"error","error":{"message":"' + "x" * (rt.MAX_SERVER_TEXT_CHARS + 1) + '"}}'
    )
    (event,) = session.events_received()
    assert isinstance(event, rt.ServerEventRejected) and "too large" in event.reason


def test_every_documented_error_code_becomes_server_error_with_benign_flag() -> None:
    documented = {
        "input_audio_buffer_commit_empty": True,
        "conversation_already_has_active_response": True,
        "response_cancel_not_active": True,
        "invalid_request_error": False,
        "invalid_api_key": False,
        "session_expired": False,
        "rate_limit_exceeded": False,
        "server_error": False,
        "invalid_value": False,
        "unknown_parameter": False,
        "insufficient_quota": False,
    }
    session = rt.RealtimeSession("beta", rt.SessionOptions(instructions="x"))
    for code, benign in documented.items():
        session.receive_text(
            json.dumps({"type": "error", "error": {"type": "x", "code": code, "message": "m"}})
        )
        (event,) = session.events_received()
        assert event == rt.ServerError(code=code, message="m", benign=benign)


# --- 2. session + turn machine, as the app glues them ----------------------------------------

LOCAL_INPUTS = st.sampled_from(
    [
        tm.SpeechStarted(),
        tm.SpeechEnded(),
        tm.SpeechEnded(no_speech=True),
        tm.ButtonPressed(),
        tm.ButtonTapped(),
        tm.PushToTalkStarted(),
        tm.PushToTalkEnded(),
        tm.MuteToggled(),
        tm.PlaybackDrained(),
        tm.UpstreamFailed("link lost"),
    ]
)


@dataclass
class Rig:
    """The app's glue in miniature: server events -> turn inputs, effects -> session calls."""

    session: rt.RealtimeSession
    machine: tm.TurnMachine
    now: float = 0.0
    refused: list[str] = field(default_factory=list)

    def feed(self, event: tm.TurnInput) -> None:
        before = self.machine.state
        try:
            effects = self.machine.handle(event, self.now)
        except InvalidTransition as exc:
            assert self.machine.state is before, "InvalidTransition must leave the state unchanged"
            self.refused.append(str(exc))
            return
        self.apply(effects)

    def apply(self, effects: list[tm.Effect]) -> None:
        for effect in effects:
            match effect:
                case tm.StartUpstream():
                    self.session.append_audio(b"\x01\x00" * 240)
                case tm.CommitInput():
                    self.session.commit()
                    self.session.create_response()
                case tm.ClearInput():
                    self.session.clear_input()
                case tm.CancelResponse():
                    self.session.cancel_response()
                    self.session.truncate_answer(500)
                case tm.StopUpstream() | tm.FlushPlayback() | tm.Publish() | tm.EndTurn():
                    pass
                case _:
                    typing.assert_never(effect)
        assert_client_frames_are_json(self.session)

    def server(self, text: str) -> None:
        self.session.receive_text(text)
        for event in self.session.events_received():
            assert isinstance(event, SERVER_EVENT_TYPES)
            match event:
                case rt.AudioDelta():
                    self.feed(tm.AnswerAudioReceived())
                case rt.ResponseFinished(answer_over=True, had_audio=had_audio):
                    self.feed(tm.AnswerFinished(had_audio=had_audio))
                case rt.ResponseFinished(function_calls=n) if n > 0:
                    self.feed(tm.ToolRoundFinished())
                case rt.ServerError(benign=False) as err:
                    self.feed(tm.UpstreamFailed(f"server error {err.code}"))
                case rt.ServerSpeechStarted():
                    self.feed(tm.SpeechStarted())
                case _:
                    pass

    def advance(self, dt: float) -> None:
        self.now += dt
        deadline = self.machine.next_deadline()
        if deadline is not None and deadline <= self.now:
            self.apply(self.machine.on_deadline(self.now))

    def check_not_stuck(self) -> None:
        if self.machine.state in ACTIVE:
            assert self.machine.next_deadline() is not None, (
                f"{self.machine.state} without a deadline"
            )


steps = st.one_of(
    st.tuples(st.just("local"), LOCAL_INPUTS),
    st.tuples(st.just("server"), server_events.map(frame_text)),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=20.0)),
)


@settings(FUZZ, max_examples=1200)
@given(
    script=st.lists(steps, max_size=30),
    dialect=st.sampled_from(DIALECTS),
    wake=st.sampled_from(["vad", "button", "wakeword"]),
)
def test_any_mix_of_server_events_and_local_inputs_ends_sane(
    script: list[tuple[str, object]], dialect: rt.Dialect, wake: str
) -> None:
    rig = Rig(
        rt.RealtimeSession(dialect, rt.SessionOptions(instructions="x")),
        tm.TurnMachine(tm.TurnTimeouts(), wake=wake),
    )
    for kind, value in script:
        if kind == "local":
            rig.feed(value)  # type: ignore[arg-type]
        elif kind == "server":
            rig.server(value)  # type: ignore[arg-type]
        else:
            rig.advance(value)  # type: ignore[arg-type]
        rig.check_not_stuck()
    assert not rig.refused, rig.refused[:3]
    # With nobody talking and the server silent, every turn ends: back to IDLE (or MUTED).
    for _ in range(6):
        rig.feed(tm.PlaybackDrained())
        rig.advance(200.0)
    assert rig.machine.state in (State.IDLE, State.MUTED)

"""Fault injection: the running pipeline against the fake Realtime server's fault hooks.

Real webrtcvad, real websockets on 127.0.0.1, accelerated (simulated) time. Each test ends
with the kiosk IDLE and a clean turn answered, and the server saw only valid client events.
"""

from __future__ import annotations

import logging
import random

import pytest

from kiosk.core.events import EarconRequested, ErrorReported, State
from kiosk.net.policy import Hold
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .rig import SECRET_KEY, PipelineRig, max_in_any_minute, rig_config


def script() -> FakeScript:
    return FakeScript(
        realtime_pacing=False, call_search=False, call_grounding=False, answer_audio_s=0.6
    )


async def started(
    server: FakeRealtimeServer, toml: str = "", *, realtime: str = "", seed: int = 1
) -> PipelineRig:
    return PipelineRig(rig_config(server.url, toml, realtime=realtime), server, seed=seed)


def assert_no_secret(caplog: pytest.LogCaptureFixture, *texts: object) -> None:
    """Kiosk's own log lines never carry the key, even before the journal handler's
    redaction (third-party DEBUG lines are capped/redacted by kiosk.service.logs)."""
    for record in caplog.records:
        if not record.name.startswith("kiosk"):
            continue
        assert SECRET_KEY not in record.getMessage(), record.getMessage()
        assert SECRET_KEY not in (record.exc_text or "")
    for text in texts:
        assert SECRET_KEY not in repr(text)


async def test_clean_turn_is_answered_over_one_connection() -> None:
    async with FakeRealtimeServer(
        "ga", expected_auth=("bearer", SECRET_KEY), script=script()
    ) as server:
        rig = await started(server)
        try:
            summary = await rig.turn()
        finally:
            await rig.aclose()
    assert summary is not None and summary.outcome == "answered"
    assert len(rig.connect_times) == 1
    assert server.validation_errors == []


async def test_drop_while_listening_reconnects_and_replays_the_utterance_once() -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server)
        try:
            server.drop_next(after_events=3)  # session.update, then two appends: mid-utterance
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "answered"
            assert len(server.connections) == 2
            # The whole utterance reached the second connection (replayed, then the rest).
            second = server.connections[1].received_types()
            assert "input_audio_buffer.commit" in second
            appended = sum(
                1
                for e in server.connections[1].received
                if e.get("type") == "input_audio_buffer.append"
            )
            assert appended >= 3
            assert (await rig.turn()).outcome == "answered"  # type: ignore[union-attr]
        finally:
            await rig.aclose()
    assert server.validation_errors == []


async def test_drop_mid_answer_ends_turn_with_error_earcon_and_next_turn_works() -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server)
        try:
            server.drop_next(mid_audio=True)
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "error"
            assert EarconRequested("error") in rig.events
            assert any(
                isinstance(e, ErrorReported) and e.code == "connection_lost" for e in rig.events
            )
            await rig.recover()
            assert rig.state is State.IDLE
            assert (await rig.turn()).outcome == "answered"  # type: ignore[union-attr]
        finally:
            await rig.aclose()
    assert server.validation_errors == []


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refusal_holds_error_without_retry_storm(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server)
        try:
            server.fail_handshakes(status, times=50)
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "error"
            for _ in range(5):  # people keep trying for minutes
                await rig.recover()
                await rig.silence(30.0)
                await rig.turn()
            assert len(server.rejections) == 1  # no retry storm: one refused handshake, then hold
            assert rig.pipeline.policy.hold is Hold.AUTH
            assert any(
                r.levelno >= logging.ERROR and "API key" in r.getMessage() for r in caplog.records
            )
        finally:
            await rig.aclose()
    assert_no_secret(caplog, rig.events, rig.summaries())


async def test_rate_limited_handshake_waits_for_retry_after_then_connects() -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server)
        try:
            server.fail_handshakes(429, times=1, retry_after_s=20)
            refused_at = rig.clock()
            assert (await rig.turn()).outcome == "error"  # type: ignore[union-attr]
            await rig.recover()
            await rig.turn()  # within the 20 s: must not knock again
            assert len(rig.connect_times) == 1
            await rig.silence(25.0)
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "answered"
            assert rig.connect_times[1] - refused_at >= 20.0
        finally:
            await rig.aclose()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_handshake_is_retried_and_next_turn_answers(status: int) -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server)
        try:
            server.fail_handshakes(status, times=1)
            first = await rig.turn()
            assert first is not None and first.outcome == "error"
            await rig.recover()
            await rig.silence(5.0)
            assert (await rig.turn()).outcome == "answered"  # type: ignore[union-attr]
        finally:
            await rig.aclose()


ERROR_CODES = [
    "server_error",
    "invalid_request_error",
    "rate_limit_exceeded",
    "session_expired",
    "insufficient_quota",
    "invalid_api_key",
    "input_audio_buffer_commit_empty",
    "conversation_already_has_active_response",
    "response_cancel_not_active",
]


@pytest.mark.parametrize("code", ERROR_CODES)
async def test_error_event_after_commit_ends_turn_and_next_turn_answers(code: str) -> None:
    async with FakeRealtimeServer("beta", script=script()) as server:
        rig = await started(
            server,
            "[turns]\nanswer_timeout_s = 1.5\n",
            realtime='provider = "azure-preview"\ndeployment = "d"',
        )
        try:
            server.script.error_after_commit = code
            summary = await rig.turn()
            assert summary is not None
            # Fatal codes end the turn at once; benign ones are swallowed and the answer
            # timeout ends the turn (the fake never answers after the error).
            assert summary.outcome in ("error", "no_answer")
            await rig.recover()
            server.script.error_after_commit = None
            assert (await rig.turn()).outcome == "answered"  # type: ignore[union-attr]
            assert rig.state is State.IDLE
        finally:
            await rig.aclose()


async def test_silent_server_hits_answer_timeout_and_kiosk_stays_usable() -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server, "[turns]\nanswer_timeout_s = 1.5\n")
        try:
            server.script.silent = True
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "no_answer"
            assert rig.state is State.IDLE
        finally:
            await rig.aclose()


@pytest.mark.parametrize("garbage", ["non_json", "unknown_type", "bad_base64"])
async def test_garbage_frames_are_ignored_and_the_answer_still_plays(garbage: str) -> None:
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server)
        try:
            server.script.send_garbage = garbage  # type: ignore[assignment]
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "answered"
        finally:
            await rig.aclose()


async def test_hundred_drops_at_random_points_no_crash_next_turn_answers_budget_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's figure: 100 dropped connections at random points -> 0 crashes, every
    following turn succeeds, and no simulated minute sees more than the budget."""
    caplog.set_level(logging.INFO)
    rng = random.Random(7)
    outcomes: dict[str, int] = {}
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server, seed=7)
        try:
            for i in range(100):
                if rng.random() < 0.3:
                    server.drop_next(mid_audio=True)
                else:
                    server.drop_next(after_events=rng.randint(1, 40))
                faulty = await rig.turn()
                if faulty is not None:
                    outcomes[faulty.outcome] = outcomes.get(faulty.outcome, 0) + 1
                await rig.recover()
                server.drop_next(after_events=10_000)  # disarm: nothing else drops
                await rig.silence(rng.uniform(2.0, 20.0))
                clean = await rig.turn()
                assert clean is not None and clean.outcome == "answered", (
                    i,
                    clean,
                    rig.pipeline.policy.reason,
                )
                await rig.silence(rng.uniform(0.0, 5.0))
        finally:
            await rig.aclose()
    assert len(server.connections) >= 101  # every armed drop really cut a connection
    assert max_in_any_minute(rig.connect_times) <= rig.cfg.connection.max_new_per_minute
    assert not rig.subscriber_errors
    crashes = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and (r.exc_info or r.name == "asyncio")
    ]
    assert crashes == []
    assert server.validation_errors == []
    assert_no_secret(caplog, rig.events)
    assert sum(outcomes.values()) >= 90, outcomes
    print("faulty-turn outcomes:", outcomes, "connections:", len(rig.connect_times))


class StormServer(FakeRealtimeServer):
    """While ``storm`` is on, every connection is cut right after its first client event
    (a proxy or server policy that accepts the upgrade and then drops us)."""

    storm = False

    def take_drop_after_event(self) -> bool:
        return self.storm or super().take_drop_after_event()


async def test_connections_dying_at_once_stop_after_three_with_clear_error_then_heal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    storm = StormServer("ga", script=script())
    async with storm as server:
        rig = await started(server)
        try:
            storm.storm = True
            for _ in range(12):  # two simulated minutes of people trying every ~10 s
                await rig.turn()
                await rig.recover()
                await rig.silence(8.0)
            attempts_in_storm = len(rig.connect_times)
            assert rig.pipeline.policy.hold is Hold.QUICK_DEATHS
            assert attempts_in_storm == rig.cfg.connection.max_quick_failures  # then silence
            assert max_in_any_minute(rig.connect_times) <= rig.cfg.connection.max_new_per_minute
            assert any(
                r.levelno == logging.ERROR and "died within" in r.getMessage()
                for r in caplog.records
            )
            # Still held while the cooldown runs: nobody is answered, nothing connects.
            await rig.pass_time(600.0)
            await rig.turn()
            assert len(rig.connect_times) == attempts_in_storm
            # The fault is fixed; after the cooldown the next visitor's turn probes and works.
            storm.storm = False
            await rig.recover()
            await rig.pass_time(400.0)
            summary = await rig.turn()
            assert summary is not None and summary.outcome == "answered"
        finally:
            await rig.aclose()
    assert server.validation_errors == []


async def test_tight_budget_binds_under_repeated_drops_and_is_never_exceeded() -> None:
    outcomes: list[str] = []
    async with FakeRealtimeServer("ga", script=script()) as server:
        rig = await started(server, "[connection]\nmax_new_per_minute = 2\n")
        try:
            for _ in range(20):  # a busy lobby: a question every few seconds, answers cut
                server.drop_next(mid_audio=True)
                summary = await rig.turn()
                assert summary is not None
                outcomes.append(summary.outcome)
                await rig.recover()
                await rig.silence(2.0)
            minutes = (rig.clock() - rig.connect_times[0]) / 60.0
        finally:
            await rig.aclose()
    connections = len(rig.connect_times)
    assert max_in_any_minute(rig.connect_times) <= 2
    assert 2 <= connections <= 2 * (minutes + 1)
    # Turns the budget refused ended at once with an error (and the offline message),
    # instead of waiting or connecting anyway.
    assert set(outcomes) <= {"error", "answered"}
    assert outcomes.count("error") >= len(outcomes) - connections
    assert server.validation_errors == []

"""The API key never appears in a log line, an exception text or a report, even at DEBUG
with every library logging (websockets logs handshake headers at DEBUG)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from kiosk.errors import UpstreamRejected
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import realtime_endpoint
from kiosk.service.logs import setup_logging
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .rig import SECRET_KEY, PipelineRig, rig_config


@pytest.fixture
def daemon_log() -> Iterator[io.StringIO]:
    """The daemon's own log handler (with its redaction) at DEBUG, writing to a buffer."""
    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    buffer = io.StringIO()
    setup_logging("debug", journal=False, secrets=[SECRET_KEY], stream=buffer, env={})
    try:
        yield buffer
    finally:
        for handler in [h for h in root.handlers if h not in before_handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(before_level)
        logging.getLogger("websockets").setLevel(logging.NOTSET)


async def test_key_absent_from_debug_log_errors_and_summaries_through_refusal_and_answer(
    daemon_log: io.StringIO,
) -> None:
    script = FakeScript(
        realtime_pacing=False, call_search=False, call_grounding=False, answer_audio_s=0.4
    )
    async with FakeRealtimeServer(
        "ga", expected_auth=("bearer", SECRET_KEY), script=script
    ) as server:
        rig = PipelineRig(rig_config(server.url), server)
        try:
            server.fail_handshakes(401)
            refused = await rig.turn()
            rig.pipeline.policy.release(rig.clock())  # as a SIGHUP with a new key would
            await rig.recover()
            answered = await rig.turn()
        finally:
            await rig.aclose()
        with pytest.raises(UpstreamRejected) as refusal:
            server.fail_handshakes(403)
            await WebsocketLink.open(realtime_endpoint(rig.cfg), timeout_s=5.0)
    assert refused is not None and refused.outcome == "error"
    assert answered is not None and answered.outcome == "answered"
    text = daemon_log.getvalue()
    assert "connect" in text.lower() and len(text.splitlines()) > 20  # the log did run at DEBUG
    assert SECRET_KEY not in text
    assert SECRET_KEY not in str(refusal.value) and SECRET_KEY not in repr(refusal.value)
    assert SECRET_KEY not in repr(rig.summaries()) and SECRET_KEY not in repr(rig.events)
    assert SECRET_KEY not in repr(rig.cfg) and SECRET_KEY not in repr(realtime_endpoint(rig.cfg))

"""All four providers, as the server sees them: URL path and query, auth headers, dialect and
the session.update (validated by the fake server against the openai SDK's types)."""

from __future__ import annotations

import asyncio

import pytest

from kiosk.simulate import run_simulation
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .conftest import TIMEOUT_FACTOR, kiosk_config, speech_16k

KEY = "sk-test-provider-key-0123456789"


def provider_config(provider: str, endpoint: str, **extra: str):
    lines = [f'provider = "{provider}"', f'endpoint = "{endpoint}"']
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    env = {"OPENAI_API_KEY": KEY, "AZURE_OPENAI_API_KEY": KEY}
    return kiosk_config("[realtime]\n" + "\n".join(lines) + "\n", **env)


CASES = [
    # provider, dialect, mode, extra settings, expected path, expected query, auth header
    ("openai", "ga", "direct", {}, "/v1/realtime", {"model": "gpt-realtime"}, ("authorization", f"Bearer {KEY}")),
    ("azure", "ga", "direct", {"deployment": "kiosk-rt"}, "/openai/v1/realtime", {"model": "kiosk-rt"}, ("api-key", KEY)),
    (
        "azure-preview",
        "beta",
        "direct",
        {"deployment": "kiosk-rt", "api_version": "2024-10-01-preview"},
        "/openai/realtime",
        {"api-version": "2024-10-01-preview", "deployment": "kiosk-rt"},
        ("api-key", KEY),
    ),
    ("voicerag", "beta", "voicerag", {}, "/realtime", {}, None),
]


@pytest.mark.parametrize(("provider", "dialect", "mode", "extra", "path", "query", "auth"), CASES)
async def test_provider_connects_with_its_url_headers_and_session_update(
    tmp_path, wav_file, provider, dialect, mode, extra, path, query, auth
):
    async with FakeRealtimeServer(dialect, mode=mode, script=FakeScript(realtime_pacing=False)) as server:
        base = server.url.replace("ws://", "http://") if provider != "voicerag" else server.url + "/realtime"
        cfg = provider_config(provider, base, **extra)
        report = await asyncio.wait_for(
            run_simulation(cfg, [wav_file(speech_16k("en_restroom_espeak_16k.wav"))], tmp_path / "a.wav",
                           fast=True),
            timeout=60 * TIMEOUT_FACTOR,
        )
    assert server.validation_errors == []
    (conn,) = server.connections
    assert conn.path == path
    assert conn.query == query
    if auth is None:
        assert "authorization" not in conn.headers and "api-key" not in conn.headers
    else:
        name, value = auth
        assert conn.headers[name] == value
        other = "api-key" if name == "authorization" else "authorization"
        assert other not in conn.headers  # the key goes in exactly one header
    first = conn.received[0]
    assert first["type"] == "session.update"
    session = first["session"]
    if dialect == "ga":
        assert session["type"] == "realtime"
        assert session["audio"]["input"]["turn_detection"] is None  # local endpointing
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    else:
        assert session["turn_detection"] is None
        assert session["input_audio_format"] == "pcm16"
    if mode == "voicerag":
        assert "tools" not in session  # the middle tier runs the tools
    else:
        assert {t["name"] for t in session["tools"]} == {"search", "report_grounding"}
    assert report["turns"][0]["outcome"] == "answered"
    assert report["dialect"] == dialect


async def test_server_vad_mode_streams_pauses_and_lets_the_server_commit(tmp_path, wav_file):
    cfg = kiosk_config('[realtime]\nturn_detection = "server_vad"\n')
    async with FakeRealtimeServer("ga", script=FakeScript(realtime_pacing=False)) as server:
        report = await asyncio.wait_for(
            run_simulation(cfg, [wav_file(speech_16k("en_restroom_espeak_16k.wav"))], tmp_path / "a.wav",
                           fast=True, fake_server=server),
            timeout=60 * TIMEOUT_FACTOR,
        )
    assert server.validation_errors == []
    conn = server.connections[0]
    detection = conn.received[0]["session"]["audio"]["input"]["turn_detection"]
    assert detection["type"] == "server_vad"
    assert "input_audio_buffer.commit" not in conn.received_types()  # the server commits itself
    assert report["turns"][0]["outcome"] == "answered"

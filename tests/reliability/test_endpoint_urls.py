"""Issue 12 item 3: endpoint URLs never carry or print credentials, and malformed ones are
refused in one line that does not echo them.

In-process through the real config loader, then ``kiosk`` subprocesses (``check --online``,
``simulate``, ``run``) with the bad endpoint in the file, in ``KIOSK_REALTIME_ENDPOINT`` and
in ``--endpoint``, and a real websocket server that counts the Authorization headers a
handshake carries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from kiosk.audio.wav import write_wav
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import RealtimeEndpoint, realtime_endpoint

FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
KEY = "sk-test-endpoint-KEY-0123456789abcdef"
PASSWORD = "Pa55-W0rd-in-the-url"
USERINFO_URL = f"https://kiosk-admin:{PASSWORD}@res.openai.azure.com"

# (url, words the one-line error must contain, strings it must not show)
BAD_ENDPOINTS = [
    (USERINFO_URL, "user name or password", [PASSWORD, "kiosk-admin"]),
    (f"https://{PASSWORD}@res.openai.azure.com", "user name or password", [PASSWORD]),
    ("https://exa mple.com", "whitespace", ["exa mple"]),
    ("https://res.openai.azure.com:/", "empty port", ["res.openai"]),
    ("https://res.openai.azure.com:44x3", "malformed host or port", ["44x3"]),
    ("https://res_.openai..azure.com", "malformed host name", ["res_"]),
    (KEY, "looks like an API key", [KEY, KEY[:12]]),
    ("9f86d081884c7d659a2feaa0c55ad015", "looks like an API key", ["9f86d081884c"]),
    ("res.openai.azure.com", "no scheme", ["res.openai"]),
    (f"https://res.openai.azure.com/?api-key={PASSWORD}", "without ?query", [PASSWORD]),
]


def _azure(endpoint: str) -> str:
    return f'[realtime]\nprovider = "azure"\ndeployment = "rt"\nendpoint = "{endpoint}"\n'


@pytest.mark.parametrize(("url", "problem", "hidden"), BAD_ENDPOINTS)
def test_bad_realtime_endpoint_is_one_line_that_does_not_echo_it(
    url: str, problem: str, hidden: list[str]
) -> None:
    for toml, env, named in (
        (_azure(url), {}, "realtime.endpoint"),
        # From the environment, the one line names the variable (issue 15), not the file's key.
        (_azure("https://ok.openai.azure.com"), {"KIOSK_REALTIME_ENDPOINT": url},
         "KIOSK_REALTIME_ENDPOINT"),
    ):
        with pytest.raises(ConfigError) as err:
            load_config(toml, {"AZURE_OPENAI_API_KEY": KEY, **env})
        text = str(err.value)
        assert err.value.key == named and problem in text, text
        assert "\n" not in text and not any(h in text for h in hidden), text


@pytest.mark.parametrize(("url", "problem", "hidden"), BAD_ENDPOINTS[:6])
def test_bad_azure_search_endpoint_is_refused_the_same_way(
    url: str, problem: str, hidden: list[str]
) -> None:
    url = url.replace("res.openai.azure.com", "kb.search.windows.net")
    hidden = [h.replace("res.openai", "kb.search") for h in hidden]
    for backend in ("azure", "local"):  # `kiosk index push --azure` uses it with any backend
        toml = f'[rag]\nbackend = "{backend}"\nazure_index = "kb"\nazure_endpoint = "{url}"\n'
        with pytest.raises(ConfigError) as err:
            load_config(toml, {}, require_key=False)
        text = str(err.value)
        assert err.value.key == "rag.azure_endpoint" and problem in text, text
        assert not any(h in text for h in hidden), text


def test_voicerag_endpoint_with_userinfo_is_refused() -> None:
    url = f"wss://user:{PASSWORD}@rag.example.com/realtime"
    with pytest.raises(ConfigError) as err:
        load_config(f'[realtime]\nprovider = "voicerag"\nendpoint = "{url}"\n', {})
    assert "user name or password" in str(err.value) and PASSWORD not in str(err.value)


class HeaderCounter:
    """A websocket server that records every handshake's Authorization headers, all of them."""

    def __init__(self) -> None:
        self.authorizations: list[list[str]] = []
        self.port = 0

    def _process_request(self, connection: ServerConnection, request: Request) -> None:
        self.authorizations.append(request.headers.get_all("Authorization"))

    async def _handle(self, ws: ServerConnection) -> None:
        await ws.wait_closed()


@pytest.fixture
async def header_counter() -> AsyncIterator[HeaderCounter]:
    counter = HeaderCounter()
    async with serve(counter._handle, "127.0.0.1", 0, process_request=counter._process_request) as server:
        counter.port = next(iter(server.sockets)).getsockname()[1]
        yield counter


async def test_a_handshake_never_carries_two_authorization_headers(
    header_counter: HeaderCounter,
) -> None:
    cfg = load_config(
        f'[realtime]\nendpoint = "http://127.0.0.1:{header_counter.port}"\n', {"OPENAI_API_KEY": KEY}
    )
    link = await WebsocketLink.open(realtime_endpoint(cfg), timeout_s=5 * FACTOR)
    await link.close()
    assert header_counter.authorizations == [[f"Bearer {KEY}"]]
    # Settings built in code (not through the loader) with user:password@ still never connect.
    sneaky = dataclasses.replace(
        cfg,
        realtime=dataclasses.replace(
            cfg.realtime, endpoint=f"http://user:{PASSWORD}@127.0.0.1:{header_counter.port}"
        ),
    )
    with pytest.raises(ConfigError) as err:
        await WebsocketLink.open(realtime_endpoint(sneaky), timeout_s=5 * FACTOR)
    assert PASSWORD not in str(err.value)
    with pytest.raises(ConfigError):
        RealtimeEndpoint(f"ws://u:{PASSWORD}@127.0.0.1:1/v1/realtime", {}, "ga", False)
    with pytest.raises(ValueError):
        RealtimeEndpoint("ws://127.0.0.1:1/v1", {"Authorization": "a", "api-key": "b"}, "ga", False)
    assert len(header_counter.authorizations) == 1, header_counter.authorizations


async def _kiosk(tmp_path: Path, env: dict[str, str], *argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiosk.cli", *argv,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60 * FACTOR)
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def test_every_command_refuses_userinfo_in_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        '[realtime]\nprovider = "azure"\ndeployment = "rt"\n'
        'endpoint = "https://ok.openai.azure.com"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    wav = tmp_path / "q.wav"
    write_wav(wav, np.zeros(1600, dtype=np.int16), 16000)
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KIOSK_", "OPENAI", "AZURE", "NOTIFY_SOCKET", "CREDENTIALS"))
    }
    base["AZURE_OPENAI_API_KEY"] = KEY
    via_env = {**base, "KIOSK_REALTIME_ENDPOINT": USERINFO_URL}
    cfg = ("--config", str(config))
    runs = [
        (via_env, ("check", "--online", *cfg, "--skip", "audio")),
        (via_env, ("run", *cfg)),
        (base, ("simulate", *cfg, "--endpoint", USERINFO_URL, "--input", str(wav), "--output", "a.wav")),
        (base, ("run", *cfg, "--endpoint", USERINFO_URL)),
    ]  # fmt: skip
    for env, argv in runs:
        code, output = await _kiosk(tmp_path, env, *argv)
        assert PASSWORD not in output and "kiosk-admin" not in output, output
        named = "--endpoint" if "--endpoint" in argv else "KIOSK_REALTIME_ENDPOINT"
        assert f"{named}: must not contain a user name or password" in output, output
        assert code == 2, (argv, output)
        if argv[0] != "check":
            assert len(output.strip().splitlines()) == 1, output

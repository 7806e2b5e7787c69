"""Issue 12 item 1: no ``kiosk`` command ever prints an API key.

Every command runs as a real subprocess (``python -m kiosk.cli``) with an odd key in its
environment, against servers that echo the key back: a Realtime websocket server whose
``error`` event quotes the key it was given, and an Azure AI Search stand-in whose 403 body
does. The key must not appear in stdout or stderr, whatever the command prints (log lines,
server messages, exception texts, reports). Keys that cannot be a key (smart quotes, inner
whitespace) are refused with one line naming the variable.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from kiosk.audio.wav import read_wav_mono, write_wav

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
TIMEOUT_S = 60 * FACTOR
CORE = "sk-test-ECHOED-KEY-must-never-print-7c1d2e"  # what must never show
CR_KEY = CORE + "\r"  # a Windows-edited env file: trimmed, then used (and echoed)
SMART_KEY = "\u201c" + CORE + "\u201d"  # pasted from a chat window: refused
SPACED_KEY = CORE[:12] + " " + CORE[12:]  # refused


class RealtimeEcho:
    """A websocket server that answers each client event with an ``error`` quoting the
    credential it was sent (as some servers quote a bad key back)."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        self.events = 0
        self.url = ""

    def _process_request(self, connection: ServerConnection, request: Request) -> None:
        for name, value in request.headers.raw_items():
            if name.lower() in ("authorization", "api-key"):
                self.auth.append(value)

    async def _handle(self, ws: ServerConnection) -> None:
        said = self.auth[-1].removeprefix("Bearer ") if self.auth else ""
        async for _message in ws:
            self.events += 1
            error = {
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "message": f"Incorrect API key provided: {said}. You can find your key at ...",
                "param": None,
                "event_id": None,
            }
            await ws.send(json.dumps({"type": "error", "event_id": f"e{self.events}", "error": error}))

    async def __aenter__(self) -> RealtimeEcho:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._process_request)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()


class _SearchEchoHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        key = self.headers.get("api-key", "")
        body = json.dumps(
            {"error": {"code": "Forbidden", "message": f"Invalid api-key '{key}' for {self.path}"}}
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _echo


@pytest.fixture
def search_echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SearchEchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def realtime_echo() -> AsyncIterator[RealtimeEcho]:
    async with RealtimeEcho() as server:
        yield server


def _config(tmp_path: Path, realtime_url: str, search_url: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f"""
[realtime]
provider = "openai"
endpoint = "{realtime_url}"
transcription_model = ""

[turns]
answer_timeout_s = 2.0
error_hold_s = 0.5

[rag]
backend = "azure"
azure_endpoint = "{search_url}"
azure_index = "kiosk"
index_path = "{tmp_path / 'index.sqlite'}"

[gpio]
enabled = false

[earcons]
enabled = false

[service]
state_dir = "{tmp_path / 'state'}"
""",
        encoding="utf-8",
    )
    return path


def _question(tmp_path: Path) -> Path:
    speech = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", 16000)
    pcm = np.concatenate([np.zeros(8000, dtype=np.int16), speech, np.zeros(16000, dtype=np.int16)])
    path = tmp_path / "question.wav"
    write_wav(path, pcm.astype(np.int16), 16000)
    return path


def _env(key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KIOSK_", "OPENAI", "AZURE", "JOURNAL_STREAM", "NOTIFY_SOCKET"))
        and k != "CREDENTIALS_DIRECTORY"
    }
    env.update(OPENAI_API_KEY=key, AZURE_SEARCH_API_KEY=key)
    return env


async def _kiosk(
    env: dict[str, str], *argv: str, stop_after_s: float | None = None
) -> tuple[int, str]:
    """Run ``kiosk ARGV``; returns (exit code, stdout + stderr). ``stop_after_s``: SIGTERM then."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kiosk.cli",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    if stop_after_s is not None:
        try:
            await asyncio.wait_for(proc.wait(), stop_after_s)
        except TimeoutError:
            proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    return proc.returncode or 0, out.decode("utf-8", "replace") + err.decode("utf-8", "replace")


def _assert_no_key(command: str, output: str) -> None:
    for form in (CORE, CORE[:20], CORE[-20:]):
        assert form not in output, f"`kiosk {command}` printed the key:\n{output[-3000:]}"


async def test_every_command_masks_a_key_echoed_by_the_servers(
    tmp_path: Path, realtime_echo: RealtimeEcho, search_echo: str
) -> None:
    cfg = str(_config(tmp_path, realtime_echo.url, search_echo))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# Parking\n\nThe car park is on level B2.\n", encoding="utf-8")
    env = _env(CR_KEY)
    question = str(_question(tmp_path))
    out_wav = str(tmp_path / "answer.wav")
    index = str(tmp_path / "index.sqlite")
    runs = {
        "simulate": ("simulate", "--config", cfg, "--input", question, "--output", out_wav, "--fast"),
        "simulate --json -v": (
            "simulate", "--config", cfg, "--input", question, "--output", out_wav, "--fast",
            "--json", "-v",
        ),
        "check --online": ("check", "--online", "--config", cfg, "--skip", "audio", "--skip", "gpio"),
        "index add": ("index", "add", "--config", cfg, "--index", index, str(docs)),
        "index push": ("index", "push", "--azure", "--config", cfg, "--index", index),
        "search": ("search", "--config", cfg, "parking"),
    }  # fmt: skip
    outputs: dict[str, tuple[int, str]] = {}
    for name, argv in runs.items():
        outputs[name] = await _kiosk(env, *argv)
    outputs["run"] = await _kiosk(
        env, "run", "--config", cfg, "--input-wav", question, "--output-wav", out_wav, "-v",
        stop_after_s=12 * FACTOR,
    )  # fmt: skip
    for name, (_code, output) in outputs.items():
        _assert_no_key(name, output)
    # The key was trimmed and really used, and the servers really quoted it back.
    assert realtime_echo.auth and all(a == f"Bearer {CORE}" for a in realtime_echo.auth)
    assert realtime_echo.events > 0
    assert "Incorrect API key provided: ***" in outputs["simulate"][1]
    assert "Incorrect API key provided: ***" in outputs["run"][1]
    assert "Invalid api-key" in outputs["search"][1] and "***" in outputs["search"][1]
    assert "Invalid api-key" in outputs["index push"][1]
    assert outputs["check --online"][0] == 0, outputs["check --online"][1]


async def test_fake_server_logs_at_debug_with_the_same_redaction() -> None:
    """``kiosk fake-server -v`` logs each client event's type: a client may put anything
    there, the configured key included."""
    env = _env(CR_KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiosk.cli", "fake-server", "--port", "0", "-v",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    output = ""
    step = "start"
    try:
        async with asyncio.timeout(TIMEOUT_S / 2):
            while "listening on ws:" not in output:
                line = await proc.stdout.readline()
                assert line, f"fake-server exited: {output}"
                output += line.decode()
        url = output.split("listening on ws:", 1)[1].split()[0].join(("ws:", ""))
        from websockets.asyncio.client import connect

        # Each step has its own deadline, so a hang (seen under load and when the suite ran
        # with SIGINT ignored, before the fake-server installed its own handlers)
        # names the step and shows the server's debug log instead of a bare timeout.
        step = "connect and exchange one event"
        async with asyncio.timeout(TIMEOUT_S / 2):
            async with connect(url + "/v1/realtime", additional_headers={"Authorization": f"Bearer {CORE}"}) as ws:
                await ws.recv()  # session.created
                await ws.send(json.dumps({"type": CORE}))
                await ws.recv()  # the error about it
        step = "exit on SIGINT"
    except TimeoutError:
        pass  # reported below with the server's output
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT_S / 2)
        except TimeoutError:
            proc.kill()
            rest, _ = await proc.communicate()
            step = "exit on SIGINT (killed)"
        output += rest.decode("utf-8", "replace")
    assert step == "exit on SIGINT", f"fake-server hung at: {step}\n{output}"
    assert "< ***" in output, output  # the event type was logged, masked
    _assert_no_key("fake-server", output)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (SMART_KEY, "contains a typographic quote (U+201C"),
        (SPACED_KEY, "contains whitespace at character 13"),
        ("\ufeff" + CORE + "\u00e9", "contains a non-ASCII character (U+00E9"),
        (CORE[:10] + "\x07" + CORE[10:], "contains a control character (0x07)"),
    ],
)
async def test_a_key_that_cannot_be_a_key_is_refused_by_name_never_shown(
    tmp_path: Path, key: str, problem: str
) -> None:
    cfg = str(_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9"))
    env = _env(key)
    for argv in (("check", "--config", cfg, "--skip", "audio", "--skip", "gpio"), ("run", "--config", cfg)):
        code, output = await _kiosk(env, *argv)
        _assert_no_key(argv[0], output)
        assert "OPENAI_API_KEY: " + problem in output, output
        assert "(value not shown)" in output
        assert code == 2, output  # check: 2 for an invalid configuration, like the rest

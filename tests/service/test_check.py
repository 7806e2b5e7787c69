"""`kiosk check` against a good config and broken ones; the key never shows."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sqlite3
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from kiosk.config import load_config
from kiosk.service.check import run_checks
from kiosk.service.check_online import check_online

KEY = "sk-proj-CHECK-KEY-must-never-be-printed-0123456789"


def make_index(path: Path, chunks: int) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY, text TEXT)")
        conn.executemany(
            "INSERT INTO chunks VALUES (?, ?)", [(f"c{i}", f"text {i}") for i in range(chunks)]
        )
    conn.close()
    return path


def write_config(tmp_path: Path, extra: str = "", *, index_chunks: int = 3) -> Path:
    index = make_index(tmp_path / "index.sqlite", index_chunks)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        f"""
[realtime]
provider = "voicerag"
endpoint = "ws://127.0.0.1:9/realtime"

[rag]
index_path = "{index}"

[gpio]
pin_factory = "mock"
button_pin = 17
{extra}
""",
        encoding="utf-8",
    )
    return cfg


def check(cfg: Path | str, *, env: dict[str, str] | None = None, **kw: object) -> tuple[int, str]:
    out = io.StringIO()
    kw.setdefault("skip", ["audio"])  # no sound card on CI machines; see pulseaudio-marked test
    rc = run_checks(
        cfg,
        out=out,
        env=env or {},
        credentials_dir=Path("/nonexistent/credentials"),
        **kw,  # type: ignore[arg-type]
    )
    return rc, out.getvalue()


def line(output: str, name: str) -> str:
    matches = [ln for ln in output.splitlines() if ln.split(" ", 1)[-1].startswith(name + ":")]
    assert len(matches) == 1, output
    return matches[0]


def test_good_config_passes_every_check(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path))
    assert rc == 0, out
    assert line(out, "config").startswith("✓")
    assert line(out, "credentials") == "✓ credentials: none needed (provider voicerag)"
    assert line(out, "vad").startswith("✓")
    assert line(out, "index").endswith("index.sqlite: 3 chunks")
    assert line(out, "gpio") == "✓ gpio: mock (simulated pins): led 12, button 17 available"
    assert line(out, "audio") == "- audio: skipped (--skip audio)"
    assert line(out, "summary") == "✓ summary: all 5 checks passed (1 skipped)"


def test_invalid_toml_fails_config_and_skips_the_rest(tmp_path: Path) -> None:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[realtime\nprovider = 'openai'\n")
    rc, out = check(cfg)
    assert rc == 2  # an invalid configuration: exit 2 like every command
    assert line(out, "config").startswith("✗ config: (file): not valid TOML")
    assert "fix: edit" in line(out, "config")
    assert line(out, "index") == "- index: skipped (config invalid)"
    assert line(out, "summary") == "✗ summary: 1 of 1 checks failed (5 skipped)"


def test_out_of_range_setting_names_the_key(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path, "[vad]\naggressiveness = 7\n"))
    assert rc == 2
    assert "vad.aggressiveness" in line(out, "config")


def test_missing_config_file_given_explicitly_hints_the_other_places(tmp_path: Path) -> None:
    rc, out = check(tmp_path / "nope.toml")
    assert rc == 2
    assert "does not exist" in line(out, "config")
    assert "leave --config out" in line(out, "config")


def test_openai_without_key_fails_credentials(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text()
        .replace('provider = "voicerag"', 'provider = "openai"')
        .replace('endpoint = "ws://127.0.0.1:9/realtime"', 'endpoint = "https://api.openai.com"')
    )
    rc, out = check(cfg)
    assert rc == 1
    assert line(out, "credentials").startswith("✗ credentials: OPENAI_API_KEY missing")
    assert "export OPENAI_API_KEY=" in line(out, "credentials")  # no service installed here


def test_no_key_and_no_endpoint_is_the_local_engine_and_passes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text()
        .replace('provider = "voicerag"', 'provider = "openai"')
        .replace('endpoint = "ws://127.0.0.1:9/realtime"', "")
    )
    rc, out = check(cfg)
    assert rc == 0, out  # the name's promise: no key, no endpoint is a kiosk that passes its check
    assert line(out, "credentials").startswith("✓ credentials: none needed (no API key: the on-")


def test_credentials_hint_on_an_installed_kiosk_points_at_the_credential_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiosk.service import check as check_module

    unit = tmp_path / "kiosk.service"
    unit.write_text("[Service]\n")
    monkeypatch.setattr(check_module, "UNIT_PATH", unit)
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text()
        .replace('provider = "voicerag"', 'provider = "openai"')
        .replace('endpoint = "ws://127.0.0.1:9/realtime"', 'endpoint = "https://api.openai.com"')
    )
    rc, out = check(cfg)
    assert rc == 1, out  # a cloud endpoint without its key fails the check
    assert "OPENAI_API_KEY (mode 0600)" in line(out, "credentials")


def test_key_from_credentials_directory_is_present_but_never_printed(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text()
        .replace('provider = "voicerag"', 'provider = "openai"')
        .replace('endpoint = "ws://127.0.0.1:9/realtime"', "")
    )
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "OPENAI_API_KEY").write_text(KEY + "\n")
    rc, out = check(cfg, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert rc == 0, out
    assert f"OPENAI_API_KEY present (credentials in {creds}" in line(out, "credentials")
    assert KEY not in out


def test_missing_index_hints_index_add(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "index.sqlite").unlink()
    rc, out = check(cfg)
    assert rc == 1
    assert line(out, "index").endswith("fix: kiosk index add DOCS_FOLDER")


def test_empty_index_fails(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path, index_chunks=0))
    assert rc == 1
    assert "is empty (0 chunks)" in line(out, "index")


def test_corrupt_index_fails_without_modifying_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    junk = b"this is not sqlite" * 100
    (tmp_path / "index.sqlite").write_bytes(junk)
    rc, out = check(cfg)
    assert rc == 1
    assert "kiosk index rebuild" in line(out, "index")
    assert (tmp_path / "index.sqlite").read_bytes() == junk
    assert not (tmp_path / "index.sqlite-wal").exists()


def test_rag_backend_none_needs_no_index(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "index.sqlite").unlink()
    rc, out = check(cfg, env={"KIOSK_RAG_BACKEND": "none"})
    assert rc == 0, out
    assert line(out, "index").startswith("✓ index: rag.backend = none")


def test_unavailable_pin_factory_fails_gpio_with_hint(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path), env={"KIOSK_GPIO_PIN_FACTORY": "pigpio"})
    assert rc == 1
    assert line(out, "gpio").startswith("✗ gpio: no GPIO: pigpio")
    assert "gpio.enabled = false" in line(out, "gpio")


def test_gpio_disabled_passes(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path), env={"KIOSK_GPIO_ENABLED": "false"})
    assert rc == 0, out
    assert line(out, "gpio").startswith("✓ gpio: not used")


def test_unreachable_endpoint_fails_online_websocket(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path), online=True)
    assert rc == 1
    assert line(out, "realtime dns") == "✓ realtime dns: 127.0.0.1 -> 127.0.0.1"
    assert line(out, "realtime websocket").startswith("✗ realtime websocket: cannot connect")


@pytest.fixture
async def realtime_server() -> AsyncIterator[Server]:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    def refuse_wrong_key(conn: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/reject"):
            return conn.respond(401, "bad key\n")
        return None

    async with serve(handler, "127.0.0.1", 0, process_request=refuse_wrong_key) as server:
        yield server


def server_config(server: Server, path: str) -> str:
    port = server.sockets[0].getsockname()[1]
    return f'[realtime]\nprovider = "voicerag"\nendpoint = "ws://127.0.0.1:{port}{path}"\n'


async def test_online_handshake_with_local_server_passes(realtime_server: Server) -> None:
    cfg = load_config(server_config(realtime_server, "/realtime"))
    results = await asyncio.wait_for(check_online(cfg, 5.0), 10)
    assert [(r.name, r.ok) for r in results] == [
        ("realtime dns", True),
        ("realtime websocket", True),
    ]


async def test_online_handshake_refused_401_hints_at_the_key(realtime_server: Server) -> None:
    cfg = load_config(server_config(realtime_server, "/reject"))
    results = await asyncio.wait_for(check_online(cfg, 5.0), 10)
    assert not results[-1].ok
    assert "401" in results[-1].detail
    assert "API key" in results[-1].hint


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ssl=context) as server:
        yield server, cert


def wss_config(server: Server) -> str:
    port = server.sockets[0].getsockname()[1]
    return f'[realtime]\nprovider = "voicerag"\nendpoint = "wss://127.0.0.1:{port}/realtime"\n'


async def test_online_untrusted_certificate_fails_tls_with_clock_hint(
    tls_server: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server, _cert = tls_server
    results = await asyncio.wait_for(check_online(load_config(wss_config(server)), 5.0), 10)
    assert [(r.name, r.ok) for r in results] == [("realtime dns", True), ("realtime tls", False)]
    assert "self-signed" in results[1].detail or "self signed" in results[1].detail
    assert "clock" in results[1].hint


async def test_online_trusted_certificate_passes_tls_and_handshake(
    tls_server: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # OpenSSL's default trust store, per process
    results = await asyncio.wait_for(check_online(load_config(wss_config(server)), 5.0), 10)
    assert [(r.name, r.ok) for r in results] == [
        ("realtime dns", True),
        ("realtime tls", True),
        ("realtime websocket", True),
    ]
    assert results[1].detail.startswith(f"127.0.0.1:{server.sockets[0].getsockname()[1]} TLSv1.")


def skip_without_pulseaudio(out: str) -> None:
    """Skip locally; CI (KIOSK_REQUIRE_PULSEAUDIO=1) starts a server, so there it is a failure."""
    if os.environ.get("KIOSK_REQUIRE_PULSEAUDIO") == "1":
        pytest.fail("audio check failed although PulseAudio is required:\n" + out)
    pytest.skip("no PulseAudio server running")


@pytest.mark.pulseaudio
def test_audio_test_on_a_silent_null_sink_reports_silence(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path), skip=["index"], audio_test=True)
    if not line(out, "audio").startswith("✓"):
        skip_without_pulseaudio(out)
    assert rc == 1
    assert line(out, "audio test").startswith("✗ audio test: recorded 3.0 s, level")
    assert "silence" in line(out, "audio test")


@pytest.mark.pulseaudio
def test_audio_devices_listed_and_opened_on_pulseaudio(tmp_path: Path) -> None:
    rc, out = check(write_config(tmp_path), skip=[])
    if not line(out, "audio").startswith("✓"):
        skip_without_pulseaudio(out)
    assert rc == 0, out
    assert line(out, "audio").startswith("✓ audio: input")


def test_audio_test_names_the_rooms_ambient_level_and_the_onset_level(tmp_path: Path) -> None:
    import numpy as np

    from kiosk.service.check_audio import room_levels

    cfg = load_config(write_config(tmp_path).read_text(), require_key=False)
    rng = np.random.default_rng(0)
    hum = (rng.standard_normal(16000 * 2) * 32768 * 10 ** (-45 / 20)).astype("<i2").tobytes()
    floor, onset = room_levels(cfg, hum)
    assert floor is not None and abs(floor - -45.0) < 1.5
    assert onset == floor + cfg.vad.onset_margin_db

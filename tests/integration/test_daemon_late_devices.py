"""Issue 12 item 9: ``kiosk run`` waits for audio devices that are not there yet at start-up.

The real daemon under a real notify socket, on real PortAudio: its ``PULSE_SERVER`` points at
a socket path where no sound server listens yet, so PortAudio finds no devices at all (as on a
kiosk whose sound server, or USB card, comes up after the unit). It must not exit: STATUS=
says what it waits for, the watchdog keeps being fed, the start timeout is extended, and no
READY=1 comes. With PulseAudio on this machine the test then makes the server appear at that
path (a symlink to the real socket, nothing on the shared server is changed): the next
backoff attempt opens the devices and READY=1 follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kiosk.testing.fake_realtime import FakeRealtimeServer
from tests.integration.pulse import pactl, require_pulseaudio
from tests.integration.test_service_daemon import NotifyListener, listen_for_notify

FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
WAIT_TIMEOUT_S = 20 * FACTOR
# Backoff: 1 s doubling, full jitter, >= 0.5 s: after ~3 s of waiting the next try is at
# most ~8 s away; opening takes well under a second.
APPEAR_TIMEOUT_S = 30 * FACTOR
STOP_TIMEOUT_S = 5 * FACTOR
WATCHDOG_USEC = 400_000  # keep-alive every 200 ms
WAITING = "STATUS=waiting for audio devices: "

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PortAudio via ALSA/PulseAudio"
)


def _device_count(env: dict[str, str]) -> int:
    probe = "import pyaudio; p = pyaudio.PyAudio(); print(p.get_device_count())"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30
    )
    return int(done.stdout.strip() or "-1")


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer("beta", mode="voicerag") as server:
        yield server


@contextlib.asynccontextmanager
async def running_daemon(
    tmp_path: Path, server: FakeRealtimeServer, pulse_dir: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, NotifyListener, Path]]:
    """``kiosk run`` on PortAudio with ``PULSE_SERVER`` at ``pulse_dir/native``; killed after."""
    pytest.importorskip("pyaudio")
    port = server.url.rsplit(":", 1)[1]
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[realtime]\nprovider = "voicerag"\nendpoint = "ws://127.0.0.1:{port}/realtime"\n'
        'transcription_model = ""\n[rag]\nbackend = "none"\n[gpio]\nenabled = false\n'
        f'[earcons]\nenabled = false\n[service]\nstate_dir = "{tmp_path / "state"}"\n',
        encoding="utf-8",
    )
    listener, collector = listen_for_notify(str(tmp_path / "notify.sock"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KIOSK_", "OPENAI", "AZURE", "JOURNAL_STREAM", "NOTIFY_SOCKET"))
    }
    env.update(
        NOTIFY_SOCKET=listener.path,
        WATCHDOG_USEC=str(WATCHDOG_USEC),
        PULSE_SERVER=f"unix:{pulse_dir / 'native'}",  # nothing listens there (yet)
    )
    if _device_count(env) != 0:
        pytest.skip("PortAudio sees devices without a sound server here (a sound card)")
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kiosk.cli", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    try:
        yield proc, listener, log_path
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        collector.cancel()
        listener.sock.close()


async def _assert_waiting(proc: asyncio.subprocess.Process, n: NotifyListener, log: Path) -> None:
    await n.wait_for(
        lambda f: sum(x.startswith(WAITING) for x in f) >= 1 and f.count("WATCHDOG=1") >= 5,
        "STATUS=waiting for audio devices and watchdog keep-alives",
        WAIT_TIMEOUT_S,
    )
    fields = n.fields()
    status = next(x for x in fields if x.startswith(WAITING))
    print(status)
    assert "no default" in status or "no input" in status or "no output" in status, status
    assert any(x.startswith("EXTEND_TIMEOUT_USEC=") for x in fields), fields
    assert "READY=1" not in fields, fields
    assert proc.returncode is None, log.read_text(errors="replace")


async def test_no_sound_server_at_start_up_waits_instead_of_exiting(
    tmp_path: Path, fake_server: FakeRealtimeServer
) -> None:
    async with running_daemon(tmp_path, fake_server, tmp_path / "no-server") as (proc, n, log):
        await _assert_waiting(proc, n, log)
        proc.send_signal(signal.SIGTERM)  # a stop while waiting is a clean stop
        assert await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S) == 0
        assert "Traceback" not in log.read_text(errors="replace")
        assert "STOPPING=1" in n.fields() and "READY=1" not in n.fields()


def _real_socket() -> Path | None:
    for line in pactl("info").splitlines():
        if line.startswith("Server String:"):
            path = Path(line.split(":", 1)[1].strip().removeprefix("unix:"))
            return path if path.is_socket() else None
    return None


@pytest.mark.pulseaudio
async def test_a_sound_server_that_appears_late_is_picked_up_then_ready(
    tmp_path: Path, fake_server: FakeRealtimeServer
) -> None:
    require_pulseaudio()
    real = _real_socket()
    if real is None:
        pytest.skip("the sound server is not on a local unix socket")
    late = tmp_path / "late-server"
    late.mkdir()
    async with running_daemon(tmp_path, fake_server, late) as (proc, n, log):
        await _assert_waiting(proc, n, log)
        await asyncio.sleep(2.0)  # a few more failed attempts, with backoff
        (late / "native").symlink_to(real)  # the sound server "comes up"
        await n.wait_for(lambda f: "READY=1" in f, "READY=1 once the server is there", APPEAR_TIMEOUT_S)
        text = log.read_text(errors="replace")
        assert "audio devices opened after" in text, text[-2000:]
        attempts = int(text.split("audio devices opened after ")[1].split()[0])
        print(f"devices opened after {attempts} attempts")
        assert attempts >= 2
        order = [f for f in n.non_watchdog() if not f.startswith("EXTEND_TIMEOUT_USEC=")]
        assert order.index("READY=1") > max(i for i, f in enumerate(order) if f.startswith(WAITING))
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S) == 0
        assert "Traceback" not in log.read_text(errors="replace")

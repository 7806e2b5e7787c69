"""`kiosk run` as systemd runs it: a real NOTIFY_SOCKET, signals, logs.

The daemon runs as a subprocess with WAV files for microphone and speaker, against the
fake Realtime server on 127.0.0.1 that insists on the API key (so the key really flows
through the daemon, and we can check that no log line ever shows it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.wav import read_wav_mono, write_wav
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
START_TIMEOUT_S = 30 * FACTOR
STEP_TIMEOUT_S = 15 * FACTOR
KEY = "sk-test-DAEMON-KEY-never-in-any-log-5f3a9c1e77"
WATCHDOG_USEC = 300_000  # keep-alive every 150 ms


@dataclass
class NotifyListener:
    """The notify socket systemd would own: collects every datagram with its arrival time."""

    path: str
    sock: socket.socket
    messages: list[tuple[float, list[str]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            self.messages.append((time.monotonic(), data.decode().split("\n")))
            self.changed.set()

    def fields(self) -> list[str]:
        return [f for _, fs in self.messages for f in fs]

    def non_watchdog(self) -> list[str]:
        return [
            f for f in self.fields() if f != "WATCHDOG=1" and not f.startswith("MONOTONIC_USEC=")
        ]

    async def wait_for(
        self, predicate: Callable[[list[str]], bool], what: str, timeout_s: float
    ) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate(self.fields()):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"no {what} within {timeout_s} s; got {self.non_watchdog()}"
            ) from None


@dataclass
class RunningDaemon:
    proc: asyncio.subprocess.Process
    notify: NotifyListener
    config: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def write_config(path: Path, server_url: str, state_dir: Path, extra: str = "") -> None:
    port = server_url.rsplit(":", 1)[1]
    path.write_text(
        f"""
[realtime]
provider = "openai"
endpoint = "http://127.0.0.1:{port}"
transcription_model = ""
fallback = "clip"  # these tests are about the cloud link (tests/local covers "local")

[rag]
backend = "none"

[gpio]
enabled = false

[earcons]
enabled = false

[service]
state_dir = "{state_dir}"
{extra}
""",
        encoding="utf-8",
    )


def question_wav(tmp_path: Path) -> Path:
    speech = read_wav_mono(FIXTURES / "en_restroom_espeak_16k.wav", 16000)
    silence = np.zeros(8000, dtype=np.int16)
    path = tmp_path / "question.wav"
    write_wav(path, np.concatenate([silence, speech]).astype(np.int16), 16000)
    return path


def listen_for_notify(path: str) -> tuple[NotifyListener, asyncio.Task[None]]:
    """Bind the notify socket systemd would own at ``path``; collect in a task."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    listener = NotifyListener(path, sock)
    return listener, asyncio.create_task(listener.collect())


def daemon_env(notify_path: str, watchdog_usec: int) -> dict[str, str]:
    """This environment without kiosk settings, keys or a journal, plus the notify socket,
    the watchdog and the fake server's key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KIOSK_", "OPENAI", "AZURE", "JOURNAL_STREAM", "NOTIFY_SOCKET"))
    }
    env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(watchdog_usec), OPENAI_API_KEY=KEY)
    return env


async def spawn_kiosk_run(
    config: Path, mic: Path, speaker: Path, env: dict[str, str], log_path: Path, *flags: str
) -> asyncio.subprocess.Process:
    """``kiosk run`` with WAV files as microphone and speaker; stdout+stderr to ``log_path``."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kiosk.cli",
            "run",
            "--config",
            str(config),
            "--input-wav",
            str(mic),
            "--output-wav",
            str(speaker),
            *flags,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_fd,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    finally:
        os.close(log_fd)  # the child has its own copy


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeRealtimeServer]:
    script = FakeScript(answer_audio_s=6.0, call_search=False, call_grounding=False)
    async with FakeRealtimeServer("ga", expected_auth=("bearer", KEY), script=script) as server:
        yield server


@pytest.fixture
async def start_daemon(
    tmp_path: Path, fake_server: FakeRealtimeServer
) -> AsyncIterator[Callable[..., object]]:
    started: list[tuple[RunningDaemon, asyncio.Task[None]]] = []

    async def start(*flags: str, with_question: bool = True, extra: str = "") -> RunningDaemon:
        listener, collector = listen_for_notify(str(tmp_path / "notify.sock"))
        config = tmp_path / "kiosk.toml"
        write_config(config, fake_server.url, tmp_path / "state", extra)
        mic = question_wav(tmp_path) if with_question else tmp_path / "silence.wav"
        if not with_question:
            write_wav(mic, np.zeros(1600, dtype=np.int16), 16000)
        env = daemon_env(listener.path, WATCHDOG_USEC)
        log_path = tmp_path / "daemon.log"
        proc = await spawn_kiosk_run(config, mic, tmp_path / "speaker.wav", env, log_path, *flags)
        daemon = RunningDaemon(proc, listener, config, log_path)
        started.append((daemon, collector))
        await listener.wait_for(lambda f: "READY=1" in f, "READY=1", START_TIMEOUT_S)
        return daemon

    yield start
    await stop_daemons(started)
    for daemon, _ in started:
        assert KEY not in daemon.log(), "the API key reached a log line"


async def stop_daemons(started: list[tuple[RunningDaemon, asyncio.Task[None]]]) -> None:
    """Kill what still runs, stop collecting, close the notify sockets."""
    for daemon, collector in started:
        if daemon.proc.returncode is None:
            daemon.proc.kill()
            await daemon.proc.wait()
        collector.cancel()
        daemon.notify.sock.close()


async def wait_exit(proc: asyncio.subprocess.Process, timeout_s: float) -> int:
    return await asyncio.wait_for(proc.wait(), timeout_s)


async def test_lifecycle_notifies_ready_status_watchdog_reloading_stopping_in_order(
    start_daemon: Callable[..., object], fake_server: FakeRealtimeServer
) -> None:
    daemon: RunningDaemon = await start_daemon("--verbose")  # type: ignore[misc]
    n = daemon.notify
    await n.wait_for(lambda f: f.count("WATCHDOG=1") >= 2, "two WATCHDOG=1", STEP_TIMEOUT_S)
    await n.wait_for(lambda f: "STATUS=listening" in f, "STATUS=listening", STEP_TIMEOUT_S)
    await n.wait_for(lambda f: "STATUS=answering" in f, "STATUS=answering", STEP_TIMEOUT_S)

    daemon.proc.send_signal(signal.SIGHUP)
    await n.wait_for(lambda f: f.count("READY=1") >= 2, "READY=1 after reload", STEP_TIMEOUT_S)

    daemon.proc.send_signal(signal.SIGTERM)
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S) == 0
    await n.wait_for(lambda f: "STOPPING=1" in f, "STOPPING=1", STEP_TIMEOUT_S)

    order = n.non_watchdog()
    assert order[0] == "READY=1", order
    assert order.index("STATUS=listening") < order.index("STATUS=answering")
    reloading = order.index("RELOADING=1")
    assert reloading > order.index("STATUS=answering")
    assert "READY=1" in order[reloading + 1 :]
    assert order[-1] == "STOPPING=1"
    # RELOADING=1 carries the monotonic timestamp systemd 253+ requires, in one datagram.
    reload_msgs = [fs for _, fs in n.messages if "RELOADING=1" in fs]
    assert reload_msgs and reload_msgs[0][1].startswith("MONOTONIC_USEC=")
    # Keep-alives come at about half the watchdog interval, not once.
    assert n.fields().count("WATCHDOG=1") >= 3
    log = daemon.log()
    assert "reloaded settings" in log
    assert KEY not in log
    assert fake_server.connections, "the daemon never reached the fake server"


async def test_sighup_with_bad_config_keeps_running_and_logs_why(
    start_daemon: Callable[..., object],
) -> None:
    daemon: RunningDaemon = await start_daemon(with_question=False)  # type: ignore[misc]
    n = daemon.notify
    good = daemon.config.read_text()
    daemon.config.write_text(good + "\n[vad]\naggressiveness = 7\n")
    daemon.proc.send_signal(signal.SIGHUP)
    await n.wait_for(
        lambda f: f.count("READY=1") >= 2, "READY=1 after a failed reload", STEP_TIMEOUT_S
    )
    assert daemon.proc.returncode is None, "a bad config on SIGHUP must not stop the daemon"
    assert "RELOADING=1" in n.fields()
    log = daemon.log()
    assert "vad.aggressiveness" in log
    assert "keeping the old settings" in log

    # A good config afterwards is taken.
    daemon.config.write_text(good)
    daemon.proc.send_signal(signal.SIGHUP)
    await n.wait_for(
        lambda f: f.count("READY=1") >= 3, "READY=1 after a good reload", STEP_TIMEOUT_S
    )
    assert "reloaded settings" in daemon.log()
    daemon.proc.send_signal(signal.SIGTERM)
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S) == 0


async def test_sigterm_mid_answer_exits_cleanly_within_2_s(
    start_daemon: Callable[..., object], fake_server: FakeRealtimeServer
) -> None:
    daemon: RunningDaemon = await start_daemon()  # type: ignore[misc]
    n = daemon.notify
    # The fake answers with 6 s of real-time paced audio: wait until it is playing.
    await n.wait_for(lambda f: "STATUS=answering" in f, "STATUS=answering", STEP_TIMEOUT_S)
    await asyncio.sleep(0.5)
    assert daemon.proc.returncode is None
    sent = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = await wait_exit(daemon.proc, 10 * FACTOR)
    elapsed_s = time.monotonic() - sent
    assert code == 0, daemon.log()[-2000:]
    assert elapsed_s < 2.0 * FACTOR, f"took {elapsed_s:.2f} s to stop"
    print(f"SIGTERM mid-answer -> exit in {elapsed_s * 1000:.0f} ms")
    await n.wait_for(lambda f: "STOPPING=1" in f, "STOPPING=1", STEP_TIMEOUT_S)
    assert n.non_watchdog()[-1] == "STOPPING=1"
    assert "Traceback" not in daemon.log()


async def test_upstream_down_shows_error_status_and_keeps_running(
    start_daemon: Callable[..., object], fake_server: FakeRealtimeServer
) -> None:
    fake_server.fail_handshakes(503, times=50)
    daemon: RunningDaemon = await start_daemon()  # type: ignore[misc]
    n = daemon.notify
    await n.wait_for(
        lambda f: any(x.startswith("STATUS=error: ") for x in f),
        "STATUS=error: ...",
        STEP_TIMEOUT_S,
    )
    status = next(x for x in n.fields() if x.startswith("STATUS=error: "))
    print(status)
    assert len(status) > len("STATUS=error: ") + 3, status  # says what is wrong
    assert daemon.proc.returncode is None, "an unreachable upstream must not stop the daemon"
    await n.wait_for(
        lambda f: f.count("WATCHDOG=1") >= 2, "WATCHDOG=1 while in error", STEP_TIMEOUT_S
    )
    daemon.proc.send_signal(signal.SIGTERM)
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S) == 0


async def test_sighup_applies_a_new_log_level_without_restart(
    start_daemon: Callable[..., object],
) -> None:
    daemon: RunningDaemon = await start_daemon(with_question=False)  # type: ignore[misc]
    n = daemon.notify
    await n.wait_for(lambda f: f.count("WATCHDOG=1") >= 2, "WATCHDOG=1", STEP_TIMEOUT_S)
    assert "DEBUG" not in daemon.log()
    daemon.config.write_text(daemon.config.read_text() + '\nlog_level = "debug"\n')
    # ^ appended to the file's last table, [service]
    pid = daemon.proc.pid
    daemon.proc.send_signal(signal.SIGHUP)
    await n.wait_for(lambda f: f.count("READY=1") >= 2, "READY=1 after reload", STEP_TIMEOUT_S)
    # Keep-alives go out every 150 ms and are logged at DEBUG: they show up now.
    watchdogs = n.fields().count("WATCHDOG=1")
    await n.wait_for(
        lambda f: f.count("WATCHDOG=1") >= watchdogs + 2, "more WATCHDOG=1", STEP_TIMEOUT_S
    )
    assert "DEBUG   kiosk.service.notify: > sd_notify WATCHDOG" in daemon.log()
    assert daemon.proc.pid == pid and daemon.proc.returncode is None
    daemon.proc.send_signal(signal.SIGTERM)
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S) == 0


async def test_answered_turn_reaches_the_turn_log_report_and_metrics_textfile(
    start_daemon: Callable[..., object], tmp_path: Path
) -> None:
    prom = tmp_path / "kiosk.prom"
    daemon: RunningDaemon = await start_daemon(  # type: ignore[misc]
        extra=f'metrics_textfile = "{prom}"'
    )
    assert 'kiosk_state{state="idle"} 1' in prom.read_text()  # written at start
    deadline = asyncio.get_running_loop().time() + STEP_TIMEOUT_S * 2
    while 'kiosk_turns_total{outcome="answered"} 1' not in prom.read_text():
        assert asyncio.get_running_loop().time() < deadline, prom.read_text()
        await asyncio.sleep(0.2)
    text = prom.read_text()
    assert 'kiosk_response_latency_seconds_count 1' in text
    assert "kiosk_cost_usd_today 0.000000" not in text  # the fake server reports usage
    # The websocket and TLS were a child's (kiosk.net.link_process): no OpenSSL in the daemon.
    maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    assert "libcrypto" not in maps and "libssl" not in maps
    daemon.proc.send_signal(signal.SIGTERM)
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S) == 0
    report = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "report", "--state-dir", str(tmp_path / "state"),
         "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    (day,) = json.loads(report.stdout)["days"]
    assert day["turns"] == 1 and day["usd"] > 0


async def test_sigint_exits_130(start_daemon: Callable[..., object]) -> None:
    daemon: RunningDaemon = await start_daemon(with_question=False)  # type: ignore[misc]
    daemon.proc.send_signal(signal.SIGINT)
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S) == 130  # Ctrl-C: interrupted


async def test_exit_at_end_stops_after_the_files_last_turn(
    start_daemon: Callable[..., object], tmp_path: Path
) -> None:
    daemon: RunningDaemon = await start_daemon("--exit-at-end")  # type: ignore[misc]
    assert await wait_exit(daemon.proc, STEP_TIMEOUT_S * 3) == 0
    log = daemon.log()
    assert "turn 1 answered" in log, log  # the answer was played to the end first
    assert "end of" in log and "STOPPING=1" in daemon.notify.fields()

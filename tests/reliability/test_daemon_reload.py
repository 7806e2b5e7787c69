"""Issue 12 item 7: SIGHUP and start-up of the real daemon under a real notify socket.

``kiosk run`` runs as a subprocess with WAV files for microphone and speaker, a local
SQLite knowledge index and the fake Realtime server. A reload that cannot be applied
(a TOML nested past the parser's stack, a file with no settings) keeps the old settings
and the daemon; a hundred reloads leave no file descriptors or memory behind (old indexes
closed); a reload during an answer waits for the answer; a malformed custom wake word model
stops start-up with one line, not a KeyError.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.wav import read_wav_mono, write_wav
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript
from tests.integration.test_service_daemon import (
    KEY,
    RunningDaemon,
    daemon_env,
    listen_for_notify,
    question_wav,
    spawn_kiosk_run,
    stop_daemons,
    write_config,
)

FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
START_TIMEOUT_S = 30 * FACTOR
STEP_TIMEOUT_S = 15 * FACTOR
RELOADS = 100
MAX_FD_GROWTH = 2
MAX_RSS_GROWTH_KB = 12 * 1024
ANSWER_S = 5.0


class Daemon(RunningDaemon):
    def readies(self) -> int:
        return self.notify.fields().count("READY=1")

    async def reload(self) -> None:
        """SIGHUP, then wait for the READY=1 that ends this reload (applied or refused)."""
        before = self.readies()
        self.proc.send_signal(signal.SIGHUP)
        await self.notify.wait_for(
            lambda f: f.count("READY=1") > before, "READY=1 after SIGHUP", STEP_TIMEOUT_S
        )
        assert self.proc.returncode is None, self.log()[-2000:]

    def fds(self) -> list[str]:
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        out = []
        for fd in fd_dir.iterdir():
            try:
                out.append(os.readlink(fd))
            except OSError:  # closed meanwhile
                continue
        return out

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def settings(server_url: str, state_dir: Path, index: Path) -> str:
    """test_service_daemon's settings with a local knowledge index."""
    scratch = state_dir.parent / "settings.toml"
    write_config(scratch, server_url, state_dir)
    local = f'backend = "local"\nindex_path = "{index}"'
    return scratch.read_text(encoding="utf-8").replace('backend = "none"', local)


def build_index(path: Path, docs: Path) -> Path:
    docs.mkdir(exist_ok=True)
    (docs / "faq.md").write_text("# Restrooms\n\nThe restrooms are next to the lifts.\n")
    with SqliteIndex(path) as index:
        ingest_paths(index, [docs])
    return path


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeRealtimeServer]:
    script = FakeScript(answer_audio_s=ANSWER_S, call_search=False, call_grounding=False)
    async with FakeRealtimeServer("ga", expected_auth=("bearer", KEY), script=script) as server:
        yield server


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Daemon]]]:
    started: list[tuple[Daemon, asyncio.Task[None]]] = []

    async def start(config_text: str, mic: Path, *, wait_ready: bool = True) -> Daemon:
        listener, collector = listen_for_notify(str(tmp_path / f"notify{len(started)}.sock"))
        config = tmp_path / "kiosk.toml"
        config.write_text(config_text, encoding="utf-8")
        env = daemon_env(listener.path, 1_000_000)
        log_path = tmp_path / f"daemon{len(started)}.log"
        proc = await spawn_kiosk_run(config, mic, tmp_path / "speaker.wav", env, log_path)
        daemon = Daemon(proc, listener, config, log_path)
        started.append((daemon, collector))
        if wait_ready:
            await listener.wait_for(lambda f: "READY=1" in f, "READY=1", START_TIMEOUT_S)
        return daemon

    yield start
    await stop_daemons(started)  # type: ignore[arg-type]


def silence_wav(tmp_path: Path) -> Path:
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(1600, dtype=np.int16), 16000)
    return path


def _open_files(daemon: Daemon, index: Path) -> list[str]:
    return [target for target in daemon.fds() if target.startswith(str(index))]


async def test_bad_reloads_are_refused_and_100_reloads_leak_no_fds_or_memory(
    tmp_path: Path,
    fake_server: FakeRealtimeServer,
    start_daemon: Callable[..., Awaitable[Daemon]],
) -> None:
    index_a = build_index(tmp_path / "a.sqlite", tmp_path / "docs")
    index_b = build_index(tmp_path / "b.sqlite", tmp_path / "docs")
    good = settings(fake_server.url, tmp_path / "state", index_a)
    daemon = await start_daemon(good, silence_wav(tmp_path))
    assert _open_files(daemon, index_a), "the daemon did not open its index"

    refusals = {
        "nested": ("[realtime]\nx = " + "[" * 50_000 + "\n", "nested too deeply"),
        "inline tables": ("x = " + "{a = " * 50_000 + "\n", "nested too deeply"),
        "empty": ("", "has no settings (empty or only comments)"),
        "comments only": ("# all defaults\n\n", "has no settings (empty or only comments)"),
    }
    for name, (text, why) in refusals.items():
        daemon.config.write_text(text, encoding="utf-8")
        await daemon.reload()
        log = daemon.log()
        assert why in log, f"{name}: {log[-2000:]}"
        assert "reload: keeping the old settings" in log
        assert "Traceback" not in log and "RecursionError" not in log, log[-3000:]
        assert _open_files(daemon, index_a), f"{name}: the old index was closed"
    assert "reloaded settings" not in daemon.log()

    daemon.config.write_text(good, encoding="utf-8")
    for _ in range(5):  # warm-up: first-reload allocations are not a leak
        await daemon.reload()
    fds_before, rss_before = len(daemon.fds()), daemon.rss_kb()
    for _ in range(RELOADS):
        await daemon.reload()
    fds_after, rss_after = len(daemon.fds()), daemon.rss_kb()
    print(
        f"{RELOADS} reloads: fds {fds_before} -> {fds_after}, "
        f"RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB"
    )
    assert daemon.log().count("reloaded settings") == RELOADS + 5
    assert fds_after - fds_before <= MAX_FD_GROWTH
    assert rss_after - rss_before <= MAX_RSS_GROWTH_KB

    # Another index: the old one is closed once the new pipeline is in (and back again).
    for now, then in ((index_b, index_a), (index_a, index_b)):
        daemon.config.write_text(settings(fake_server.url, tmp_path / "state", now))
        await daemon.reload()
        assert _open_files(daemon, now) and not _open_files(daemon, then), daemon.fds()
    assert len(daemon.fds()) - fds_after <= MAX_FD_GROWTH

    daemon.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(daemon.proc.wait(), STEP_TIMEOUT_S) == 0


async def test_a_reload_during_an_answer_lets_it_finish_then_applies(
    tmp_path: Path,
    fake_server: FakeRealtimeServer,
    start_daemon: Callable[..., Awaitable[Daemon]],
) -> None:
    index = build_index(tmp_path / "a.sqlite", tmp_path / "docs")
    good = settings(fake_server.url, tmp_path / "state", index)
    daemon = await start_daemon(good, question_wav(tmp_path))
    n = daemon.notify
    await n.wait_for(lambda f: "STATUS=answering" in f, "STATUS=answering", STEP_TIMEOUT_S)
    await asyncio.sleep(0.5)
    daemon.config.write_text(good + '\nlog_level = "debug"\n', encoding="utf-8")
    daemon.proc.send_signal(signal.SIGHUP)
    await n.wait_for(
        lambda f: f.count("READY=1") >= 2, "READY=1 after the reload", ANSWER_S + STEP_TIMEOUT_S
    )
    log = daemon.log()
    assert "reload: after the turn in progress" in log, log[-3000:]
    answered = log.find("turn 1 answered")
    assert answered != -1, log[-3000:]
    assert answered < log.find("reloaded settings"), log[-3000:]
    order = n.non_watchdog()
    assert order.index("RELOADING=1") < order.index("STATUS=idle", order.index("RELOADING=1"))
    daemon.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(daemon.proc.wait(), STEP_TIMEOUT_S) == 0
    heard = read_wav_mono(tmp_path / "speaker.wav", 24000)
    print(f"answer played {len(heard) / 24000:.2f} s of {ANSWER_S:.2f} s")
    assert len(heard) / 24000 >= ANSWER_S - 0.3  # the whole answer was played


@pytest.mark.parametrize(
    ("model_json", "problem"),
    [
        ({"type": "micro", "model": "x.tflite", "wake_word": "hi"}, 'needs a "micro" object'),
        ("{not json", "is not valid JSON"),
        ({"micro": {"probability_cutoff": 0.5, "sliding_window_size": 5}}, 'needs "model"'),
    ],
)
async def test_a_malformed_custom_wake_word_model_stops_start_up_in_one_line(
    tmp_path: Path,
    fake_server: FakeRealtimeServer,
    start_daemon: Callable[..., Awaitable[Daemon]],
    model_json: object,
    problem: str,
) -> None:
    pytest.importorskip("pymicro_wakeword")
    model = tmp_path / "custom_word.json"
    model.write_text(model_json if isinstance(model_json, str) else json.dumps(model_json))
    (tmp_path / "x.tflite").write_bytes(b"not a model")
    text = settings(fake_server.url, tmp_path / "state", tmp_path / "none.sqlite")
    text += f'\n[wake]\nmode = "wakeword"\nwakeword_model = "{model}"\n'
    daemon = await start_daemon(text, silence_wav(tmp_path), wait_ready=False)
    code = await asyncio.wait_for(daemon.proc.wait(), START_TIMEOUT_S)
    log = daemon.log()
    assert code == 2, log
    assert "KeyError" not in log and "Traceback" not in log, log
    errors = [line for line in log.splitlines() if "wake.wakeword_model" in line]
    assert len(errors) == 1 and problem in errors[0], log
    assert "READY=1" not in daemon.notify.fields()


async def test_a_deeply_nested_config_at_start_up_is_one_line_exit_2(
    tmp_path: Path, start_daemon: Callable[..., Awaitable[Daemon]]
) -> None:
    daemon = await start_daemon("x = " + "[" * 50_000, silence_wav(tmp_path), wait_ready=False)
    code = await asyncio.wait_for(daemon.proc.wait(), START_TIMEOUT_S)
    log = daemon.log()
    assert code == 2 and "Traceback" not in log, log[-2000:]
    assert log.strip() == "kiosk: config: (file): not a settings file: arrays/tables nested too deeply"

"""SIGHUP reloads of the real daemon: file descriptors and RSS before/after, reload time.

``kiosk run`` (WAV microphone of silence, WAV speaker, a local SQLite index, a loopback
endpoint it never needs to reach) under a notify socket we own. After 5 warm-up reloads we
count /proc/PID/fd and VmRSS, send N SIGHUPs one after another (each waits for its READY=1),
and count again; then reloads that switch between two indexes (a new knowledge base each
time, the old one must be closed). Issue 12 item 7: 100 reloads on the daemon before the fix
grew by 25 fds and 532 MiB (27 -> 52 fds, 337 -> 869 MiB).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.audio.wav import write_wav  # noqa: E402
from kiosk.rag.ingest import ingest_paths  # noqa: E402
from kiosk.rag.sqlite_index import SqliteIndex  # noqa: E402

WARM_UP = 5
SWITCHES = 10


def _config(index: Path, state: Path) -> str:
    return (
        '[realtime]\nendpoint = "http://127.0.0.1:9"\ntranscription_model = ""\n'
        f'[rag]\nbackend = "local"\nindex_path = "{index}"\n[gpio]\nenabled = false\n'
        f'[earcons]\nenabled = false\n[service]\nstate_dir = "{state}"\n'
    )


def _readies(sock: socket.socket, want: int, seen: list[int], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while seen[0] < want:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        seen[0] += sock.recv(4096).decode().split("\n").count("READY=1")


def _fds(pid: int) -> list[str]:
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.append(os.readlink(fd))
        except OSError:
            continue
    return out


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(quick: bool) -> dict[str, Any]:
    reloads = 20 if quick else 100
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-reload-") as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "docs").mkdir()
        (tmp / "docs" / "faq.md").write_text("# Restrooms\n\nNext to the lifts.\n")
        indexes = [tmp / "a.sqlite", tmp / "b.sqlite"]
        for path in indexes:
            with SqliteIndex(path) as index:
                ingest_paths(index, [tmp / "docs"])
        write_wav(tmp / "mic.wav", np.zeros(1600, dtype=np.int16), 16000)
        config = tmp / "kiosk.toml"
        config.write_text(_config(indexes[0], tmp / "state"))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp / "notify.sock"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "NOTIFY"))}
        env.update(NOTIFY_SOCKET=str(tmp / "notify.sock"), OPENAI_API_KEY="sk-bench-reload-key")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config),
             "--input-wav", str(tmp / "mic.wav"), "--output-wav", str(tmp / "out.wav")],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        seen = [0]
        try:
            _readies(sock, 1, seen)

            def reload() -> float:
                t = time.perf_counter()
                proc.send_signal(signal.SIGHUP)
                _readies(sock, seen[0] + 1, seen)
                return (time.perf_counter() - t) * 1000

            for _ in range(WARM_UP):
                reload()
            fds0, rss0 = len(_fds(proc.pid)), _rss_mib(proc.pid)
            times = [reload() for _ in range(reloads)]
            fds1, rss1 = len(_fds(proc.pid)), _rss_mib(proc.pid)
            switch_times = []
            for i in range(SWITCHES):
                config.write_text(_config(indexes[(i + 1) % 2], tmp / "state"))
                switch_times.append(reload())
            fds2 = len(_fds(proc.pid))
            stale = [f for f in _fds(proc.pid) if f.startswith(str(indexes[1]))]
        finally:
            proc.terminate()
            proc.wait(10)
            sock.close()
    rows = [
        {"name": f"fd growth over {reloads} reloads", "value": fds1 - fds0, "goal": "<= 2",
         "note": f"{fds0} -> {fds1} fds"},
        {"name": f"RSS growth over {reloads} reloads (MiB)", "value": round(rss1 - rss0, 1),
         "goal": "< 12", "note": f"{rss0:.1f} -> {rss1:.1f} MiB"},
        {"name": f"fd growth over {SWITCHES} index switches", "value": fds2 - fds1,
         "goal": "<= 2", "note": "a new knowledge base per reload"},
        {"name": "fds left on the replaced index", "value": len(stale), "goal": "= 0"},
        {"name": "reload, same [rag] (ms, median)", "value": round(statistics.median(times), 1),
         "note": "SIGHUP -> READY=1"},
        {"name": "reload, new index (ms, median)",
         "value": round(statistics.median(switch_times), 1), "note": "opens index + embedder"},
    ]  # fmt: skip
    return {"rows": rows, "details": {"reload_ms": times, "switch_ms": switch_times}}

"""Measuring real processes in real time, for the benches that run ``kiosk run`` itself.

Not a bench (no ``bench_`` prefix): the parts bench_footprint and bench_visitor share.

- :class:`TreeMeter`: a process and all its descendants, from /proc, sampled every
  ``period_s`` on a thread: CPU from each task's ``schedstat`` (ns on CPU), voluntary
  context switches (a task that sleeps and wakes again: our "wake-ups"), RSS, VmHWM,
  threads, fds. A task that exits keeps the figures of its last sample.
- Paced audio: :func:`pink_noise` (a quiet room), :class:`PacedWriter` (raw PCM into a pipe,
  20 ms at a time on absolute deadlines), and the bare webrtcvad loop (:data:`BARE_LOOP`).
- :func:`kiosk_config` (default settings apart from endpoint and paths), :func:`demo_index`,
  :class:`NotifySocket` (a real sd_notify datagram socket), :class:`FakeServer` (the bundled
  fake Realtime server in its own process, answers paced like the real service).
- :class:`NullSinks`: a private pair of PulseAudio null sinks (mic, speaker); ``PULSE_SOURCE``
  / ``PULSE_SINK`` point a client at them. Held under the PulseAudio tests' machine-wide lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rig_pulse import NullSinks  # noqa: F401  (rig.NullSinks, as the benches name it)

ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 16000
FRAME_MS = 20
PEER_VENV = ROOT / "bench" / ".venv-peer"
PEER_SPEC = "wyoming-satellite[silerovad]==1.0.0"


# --- /proc ----------------------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = _read(f"/proc/{entry}/stat")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree = children_of()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in _read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _kb(value: str) -> float:
    return float(value.split()[0]) / 1024 if value else 0.0


@dataclass
class Sample:
    t: float
    cpu_ns: int
    vcsw: int
    nvcsw: int
    rss_mb: float  # whole tree
    main_rss_mb: float
    main_anon_mb: float  # RssAnon: the process's own memory (the rest is mapped files)
    main_hwm_mb: float
    tree_hwm_mb: float
    threads: int
    fds: int
    processes: int


@dataclass
class TreeMeter:
    """Samples the process tree under ``pid`` until :meth:`stop`."""

    pid: int
    period_s: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    _tasks: dict[tuple[int, int, str], tuple[int, int, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample | None:
        main_rss = main_anon = main_hwm = tree_rss = tree_hwm = 0.0
        threads = fds = procs = 0
        alive = False
        for pid in descendants(self.pid):
            try:
                st = _status(pid)
                tids = os.listdir(f"/proc/{pid}/task")
                nfds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue
            if st.get("State", "").startswith("Z"):
                continue
            alive = True
            procs += 1
            rss, hwm = _kb(st.get("VmRSS", "")), _kb(st.get("VmHWM", ""))
            tree_rss += rss
            tree_hwm += hwm
            if pid == self.pid:
                main_rss, main_hwm = rss, hwm
                main_anon = _kb(st.get("RssAnon", ""))
            threads += int(st.get("Threads", "0"))
            fds += nfds
            for tid in tids:
                try:
                    run_ns = int(_read(f"/proc/{pid}/task/{tid}/schedstat").split()[0])
                    tst = _status_task(pid, tid)
                    start = _read(f"/proc/{pid}/task/{tid}/stat").rsplit(")", 1)[1].split()[19]
                except (OSError, IndexError, ValueError):
                    continue
                self._tasks[(pid, int(tid), start)] = (
                    run_ns,
                    int(tst.get("voluntary_ctxt_switches", "0")),
                    int(tst.get("nonvoluntary_ctxt_switches", "0")),
                )
        if not alive:
            return None
        totals = np.array(list(self._tasks.values()), dtype=np.int64).sum(axis=0)
        s = Sample(
            time.monotonic(),
            int(totals[0]),
            int(totals[1]),
            int(totals[2]),
            tree_rss,
            main_rss,
            main_anon,
            main_hwm,
            tree_hwm,
            threads,
            fds,
            procs,
        )
        self.samples.append(s)
        return s

    def start(self) -> TreeMeter:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_t += self.period_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        """Figures between the first sample at or after ``t0`` and the last at or before ``t1``."""
        inside = [s for s in self.samples if t0 <= s.t <= t1]
        if len(inside) < 2:
            raise RuntimeError(f"pid {self.pid}: fewer than 2 samples in the window (did it die?)")
        a, b = inside[0], inside[-1]
        dt = b.t - a.t
        return {
            "seconds": round(dt, 1),
            "cpu_pct": (b.cpu_ns - a.cpu_ns) / 1e9 / dt * 100,
            "wakeups_per_s": (b.vcsw - a.vcsw) / dt,
            "involuntary_per_s": (b.nvcsw - a.nvcsw) / dt,
            "rss_mb": max(s.rss_mb for s in inside),
            "main_rss_mb": b.main_rss_mb,
            "main_anon_mb": b.main_anon_mb,
            "main_hwm_mb": b.main_hwm_mb,
            "tree_hwm_mb": b.tree_hwm_mb,
            "threads": b.threads,
            "fds": b.fds,
            "processes": b.processes,
        }


def _status_task(pid: int, tid: str) -> dict[str, str]:
    fields = {}
    for line in _read(f"/proc/{pid}/task/{tid}/status").splitlines():
        key, _, value = line.partition(":")
        if key.endswith("ctxt_switches"):
            fields[key] = value.strip()
    return fields


# --- paced audio ---------------------------------------------------------------------------


def pink_noise(seconds: float, dbfs: float = -54.0, seed: int = 7) -> np.ndarray:
    """Mono int16 pink noise at ``dbfs`` RMS: a quiet room with ventilation."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / RATE_HZ)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    x = np.fft.irfft(spectrum, n)
    x *= 10 ** (dbfs / 20) * 32768 / np.sqrt(np.mean(x**2))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate_hz: int = RATE_HZ) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


class PacedWriter:
    """Writes ``pcm`` (looping) into a binary stream 20 ms at a time on absolute deadlines."""

    def __init__(self, stream: Any, pcm: np.ndarray) -> None:
        self._stream = stream
        self._pcm = pcm.astype("<i2").tobytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PacedWriter:
        self._thread.start()
        return self

    def _run(self) -> None:
        step = RATE_HZ * FRAME_MS // 1000 * 2
        pos, t = 0, time.monotonic()
        with contextlib.suppress(OSError, ValueError):
            while not self._stop.is_set():
                chunk = self._pcm[pos : pos + step]
                pos = pos + step if pos + 2 * step <= len(self._pcm) else 0
                self._stream.write(chunk)
                self._stream.flush()
                t += FRAME_MS / 1000
                self._stop.wait(max(0.0, t - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()


# The peer's floor: what any Python VAD listener must at least do. Reads the WAV once, then
# wakes every 20 ms on an absolute deadline and runs webrtcvad on one frame (looping).
BARE_LOOP = """
import sys, time, wave, webrtcvad
w = wave.open(sys.argv[1]); pcm = w.readframes(w.getnframes()); w.close()
vad = webrtcvad.Vad(2); step = 640; pos = 0; t = time.monotonic()
while True:
    vad.is_speech(pcm[pos:pos + step], 16000)
    pos = pos + step if pos + 2 * step <= len(pcm) else 0
    t += 0.02
    time.sleep(max(0.0, t - time.monotonic()))
"""


# The same floor through PortAudio: pyaudio in callback mode, 60 ms blocks (as the kiosk
# asks for), webrtcvad on each 20 ms frame, from the default source (PULSE_SOURCE).
BARE_PYAUDIO_LOOP = """
import time, pyaudio, webrtcvad
vad = webrtcvad.Vad(2)
def callback(data, frames, time_info, status):
    for i in range(0, len(data), 640):
        vad.is_speech(data[i:i + 640], 16000)
    return None, pyaudio.paContinue
pa = pyaudio.PyAudio()
stream = pa.open(format=pyaudio.paInt16, channels=1, rate=16000, input=True,
                 frames_per_buffer=960, stream_callback=callback)
while True:
    time.sleep(3600)
"""


# --- the kiosk and its surroundings -----------------------------------------------------------


def kiosk_config(tmp: Path, endpoint: str, index: Path, extra: str = "") -> Path:
    """Default settings apart from endpoint and paths (plus ``extra`` TOML lines).

    Plus ``gpio.pin_factory = "mock"``: off a Pi the default finds no GPIO and disables the
    LEDs; on mock pins the LED code runs as it would on the Pi.
    """
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    sections: dict[str, list[str]] = {
        "realtime": [f'endpoint = "{endpoint}"'],
        "rag": [f'index_path = "{index}"'],
        "service": [f'state_dir = "{state}"'],
        "gpio": ['pin_factory = "mock"'],
    }
    current = ""
    for line in extra.splitlines():
        if line.startswith("["):
            current = line.strip("[] ")
        elif line.strip():
            sections.setdefault(current, []).append(line)
    text = "".join(f"[{name}]\n" + "\n".join(lines) + "\n" for name, lines in sections.items())
    path = tmp / f"kiosk-{abs(hash(extra)) % 10**6}.toml"
    path.write_text(text)
    return path


def kiosk_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kiosk.cli", *args]


def demo_index(tmp: Path) -> Path:
    """The bundled demo knowledge base, indexed as `kiosk index add` does (with vectors)."""
    from kiosk.rag.embedding import load_embedder
    from kiosk.rag.ingest import ingest_paths
    from kiosk.rag.sqlite_index import SqliteIndex
    from kiosk.simulate import demo_corpus_dir

    path = tmp / "index.sqlite"
    with SqliteIndex(path, embedder=load_embedder()) as idx:
        ingest_paths(idx, [demo_corpus_dir()])
    return path


def kiosk_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.update(OPENAI_API_KEY="sk-bench-not-a-real-key", PYTHONPATH=str(ROOT), **extra)
    return env


class NotifySocket:
    """A bound sd_notify datagram socket: what systemd gives a Type=notify service."""

    def __init__(self, tmp: Path) -> None:
        self.path = str(tmp / f"notify-{os.getpid()}-{id(self)}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def wait_for(self, word: str, timeout_s: float) -> float | None:
        """monotonic time of the first datagram containing ``word``, or None."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode(errors="replace")
            except TimeoutError:
                return None
            if word in data.split("\n"):
                return time.monotonic()
        return None

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fake_server(response_delay_s: float = 0.45, answer_audio_s: float = 2.0) -> Iterator[str]:
    """The bundled fake Realtime server (GA dialect) in its own process; yields its ws:// URL.

    Each response starts ``response_delay_s`` after it was requested (the real service's
    time to first event, ~0.3-0.6 s) and its audio arrives paced at playback speed.
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "kiosk.testing.fake_realtime",
        "--port",
        str(port),
        "--dialect",
        "ga",
        "--answer-audio-s",
        str(answer_audio_s),
        "--response-delay-s",
        str(response_delay_s),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=kiosk_env(), stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None:
                raise RuntimeError("the fake Realtime server exited at start")
            time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="kiosk-bench-")

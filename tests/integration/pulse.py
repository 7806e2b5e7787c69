"""PulseAudio helpers shared by the real-device tests (null sink "vsink", .ci/pulseaudio.sh)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TIMEOUT_FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
NULL_SINK = "vsink"
PULSE_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "pulseaudio.sh"
# The PulseAudio tests share one sound server and one null sink with every other test run on
# the machine, and some unload that sink on purpose (device loss): two runs at once
# (developers' worktrees side by side) fail each other's pace, level and device-loss
# assertions. A machine-wide lock per test keeps them apart; CI runs alone and never waits.
PULSE_LOCK = Path(tempfile.gettempdir()) / "kiosk-tests-pulseaudio.lock"


_held = 0  # how deep this process holds it (a second flock of the file would wait on itself)


@contextlib.contextmanager
def pulse_lock() -> Iterator[None]:
    """Hold the machine-wide lock of the PulseAudio tests (blocking; re-entrant)."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    with PULSE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _held = 1
        try:
            yield
        finally:
            _held = 0
            fcntl.flock(lock, fcntl.LOCK_UN)


def pactl(*args: str) -> str:
    done = subprocess.run(
        ["pactl", *args], capture_output=True, text=True, timeout=10 * TIMEOUT_FACTOR, check=True
    )
    return done.stdout


def pulse_problem() -> str | None:
    """Why the real-device tests cannot run here, or None."""
    if shutil.which("pactl") is None:
        return "pactl not installed (apt-get install pulseaudio-utils)"
    try:
        import pyaudio  # noqa: F401
    except ImportError:
        return "pyaudio not installed (pip install pyaudio; needs portaudio19-dev)"
    try:
        with pulse_lock():  # not while another run has the sink unloaded
            info = pactl("info")
    except (subprocess.SubprocessError, OSError) as exc:
        return f"PulseAudio not reachable ({exc}); run .ci/pulseaudio.sh"
    if f"Default Sink: {NULL_SINK}" not in info:
        return f"default sink is not {NULL_SINK}; run .ci/pulseaudio.sh"
    return None


def require_pulseaudio() -> None:
    """Skip the calling test when the real-device tests cannot run here; under
    ``KIOSK_REQUIRE_PULSEAUDIO=1`` (CI, which starts a server) fail it instead."""
    problem = pulse_problem()
    if problem is None:
        return
    if os.environ.get("KIOSK_REQUIRE_PULSEAUDIO") == "1":
        pytest.fail(f"KIOSK_REQUIRE_PULSEAUDIO=1 but {problem}")
    pytest.skip(problem)


@contextlib.contextmanager
def private_pulseaudio() -> Iterator[str]:
    """A PulseAudio server of the caller's own, with nothing loaded but its socket: yields
    its ``PULSE_SERVER`` address (pactl, libpulse and ALSA's pulse plugin all honour it).

    For a test that unplugs its only sink: on the shared server, any other null sink loaded
    at the time (a bench rig's, another run's leftovers) is where PulseAudio moves the
    streams instead of killing them, so "the device is gone" never happens there."""
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio not installed (a private server needs the PulseAudio daemon)")
    # Its own short directory: a socket path must fit in 108 bytes, pytest's tmp_path may not.
    runtime = Path(tempfile.mkdtemp(prefix="kiosk-pa-"))
    socket_path = runtime / "native"
    env = {
        **os.environ,
        "HOME": str(runtime),
        "XDG_RUNTIME_DIR": str(runtime),
        "PULSE_RUNTIME_PATH": str(runtime),
    }
    env.pop("PULSE_SERVER", None)
    log = (runtime / "server.log").open("wb")
    server = subprocess.Popen(
        [
            "pulseaudio", "-n", "--daemonize=no", "--use-pid-file=no", "--exit-idle-time=-1",
            "--disallow-exit", "--log-target=stderr",
            "-L", f"module-native-protocol-unix socket={socket_path} auth-anonymous=1",
        ],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    address = f"unix:{socket_path}"
    try:
        answered = False
        for _ in range(100):
            if server.poll() is not None:
                break
            probe = subprocess.run(
                ["pactl", "info"], env={**os.environ, "PULSE_SERVER": address},
                capture_output=True, timeout=10 * TIMEOUT_FACTOR,
            )  # fmt: skip
            if probe.returncode == 0:
                answered = True
                break
            time.sleep(0.05)
        if not answered:
            tail = (runtime / "server.log").read_text(errors="replace")[-500:]
            pytest.fail(f"private PulseAudio server did not answer: {tail}")
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=5 * TIMEOUT_FACTOR)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)


def kill_our_recording_and_reopen(source: Any, capture: Any) -> None:
    """A device lost under a running recording, and the recovery: once ``source`` (a started
    PyAudioSource) delivers, the server kills this process's recording streams (``pacmd
    kill-source-output``); ``capture`` (test_pyaudio_pulse.Capture) must then get on_error,
    the source must stop, and after ``source.reopen()`` frames must flow again."""
    capture.wait_for(lambda: len(capture.frames) >= 5, 5.0, "the first captured frames")
    ours = [
        str(output["index"])
        for output in json.loads(pactl("-f", "json", "list", "source-outputs"))
        if output["properties"].get("application.process.id") == str(os.getpid())
    ]
    assert ours, "our recording stream is not listed by the server"
    for index in ours:
        subprocess.run(
            ["pacmd", "kill-source-output", index], check=True, timeout=10 * TIMEOUT_FACTOR
        )
    capture.wait_for(lambda: bool(capture.errors), 5.0, "on_error after the kill")
    assert not source.is_running
    source.reopen()
    resumed_at = capture.frame_count()
    capture.wait_for(lambda: len(capture.frames) >= resumed_at + 25, 5.0, "frames again")

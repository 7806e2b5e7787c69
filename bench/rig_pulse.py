"""PulseAudio for the benches: a private pair of null sinks, held under the PulseAudio tests'
machine-wide lock. Part of :mod:`rig` (``rig.NullSinks``)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any


class NullSinks:
    """Two private null sinks: ``mic`` (we play into it, the kiosk records its monitor) and
    ``speaker`` (the kiosk plays into it). Unloaded on close."""

    # The tests' lock (tests/integration/pulse.py): while our sinks exist, a test that unloads
    # vsink sees its stream moved to them, and the tests' streams would load our CPU figures.
    LOCK = Path(tempfile.gettempdir()) / "kiosk-tests-pulseaudio.lock"

    def __init__(self, tag: str) -> None:
        self.mic, self.speaker = f"kiosk_bench_mic_{tag}", f"kiosk_bench_spk_{tag}"
        self._modules: list[str] = []
        self._lock: Any = None

    @staticmethod
    def available() -> str | None:
        """None when a PulseAudio-protocol server answers and pyaudio imports, else why not."""
        if not shutil.which("pactl") or not shutil.which("pacat"):
            return "pactl/pacat not installed"
        if subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
            return "no PulseAudio server (see .ci/pulseaudio.sh)"
        try:
            import pyaudio  # noqa: F401
        except ImportError:
            return "pyaudio not installed"
        return None

    def open(self) -> NullSinks:
        self._lock = self.LOCK.open("a")
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # waits for the test that holds it
        for name in (self.mic, self.speaker):
            out = subprocess.run(
                ["pactl", "load-module", "module-null-sink", f"sink_name={name}", "norewinds=1"],
                capture_output=True,
                text=True,
                check=True,
            )
            self._modules.append(out.stdout.strip())
        return self

    def env(self) -> dict[str, str]:
        return {"PULSE_SOURCE": f"{self.mic}.monitor", "PULSE_SINK": self.speaker}

    def play_command(self) -> list[str]:
        """Raw 16 kHz mono s16 on stdin -> the mic sink (pacat paces nothing: we do)."""
        return [
            "pacat",
            "--playback",
            f"--device={self.mic}",
            "--format=s16le",
            "--rate=16000",
            "--channels=1",
            "--latency-msec=40",
            "--raw",
        ]

    def close(self) -> None:
        for module in self._modules:
            subprocess.run(["pactl", "unload-module", module], capture_output=True)
        self._modules.clear()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

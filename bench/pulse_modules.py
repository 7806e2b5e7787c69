"""A ``pulse_aec`` run's private PulseAudio modules (null sinks "speaker" and "mic", and for the
``pulse-aec*`` modes ``module-echo-cancel`` between them), what the server reports about their
streams, and the server's CPU time. Part of :mod:`pulse_aec`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

SPEAKER_REWINDS = os.environ.get("PULSE27_SPEAKER_REWINDS") == "1"  # exploration only


def pulseaudio_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "pulseaudio":
                    return int(entry)
            except OSError:
                pass
    return None


def cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, check=True).stdout.strip()


class Modules:
    """The run's private PulseAudio modules, unloaded on exit."""

    def __init__(self, tag: str, rate: int, aec_args: str | None) -> None:
        self.speaker, self.mic = f"p27_spk_{tag}", f"p27_mic_{tag}"
        self.ec_source, self.ec_sink = f"p27_ecsrc_{tag}", f"p27_ecsink_{tag}"
        self.rate, self.aec_args = rate, aec_args
        self.ids: list[str] = []

    def __enter__(self) -> Modules:
        for name in (self.speaker, self.mic):
            rewinds = [] if name == self.speaker and SPEAKER_REWINDS else ["norewinds=1"]
            self.ids.append(pactl("load-module", "module-null-sink", f"sink_name={name}",
                                   *rewinds, f"rate={self.rate}"))
        if self.aec_args is not None:
            args = ["module-echo-cancel", "aec_method=webrtc", f"source_master={self.mic}.monitor",
                    f"sink_master={self.speaker}", f"source_name={self.ec_source}",
                    f"sink_name={self.ec_sink}"]
            if self.aec_args:
                args.append(f"aec_args={self.aec_args}")
            self.ids.append(pactl("load-module", *args))
        return self

    def kiosk_env(self) -> dict[str, str]:
        if self.aec_args is not None:
            return {"PULSE_SOURCE": self.ec_source, "PULSE_SINK": self.ec_sink}
        return {"PULSE_SOURCE": f"{self.mic}.monitor", "PULSE_SINK": self.speaker}

    def source_volume(self, name: str) -> str | None:
        out = pactl("list", "sources")
        part = out.split(f"Name: {name}\n", 1)
        if len(part) < 2:
            return None
        for line in part[1].splitlines():
            if line.strip().startswith("Volume:"):
                return line.split("/")[1].strip() if "/" in line else line.strip()
        return None

    def latencies_ms(self) -> dict[str, Any]:
        """What the server reports for the streams on this run's devices (ms): each client
        stream's buffer plus its device's latency, and the echo canceller's own streams."""
        out: dict[str, Any] = {}
        for kind, dev_key in (("sink-inputs", "Sink Latency"), ("source-outputs", "Source Latency")):
            for block in pactl("list", kind).split("\n\n"):
                name = _prop(block, "media.name") or "?"
                app = _prop(block, "application.name") or ""
                buf = _usec(block, "Buffer Latency")
                dev = _usec(block, dev_key)
                if buf is None:
                    continue
                out[f"{kind[:-1]}:{app}:{name}"] = [round(buf / 1000, 1), round((dev or 0) / 1000, 1)]
        return out

    def __exit__(self, *exc: Any) -> None:
        for mid in reversed(self.ids):
            subprocess.run(["pactl", "unload-module", mid], capture_output=True)


def _prop(block: str, key: str) -> str | None:
    for line in block.splitlines():
        if line.strip().startswith(f"{key} = "):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def _usec(block: str, key: str) -> float | None:
    for line in block.splitlines():
        if line.strip().startswith(f"{key}:"):
            return float(line.split(":", 1)[1].split()[0])
    return None

"""PulseAudio helpers shared by the real-device tests (null sink "vsink", .ci/pulseaudio.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TIMEOUT_FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
NULL_SINK = "vsink"
PULSE_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "pulseaudio.sh"


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
        info = pactl("info")
    except (subprocess.SubprocessError, OSError) as exc:
        return f"PulseAudio not reachable ({exc}); run .ci/pulseaudio.sh"
    if f"Default Sink: {NULL_SINK}" not in info:
        return f"default sink is not {NULL_SINK}; run .ci/pulseaudio.sh"
    return None

"""The module-echo-cancel line ``install.sh --aec`` writes for PulseAudio, loaded in a real
server (helper pulse27, bench/pulse_aec.py).

With no ``aec_args`` PulseAudio's webrtc canceller runs its analog gain control, which drives
the *microphone's* volume: it set the source to 33 % (-28.6 dB, ``agc_start_volume`` 85 of
255) as soon as the module loaded and then moved it while answers played (51-73 %). The
kiosk's levels are absolute (``vad.min_level_dbfs``, ``vad.barge_in_min_level_dbfs``), so the
questions were heard late and barge-ins paused the answer without being confirmed, and each
gain step is an echo-path change the canceller must re-learn mid-answer
(lobby-pulse-aec-tuning-pulse27-2026-12-04.json)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.pulse import pactl, pulse_lock

pytestmark = [pytest.mark.pulseaudio, pytest.mark.usefixtures("pulseaudio_module")]

INSTALL_SH = Path(__file__).resolve().parents[2] / "install.sh"


def installed_module_args() -> dict[str, str]:
    """The key=value words of the ``load-module module-echo-cancel`` line in aec_pulseaudio."""
    text = INSTALL_SH.read_text()
    body = text[text.index("aec_pulseaudio() {") :]
    line = next(l for l in body.splitlines() if l.startswith("load-module module-echo-cancel"))
    words = shlex.split(line)[2:]
    return dict(w.split("=", 1) for w in words)


def source_volume_pct(name: str) -> int:
    block = pactl("list", "sources").split(f"Name: {name}\n", 1)[1]
    line = next(l for l in block.splitlines() if l.strip().startswith("Volume:"))
    return int(re.search(r"(\d+)%", line).group(1))  # type: ignore[union-attr]


def test_install_sh_echo_canceller_leaves_the_microphone_volume_alone() -> None:
    args = installed_module_args()
    assert args["aec_method"] == "webrtc"
    tag = f"aecinst{os.getpid()}"
    mic, spk = f"{tag}_mic", f"{tag}_spk"
    args.update(source_master=f"{mic}.monitor", sink_master=spk,
                source_name=f"{tag}_src", sink_name=f"{tag}_sink")
    loaded: list[str] = []
    with pulse_lock():
        try:
            for name in (mic, spk):
                loaded.append(pactl("load-module", "module-null-sink", f"sink_name={name}").strip())
            pactl("set-source-volume", f"{mic}.monitor", "100%")
            words = [f"{k}={v}" for k, v in args.items()]
            loaded.append(pactl("load-module", "module-echo-cancel", *words).strip())
            rec = subprocess.Popen(  # the kiosk records the echo-cancelled source
                ["parec", f"--device={tag}_src", "--raw"], stdout=subprocess.DEVNULL
            )
            try:
                time.sleep(2.0)  # the gain control set it ~0.5-1 s after recording began
                volume = source_volume_pct(f"{mic}.monitor")
            finally:
                rec.terminate()
                rec.wait(timeout=5)
        finally:
            for module in reversed(loaded):
                subprocess.run(["pactl", "unload-module", module], capture_output=True)
    assert volume == 100

"""bench/lobby_aec_identity.py: a replay fed the reference frames another replay took gives the
same trace, call for call, and a changed decision rule shows up as a differing run."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import lobby_aec_identity as ident  # noqa: E402

from kiosk.audio import speexdsp  # noqa: E402
from kiosk.audio import vad as kiosk_vad  # noqa: E402
from kiosk.core import echo_guard  # noqa: E402

pytestmark = pytest.mark.skipif(not speexdsp.available(), reason="libspeexdsp missing")


def recording(tmp_path: Path) -> Path:
    """An answer (200 Hz, -16 dBFS) echoing at -12 dB for 1.2 s, a voice over it from 0.8 s."""
    t = np.arange(320) / 16000
    answer = (5000 * np.sin(2 * np.pi * 200 * t)).astype("<i2")
    visitor = (4000 * np.sign(np.sin(2 * np.pi * 150 * t))).astype("<i2")
    inputs: list[tuple] = []
    for k in range(60):
        at = k * 0.02
        inputs.append(("play", at, np.resize(answer, 480).tobytes(), False))  # (24 kHz: any tone)
        mic = (answer // 4 + (visitor if k >= 40 else 0)).astype("<i2")
        inputs.append(("mic", mic.tobytes(), at))
        inputs.append(("frame", True, True))
    run = {"mix": "m/seedNone", "mode": "speex", "kind": "bargein", "echo_db": -12.0,
           "onset_s": 0.8, "inputs": inputs}  # fmt: skip
    path = tmp_path / "aec-replay-test.pkl"
    path.write_bytes(pickle.dumps([run]))
    return path


def test_fed_the_same_references_a_replay_is_identical_and_a_changed_rule_is_caught(tmp_path, monkeypatch):
    voiced = lambda frame: np.abs(np.frombuffer(frame, dtype="<i2")).max() > 100  # noqa: E731
    monkeypatch.setattr(kiosk_vad, "voice_detector", lambda *a, **k: voiced)
    path = recording(tmp_path)
    before = ident.traced([path], None)
    assert before["references"] and before["runs"][0]["trace"]
    same = ident.compare(before, ident.traced([path], before["references"]))
    assert same["runs_differing"] == [] and same["endpointer_calls"] >= 60  # (and the raw guard's)
    monkeypatch.setattr(echo_guard, "DEFAULT_ECHO_RETURN_DB", -30.0)  # a rule changed
    changed = ident.compare(before, ident.traced([path], before["references"]))
    assert changed["runs_differing"] and "trace" in changed["runs_differing"][0]["differ"]

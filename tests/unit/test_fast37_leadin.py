"""bench/fast37_leadin.py: the visitor's quiet lead-in of a barge-in row (the interruption clip's
level per 20 ms frame from its labelled onset, as mixed) and which seed and mix a row is."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import fast37_leadin as fl  # noqa: E402
import lobby_corpus as lc  # noqa: E402


def _wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def test_the_levels_start_at_the_labelled_onset_and_carry_the_mix_gain(tmp_path):
    # 100 ms of silence, 60 ms at a quiet level (a consonant), then a loud vowel.
    rng = np.random.default_rng(0)
    quiet = rng.standard_normal(960) * 100.0
    loud = np.sin(np.arange(3200) * 2 * np.pi * 200 / 16000) * 10000.0
    clip = _wav(tmp_path / "c.wav", np.concatenate([np.zeros(1600), quiet, loud]))
    mix = lc.Mix("heldout-bargein-081", "heldout", "bargein", 1, 16000, 5.0, "pink", -50.0)
    mix.interruption = {"clip": str(clip), "gain_db": -6.0, "onset_in_clip_s": 0.1}
    levels = fl.clip_levels(mix, frames=6)
    expected = 20 * np.log10(100 / 32768) - 6  # (the noise's rms, less the mix gain)
    assert all(abs(x - expected) < 1.0 for x in levels[:3])
    assert levels[3] > -20 and levels[3] - levels[2] > 30  # the vowel's first frame
    assert fl.FRAME_S == 0.02


def test_a_row_names_its_seed_or_the_file_does():
    doc = {"seeds": [961]}
    assert fl.row_seed_mix({"mix": "s971-heldout-bargein-085"}, doc) == (971, "heldout-bargein-085")
    assert fl.row_seed_mix({"mix": "heldout-bargein-084"}, doc) == (961, "heldout-bargein-084")
    assert fl.row_seed_mix({"mix": "heldout-bargein-084"}, {"seed": 331}) == (331, "heldout-bargein-084")

"""The echo canceller lines its reference up with the echo it hears: the lag is measured from
the signals (``kiosk.audio.echo_delay``), so a speaker latency misjudged either way is still
cancelled (before, one over-estimated by more than the lead was not cancelled at all), and the
guard knows what is left of the echo is unknown again after the filter restarts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kiosk.audio.echo_cancel import REFERENCE_LEAD_MS, EchoCanceller, EchoReference
from kiosk.audio.echo_delay import TARGET_MS, EchoDelayEstimator
from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion

from .test_echo_cancel import FRAME, RATE, _need_speex, db, i16, room, speech


@pytest.mark.parametrize("lag_ms", [-40.0, 0.0, 12.5, 90.0])
def test_the_lag_of_a_delayed_copy_is_found(lag_ms):
    rng = np.random.default_rng(4)
    ref = rng.standard_normal(RATE) * 3000
    d = int(lag_ms * RATE / 1000)
    mic = np.roll(ref, d) * 0.3 + rng.standard_normal(RATE) * 30
    estimator = EchoDelayEstimator(FRAME, RATE)
    found = None
    for k in range(RATE // FRAME):
        s = slice(k * FRAME, (k + 1) * FRAME)
        got = estimator.observe(i16(mic[s]).tobytes(), i16(ref[s]).tobytes())
        found = got if found is None else found
    assert found is not None and abs(found - lag_ms) <= 0.1, found
    assert estimator.observe(bytes(FRAME * 2), bytes(FRAME * 2)) is None  # settled: no more work


def test_a_silent_reference_or_unrelated_audio_settles_nothing():
    rng = np.random.default_rng(5)
    estimator = EchoDelayEstimator(FRAME, RATE)
    for _ in range(100):
        mic = i16(rng.standard_normal(FRAME) * 3000).tobytes()
        assert estimator.observe(mic, bytes(FRAME * 2)) is None  # nothing played
        assert estimator.observe(mic, i16(rng.standard_normal(FRAME) * 3000).tobytes()) is None
    assert not estimator.settled


@pytest.mark.parametrize("misjudged_ms", [-30.0, 0.0, 40.0])
def test_the_echo_is_cancelled_whichever_way_the_speakers_latency_is_misjudged(misjudged_ms):
    """The stamps say the speaker is heard at t; it is heard at t + misjudged_ms (negative:
    earlier than the stamps, which no lead of a few ms covers)."""
    _need_speex()
    far = speech(8.0)
    d = int((misjudged_ms + 60) * RATE / 1000)  # 60 ms of true latency, reported as 60 + ...
    echo = np.convolve(np.concatenate([np.zeros(d), far]), room(3, -12.0))[: far.size]
    noise = np.random.default_rng(0).standard_normal(far.size) * 10 ** (-70 / 20) * 32768
    mic, ref16 = i16(echo + noise), i16(far)
    now = [0.0]
    reference = EchoReference(lambda: now[0] + 0.06, source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20)
    out = np.zeros_like(mic)
    for k in range(far.size // FRAME):
        now[0] = k * 0.02
        reference.played(ref16[k * FRAME : (k + 1) * FRAME].tobytes())
        s = slice(k * FRAME, (k + 1) * FRAME)
        out[s] = np.frombuffer(canceller.process(mic[s].tobytes(), now[0]), dtype=np.int16)
    canceller.close()
    later = slice(4 * RATE, None)
    erle = db(mic[later]) - db(out[later])
    assert erle >= 20.0, f"ERLE {erle:.1f} dB with the latency misjudged by {misjudged_ms} ms"
    # Lined up once where needed: the echo's direct sound (1.5 ms into the room) TARGET_MS
    # after the reference.
    lag_before = misjudged_ms + REFERENCE_LEAD_MS + 1.5
    assert canceller.realignments == (1 if abs(lag_before - TARGET_MS) >= 4 else 0)
    moved = (lag_before - TARGET_MS) * canceller.realignments
    assert abs(canceller.lead_ms - (REFERENCE_LEAD_MS - moved)) <= 1.0


class PassThrough:
    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        return mic


def test_the_reference_level_is_the_one_lined_up_with_the_microphone():
    """reference_dbfs: the loudest reference frame the filter holds for this frame, -inf
    once the speaker has been silent for longer than the filter's span."""
    now = [0.0]
    reference = EchoReference(lambda: now[0] + 0.1, source_rate_hz=RATE)
    canceller = EchoCanceller(reference, 20, lambda f, n, r: PassThrough(), align=False)
    tone = i16(np.sin(np.arange(FRAME) * 0.3) * 3000).tobytes()
    levels = []
    for k in range(40):
        now[0] = k * 0.02
        if k < 10:
            reference.played(tone)  # heard 100 ms later, for 200 ms
        canceller.process(bytes(FRAME * 2), now[0])
        levels.append(canceller.reference_dbfs)
    heard = [k for k, v in enumerate(levels) if math.isfinite(v)]
    assert heard[0] == 5 - REFERENCE_LEAD_MS // 20 - (1 if REFERENCE_LEAD_MS % 20 else 0)
    assert 15 <= heard[-1] <= 15 + 8  # the filter's span after the last frame heard
    assert not math.isfinite(levels[-1])


def test_after_the_filter_restarts_the_echo_return_is_relearned():
    endpointer = Endpointer(lambda f: False, VadSettings(), 20)
    endpointer.echo_relearn = True
    endpointer.guarded = True
    frame = i16(np.full(FRAME, 30.0)).tobytes()  # ~ -61 dBFS: a well-cancelled echo
    for _ in range(40):
        endpointer.process(frame, -15.0)
    assert endpointer.echo_cancelled_well and endpointer.echo_return_db is not None
    endpointer.echo_path_changed()
    assert not endpointer.echo_cancelled_well and endpointer.echo_return_db is None


@pytest.mark.parametrize("aec", [True, False])
def test_with_aec_the_first_opinion_alone_pauses_the_answer_a_frame_later(aec):
    """An unconverged canceller's residual leaks for a frame or three that webrtcvad calls
    voice: with AEC (not yet trusted) the first opinion alone counts one frame less towards
    pausing the answer; once the second opinion agrees on a loud frame, every frame counts
    (and without AEC, always; a trusted canceller: tests/unit/test_aec_double_talk.py)."""
    vad = FirstOpinion()
    endpointer = Endpointer(vad, VadSettings(), 20)
    endpointer.echo_relearn = aec
    endpointer.guarded = True
    quiet, loud = i16(np.full(FRAME, 600.0)).tobytes(), i16(np.full(FRAME, 3000.0)).tobytes()
    for _ in range(60):  # an echo cancelled to only 20 dB under a loud answer
        endpointer.process(quiet, -15.0)
    assert not endpointer.echo_cancelled_well
    vad.provisional = True
    seen = []
    for _ in range(3):
        endpointer.process(loud, -15.0)
        seen.append(endpointer.suspected_speech_ms)
    assert seen == ([0, 20, 40] if aec else [20, 40, 60])
    vad.confirmed = True
    endpointer.process(loud, -15.0)
    assert endpointer.suspected_speech_ms == 80


def test_finding_the_lag_does_not_import_numpy_ma():
    """np.median imports numpy.ma (+1.3 MB that stays for the daemon's life after its first
    answer); the estimator takes its median without it (a fresh interpreter: another test
    may have imported numpy.ma into this one)."""
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys, numpy as np\n"
        "from kiosk.audio.echo_delay import EchoDelayEstimator\n"
        "rng = np.random.default_rng(4); ref = (rng.standard_normal(16000) * 3000).astype('<i2')\n"
        "mic = np.roll(ref, 80) // 3\n"
        "e = EchoDelayEstimator(320, 16000)\n"
        "for k in range(50): e.observe(mic[k*320:(k+1)*320].tobytes(), ref[k*320:(k+1)*320].tobytes())\n"
        "assert e.estimates > 0 and e.settled, (e.estimates, e.settled)\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "False"

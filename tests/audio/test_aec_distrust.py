"""The guard distrusts the in-process canceller (``audio.echo_cancel = "speex"``) from each new
playback stretch on until what the filter leaves is relearned (helper speexpa29).

Through a real sound server each stretch (a new answer, the answer resuming after a pause) is
placed by its own stamp, 0.1-0.5 ms off the last: enough to undo what SpeexDSP's filter learned
(speexpa28's traces through PulseAudio: ERLE 14 dB at the end of an answer, -2 to 4 dB over the
next one's first second). A guard that still trusted the filter from the answer before (no
absolute level minimum, the bar at the small return it learned) took the leak for a visitor and
paused the answer, and again at each resume: loops of 4-20 self-pauses (tuning mixes 073, 074,
077 through ``bench/pulse_aec.py``). So the canceller reports an echo-path change to the guard at
each new stretch and each reline (``EchoCanceller.realignments``), and the guard's rules hold
until the echo return is relearned and low again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.vad import webrtc_voice_detector
from kiosk.config import load_config
from kiosk.core.endpointing import Endpointer
from kiosk.hearing import EchoFrontEnd
from tests.audio.test_echo_cancel import FRAME, RATE, _need_speex, i16, room, speech

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

LATENCY_S = 0.05  # the speaker's true latency (its stamps)


def test_a_new_stretch_stamped_off_is_distrusted_until_the_echo_is_relearned() -> None:
    _need_speex()
    cfg = load_config('[audio]\necho_cancel = "speex"\n', {}, require_key=False)
    buffer = PlaybackBuffer(RATE)
    now = [0.0]
    error = [0.0]  # how far the speaker's reported latency is off its true value
    endpointer = Endpointer(webrtc_voice_detector(cfg.vad.aggressiveness, RATE, 20), cfg.vad, 20)
    front = EchoFrontEnd(cfg, buffer, lambda: now[0], lambda: LATENCY_S + error[0], endpointer)
    assert front.echo_canceller is not None
    total_s = 13.0
    heard = np.zeros(int(total_s * RATE) + RATE)  # what the speaker sounds, by audible time
    answer = speech(12.0)
    stretches = [(0.5, 5.5, 0.0), (7.0, 12.0, 0.0003)]  # (from, to, stamp error)
    rir = room(3, -12.0)
    noise = np.random.default_rng(5).standard_normal(heard.size) * 10 ** (-65 / 20) * 32768
    trust: dict[float, bool] = {}
    for k in range(int(total_s / 0.02)):
        now[0] = t = k * 0.02
        for begin, end, err in stretches:
            if abs(t - begin) < 1e-9:
                buffer.write(i16(answer[: int((end - begin) * RATE)]).tobytes(), "answer")
                error[0] = err
        pcm = buffer.read(FRAME)  # the speaker takes a block every 20 ms, heard LATENCY_S later
        at = round((t + LATENCY_S) * RATE)
        heard[at : at + FRAME] = np.frombuffer(pcm, np.int16)
        j = k - 4  # the frame captured 80 ms ago is handed over now (its echo is all heard)
        if j < 0:
            continue
        lo = j * FRAME
        window = heard[max(0, lo - rir.size + 1) : lo + FRAME]
        echo = np.convolve(window, rir)[window.size - FRAME : window.size]
        frame = i16(echo + noise[lo : lo + FRAME]).tobytes()
        cleaned, _ = front.clean(frame, j * 0.02)
        front.judge(cleaned, None)
        trust[round(j * 0.02, 2)] = endpointer.echo_cancelled_well
    canceller = front.echo_canceller
    assert trust[5.4], "the filter converged and was trusted in the first stretch"
    # the second stretch, 0.3 ms off the first: not trusted over its first 200 ms (the old
    # canceller kept the first stretch's trust: True throughout)
    assert not any(trust[round(7.0 + i * 0.02, 2)] for i in range(10))
    # ...and trusted again once the lag was measured, the reference moved back onto the lag the
    # filter learned, and what it leaves relearned
    assert canceller.relines == 1
    assert any(trust[round(10.0 + i * 0.02, 2)] for i in range(50))
    front.close()


def _lined_up_canceller():
    """A rechecking canceller (as ``echo_canceller_for`` builds it for "speex") whose lag was
    measured and lined up on 2 s of a stretch (the echo 20 ms after its stamps), with a fake
    filter; returns (canceller, now, play_and_hear(t, stamp_error_s))."""
    from tests.audio.rechecking import rechecking_canceller

    rig = rechecking_canceller(11, 40, RATE)
    canceller, now = rig.canceller, rig.now

    def step(t: float, stamp_error_s: float = 0.0, playing: bool = True) -> None:
        rig.play_and_hear(t, playing, stamp_error_s)

    for k in range(100):
        step(1.0 + k * 0.02)
    assert canceller.realignments == 1  # lined up
    return canceller, now, step


def test_once_lined_up_the_microphone_frames_keep_their_sample_count() -> None:
    """Stamps 6 ms off for a second (quiet hand-overs in batches through PulseAudio) moved the
    timeline a whole step: the echo came 5 ms off the lag the filter learned (7fdf16e: tuning
    mix 073's later answer paused itself at 16.45 s; 074's next answer restarted its filter)."""
    canceller, _, step = _lined_up_canceller()
    at = [canceller._mic.last_s]
    for k in range(100):  # 2 s more of the stretch, the stamps 6 ms late throughout
        step(3.0 + k * 0.02, 0.006)
        at.append(canceller._mic.last_s)
    assert np.allclose(np.diff(at), 0.02, atol=1e-9), "the frames follow their count"
    assert canceller.realignments == 1


def test_a_drop_while_the_lag_is_measured_again_still_tells_the_guard() -> None:
    """A pause ends the stretch (the lag measured again from there), then the sink's drop places
    the answer's next block by its stamp: that too is a new echo path for the guard (2df1d2d:
    tuning mix 077's later answer resumed trusted and paused again at 12.65 and 13.03 s)."""
    canceller, now, step = _lined_up_canceller()
    t = 3.0
    for k in range(12):  # the speaker holds: 240 ms of silence, the stretch ends
        step(t + k * 0.02, playing=False)
    seen = canceller.realignments
    assert seen == 2  # (the stretch ended: measured again)
    canceller.reference.dropped(0.05)
    for k in range(5):
        step(t + 0.24 + k * 0.02)
    assert canceller.realignments == seen + 1


def test_a_held_timeline_starts_afresh_and_steps_again_after_a_restart() -> None:
    from kiosk.audio.mic_timeline import MicTimeline

    timeline = MicTimeline(0.02)
    for k in range(20):
        timeline.place(k * 0.02)
    timeline.held = True
    for k in range(20, 80):  # stamps 8 ms late: held, the count stays
        assert abs(timeline.place(k * 0.02 + 0.008) - k * 0.02) < 1e-9
    timeline.place(10.0)  # the stream restarted: a fresh start, no longer held
    assert not timeline.held
    for k in range(1, 60):  # its first stamp was 8 ms early: the median's step corrects it
        at = timeline.place(10.0 + k * 0.02 + 0.008)
    assert abs(at - (10.0 + 59 * 0.02 + 0.008)) < 0.003

"""The SpeexDSP warm-up answer's leak right after the canceller's first trust since start-up: through
PulseAudio (used seed 791 mix 079, the kiosk's first answer, 5.274 s into the room, 1.78 s into the
answer) the filter had been trusted for 11 frames (0.22 s) for the first time since start-up when
it leaked one frame: its linear output -35.3 dBFS, 2.1 dB over its own echo estimate and 8 dB over
the guard's bar, the raw microphone 4.1 dB over the echo's usual raw return, the linear output's
pitch the answer's (0.91 / 0.92). The double-talk estimate path paused the answer on its own echo
(bench/results/warm35-2026-12-06.md). In the first WARM_UP_TRUSTED_MS of trust since start-up
that path also needs the raw microphone WARM_UP_RAW_OVER_RETURN_DB over the usual return: a
visitor adds to what the echo brings; after that window it is as before, and neither a new answer
nor a reload that keeps the adapted canceller starts the window again.
"""

from __future__ import annotations

from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import FirstOpinion
from tests.unit.helpers import level_frame as frame

PAUSE_MS = VadSettings().barge_in_pause_ms
ROOM = -50.3  # the room's level (the guard's bar there: the onset level, -43.3 dBFS)
FAR = -20.2  # what the speaker played (the reference the filter holds)
USUAL = -18.6  # the echo's usual raw return (microphone - reference, dB)
LEFT = -35.4  # the echo's return after the canceller (cleaned frame - reference, dB)
HIGH = (-70.0, -72.0)  # the linear output over 3 kHz and its estimate there, echo alone
# s791/079's frame: cleaned dBFS, (linear output, echo estimate, raw microphone) dBFS, the linear
# output's pitch (its own, the reference's at that period), over 3 kHz (linear, estimate).
LEAK = (-58.7, (-35.3, -37.4, -34.7), (0.91, 0.92), (-67.7, -72.4))


def echo(endpointer: Endpointer) -> None:
    """One frame of the answer's echo alone, as the filter leaves it."""
    raw = FAR + USUAL
    endpointer.process(
        frame(FAR + LEFT), FAR, linear=(raw - 14.0, raw - 4.0, raw), linear_high=HIGH
    )
    assert endpointer.suspected_speech_ms == 0


def started(vad: FirstOpinion) -> Endpointer:
    """A SpeexDSP kiosk just started: the room alone, then its first answer until the canceller
    is trusted for the first time (the frame in which the trust comes is not one of its trusted
    frames: it is judged as before it)."""
    endpointer = Endpointer(vad, VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(250):
        endpointer.process(frame(ROOM), None)
    trust_in(endpointer)
    return endpointer


def trust_in(endpointer: Endpointer) -> None:
    for _ in range(100):
        echo(endpointer)
        if endpointer.echo_cancelled_well:
            return
    raise AssertionError("never trusted")


def trusted_for(endpointer: Endpointer, frames: int) -> None:
    """Echo frames until the next frame is the ``frames``-th trusted one (counting from 1)."""
    for _ in range(frames - 1):
        echo(endpointer)


def suspicion(
    vad: FirstOpinion,
    endpointer: Endpointer,
    raw_over: float = 0.0,
    linear_over: float = 0.0,
    raw_known: bool = True,
) -> int:
    """The leak frame (its raw microphone ``raw_over`` dB louder, its linear output
    ``linear_over``); webrtcvad's first opinion calls it voice, the confirmed one not (as traced)."""
    level, (linear, estimate, raw), pitch, high = LEAK
    vad.provisional, vad.confirmed = True, False
    endpointer.process(
        frame(level),
        FAR,
        linear=(linear + linear_over, estimate, raw + raw_over)[: 3 if raw_known else 2],
        linear_pitch=lambda: pitch,
        linear_high=high,
    )
    seen = endpointer.suspected_speech_ms
    vad.provisional = False
    endpointer.reset()
    return seen


def test_the_first_trusts_leak_does_not_pause_the_warm_up_answer():
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) < PAUSE_MS  # main: paused at once (double talk)


def test_a_visitor_over_the_echo_in_the_window_still_pauses_the_answer():
    """The raw microphone 5 dB or more over the echo's usual return (4.1 + 1.0 dB): her voice adds
    to the echo; double talk pauses the answer at once, in the warm-up window too."""
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) < PAUSE_MS  # (the window is on: the leak alone does not)
    assert suspicion(vad, endpointer, raw_over=1.0) >= PAUSE_MS
    assert suspicion(vad, endpointer, raw_over=6.0) >= PAUSE_MS
    # Her voice over the filter's estimate (the linear output 3.1 dB over it): as before. A voice
    # raises the raw microphone too (here 0.6 dB); the linear output rising alone is the young
    # filter adding to the echo (stop 46's warm46: judged by the answer's pitch).
    assert suspicion(vad, endpointer, raw_over=0.6, linear_over=1.0) >= PAUSE_MS
    # A canceller that does not tell the raw microphone's level: as before.
    assert suspicion(vad, endpointer, raw_known=False) >= PAUSE_MS


def test_the_loud_path_is_untouched_in_the_window():
    """Loud voice after suppression too (webrtcvad's first opinion, the cleaned frame over the bar),
    the linear output well over the bar: double talk pauses at once, whatever the raw microphone."""
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) < PAUSE_MS
    level, (linear, estimate, raw), pitch, high = LEAK
    vad.provisional = True
    endpointer.process(
        frame(-40.0),
        FAR,
        linear=(linear, estimate, raw),
        linear_pitch=lambda: (0.9, 0.3),
        linear_high=high,
    )
    assert endpointer.suspected_speech_ms >= PAUSE_MS


def test_after_the_first_0_8_s_of_trust_the_estimate_path_is_as_before():
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) < PAUSE_MS  # 11th trusted frame
    trusted_for(endpointer, 39 - 11)
    assert suspicion(vad, endpointer) < PAUSE_MS  # 39th: the last of the window
    assert suspicion(vad, endpointer) >= PAUSE_MS  # 40th: as on main


def test_a_new_answer_does_not_start_the_window_again():
    """The next playback stretch restarts the guard's trust (echo_path_changed), not the window:
    a later answer's visitor gets the estimate path as before (trust comes and goes within answers;
    warm35: later-answer barge-ins overlap the warm-up leak on every feature but this one)."""
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) < PAUSE_MS
    trusted_for(endpointer, 40 - 11)
    for _ in range(100):  # the answer ends, the room alone
        endpointer.process(frame(ROOM), None)
    endpointer.echo_path_changed()  # the next answer's stretch
    assert not endpointer.echo_cancelled_well
    trust_in(endpointer)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) >= PAUSE_MS


def test_a_reload_keeps_the_count_with_the_canceller_and_starts_it_with_a_new_one():
    """A SIGHUP reload builds a new endpointer: with the adapted canceller kept (its trust carried
    over: Endpointer.carry_room) the warm-up is over where it was; a new canceller is cold again,
    and its first trust starts the window anew."""
    vad = FirstOpinion()
    endpointer = started(vad)
    trusted_for(endpointer, 11)
    assert suspicion(vad, endpointer) < PAUSE_MS
    trusted_for(endpointer, 20 - 11)  # the next is the 20th trusted frame since start-up
    kept = Endpointer(vad, VadSettings(), 20)
    kept.echo_relearn = True
    kept.carry_room(endpointer, canceller_kept=True)
    assert kept.echo_cancelled_well
    trusted_for(kept, 39 - 20 + 1)  # the 20th-38th (the echo's usual raw return heard again)
    assert suspicion(vad, kept) < PAUSE_MS  # 39th trusted frame since start-up
    assert suspicion(vad, kept) >= PAUSE_MS  # 40th
    cold = Endpointer(vad, VadSettings(), 20)
    cold.echo_relearn = True
    cold.carry_room(endpointer, canceller_kept=False)
    assert not cold.echo_cancelled_well
    trust_in(cold)
    trusted_for(cold, 39)
    assert suspicion(vad, cold) < PAUSE_MS

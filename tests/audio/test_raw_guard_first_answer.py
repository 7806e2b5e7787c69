"""Until the guard trusts the echo canceller (a first answer after start-up), its bar over the
cleaned frames stands at the loudest echo return the converging filter leaves, and a visitor
was heard later than the guard alone hears her on the raw microphone (lobby tuning, replayed
first answers: -12 dB 469 ms at worst against the guard's 409, -6 dB 719 against 219).
:class:`kiosk.audio.raw_guard.RawMicGuard` judges the raw frames beside the canceller, by the
guard mode's own rules, until the canceller is trusted; the pipeline pauses on either."""

from __future__ import annotations

import pytest

from kiosk.audio.raw_guard import RawMicGuard

from .test_aec_pitch_first_answer import cold_front_end, first_answer_mix
from .test_echo_cancel import FRAME, RATE, _need_speex, i16


class _Speaker:
    """A playback buffer as the tap sees it (its blocks are played into the tap's reference)."""

    rate_hz, earcon_in_last_read = RATE, False

    def add_read_listener(self, listener: object) -> None:
        pass

    def remove_read_listener(self, listener: object) -> None:
        pass


def _first_answer(visitor_at_s, echo_db, visitor_db=0.0, answer_dbfs=-14.0, raw=True):
    """A cold canceller; an answer at ``answer_dbfs`` echoing at ``echo_db`` in a -60 dBFS room;
    a visitor (another voice, ``visitor_db`` against the answer's raw echo) from
    ``visitor_at_s``. The answer's pauses (s), as the pipeline pauses (with the raw guard, or
    on the cleaned frames alone), and per frame whether the canceller was trusted."""
    far, mic16, ref16, noise = first_answer_mix(
        visitor_at_s, echo_db, answer_dbfs, visitor_db, visitor_against_echo=True
    )
    now, reference, canceller, settings, endpointer = cold_front_end()
    guard = RawMicGuard(_Speaker(), lambda: now[0], lambda: 0.0, 20, settings)
    for k in range(100):  # the room alone, 2 s
        now[0] = -2.0 + k * 0.02
        quiet = i16(noise[:FRAME]).tobytes()
        guard.hear(quiet, now[0], False, endpointer)
        endpointer.process(quiet, None)
    pauses, trusted, listened, held = [], [], [], False
    for k in range(far.size // FRAME):
        now[0] = k * 0.02
        block = ref16[k * FRAME : (k + 1) * FRAME].tobytes()
        reference.played(block)
        guard.tap.reference.played(block)
        canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.app does)
        frame = mic16[k * FRAME : (k + 1) * FRAME].tobytes()
        cleaned = canceller.process(frame, now[0])
        guard.hear(frame, now[0], True, endpointer)
        listened.append(guard.listens)
        endpointer.guarded = True
        endpointer.earcon_echo = canceller.earcon_audible
        endpointer.process(
            cleaned, canceller.reference_dbfs, linear=canceller.linear_levels, pitch=canceller.frame_pitch
        )
        suspected = endpointer.suspected_speech_ms
        if raw:
            suspected = max(suspected, guard.suspected_speech_ms)
        pause = suspected >= settings.barge_in_pause_ms
        if pause and not held:
            pauses.append(round(k * 0.02, 2))
        held = pause
        trusted.append(endpointer.echo_cancelled_well)
    canceller.close()
    guard.close()
    return pauses, trusted, listened


@pytest.mark.parametrize("echo_db", [-12.0, -6.0])
def test_before_the_canceller_is_trusted_the_raw_guard_hears_a_visitor_sooner(echo_db):
    """A visitor 6 dB under the raw echo, 1 s into a first answer: on the cleaned frames alone
    the answer paused 420 ms after she began; the guard's rules on the raw frames pause it
    within 100 ms (the canceller is trusted only ~3 s later)."""
    _need_speex()
    pauses, trusted, _ = _first_answer(1.0, echo_db, visitor_db=-6.0)
    assert not any(trusted[: int(1.5 / 0.02)])
    assert pauses and 1.0 <= pauses[0] <= 1.1, pauses
    cleaned_only, _, _ = _first_answer(1.0, echo_db, visitor_db=-6.0, raw=False)
    assert cleaned_only and cleaned_only[0] >= 1.3, cleaned_only  # (as before)


@pytest.mark.parametrize("echo_db", [-20.0, -12.0, -6.0])
def test_the_raw_guard_adds_no_pause_to_a_first_answers_echo_and_stops_once_trusted(echo_db):
    """The echo alone: the same pauses as on the cleaned frames alone (none of its own; this
    test's crude energy detector calls a leaking residual voice at -12 and -6 dB, 2 s in, with
    or without it), none in the answer's first 300 ms, where the guard's pitch cue, before the
    echo's lag is lined up, paused it 160 ms in; and it stops listening once the canceller is
    trusted."""
    _need_speex()
    pauses, trusted, listened = _first_answer(None, echo_db)
    assert pauses == _first_answer(None, echo_db, raw=False)[0]
    assert all(p > 1.0 for p in pauses), pauses
    first_trusted = trusted.index(True)  # the canceller does become trusted
    assert any(listened[:first_trusted])
    assert not any(listened[first_trusted + 1 :])


@pytest.mark.parametrize(("answer_dbfs", "visitor_db"), [(-26.0, 0.0), (-24.0, -1.0)])
def test_the_raw_guard_hears_a_quiet_visitor_over_a_quiet_echo(answer_dbfs, visitor_db):
    """A quiet first answer (-26 / -24 dBFS, its echo at -12 dB) and a visitor about as loud as
    that echo, mostly under the guard mode's -30 dBFS floor (vad.barge_in_min_level_dbfs): the
    raw guard's level rule counts her from 6 dB under it (raw_guard.LEVEL_UNDER_MIN_DB) and the
    answer pauses within 100 ms of her onset; at the floor itself it paused 260 / 180 ms after."""
    _need_speex()
    pauses, trusted, _ = _first_answer(1.0, -12.0, visitor_db=visitor_db, answer_dbfs=answer_dbfs)
    assert not any(trusted)
    assert pauses and 1.0 <= pauses[0] <= 1.1, pauses

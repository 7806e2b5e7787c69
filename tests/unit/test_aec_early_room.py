"""Before the room's level is known (a visitor who spoke at once: the idle frames that led up to
the onset are taken back, c6e3f96) the echo guard stands the quietest block heard so far in for
it. Lobby tuning, AEC: mix 086's first answer taught the room's noise in its quiet stretches as
a +0.8 dB echo return (the visitor was never heard), and mix 076's answer paused itself on the
room's own noise, which sat over ``vad.min_level_dbfs``.
"""

from __future__ import annotations

import pytest

from kiosk.config import VadSettings
from kiosk.core.endpointing import Endpointer
from tests.unit.helpers import level_frame as frame

ROOM_DBFS = -49.0  # the lobby's noise, just over vad.min_level_dbfs (-50)


class Voice:
    """webrtcvad's first opinion hears voice in every frame (it does in a lobby's noise)."""

    provisional = True

    def __call__(self, frame: bytes) -> bool:
        return True


def answering_before_the_room_is_known() -> Endpointer:
    """An AEC kiosk whose every frame so far was a visitor's turn (no idle room heard), now
    playing its answer."""
    endpointer = Endpointer(Voice(), VadSettings(), 20)
    endpointer.echo_relearn = True
    for _ in range(30):  # 600 ms heard, none of it idle
        endpointer.noise.observe(ROOM_DBFS, idle=False)
    assert endpointer.noise_floor_dbfs is None
    endpointer.guarded = True
    return endpointer


def test_quiet_stretches_of_the_first_answer_do_not_teach_the_rooms_noise_as_echo():
    endpointer = answering_before_the_room_is_known()
    for _ in range(12):  # the answer fades in at -50 dBFS: the microphone hears the room
        endpointer.process(frame(ROOM_DBFS), -50.0)
    for _ in range(12):  # its first word at -17 dBFS, the echo cancelled to -53
        endpointer.process(frame(-53.0), -17.0)
    assert endpointer.echo_return_db == pytest.approx(-36.0, abs=0.5)  # old: +1 (the room)
    for _ in range(3):  # a visitor over the next word
        endpointer.process(frame(-25.0), -17.0)
    assert endpointer.suspected_speech_ms >= 40


def test_the_rooms_own_noise_under_a_quiet_stretch_of_the_answer_does_not_pause_it():
    endpointer = answering_before_the_room_is_known()
    for _ in range(25):  # learned and trusted: the echo cancelled to 36 dB under
        endpointer.process(frame(-49.5), -13.5)
    assert endpointer.echo_cancelled_well
    for _ in range(10):  # the answer speaks softly; the microphone hears the room
        endpointer.process(frame(ROOM_DBFS), -30.0)
        assert endpointer.suspected_speech_ms == 0  # old: a pause after 3 frames, then a turn
    assert not endpointer.in_speech

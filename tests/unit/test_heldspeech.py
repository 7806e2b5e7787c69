"""kiosk.core.heldspeech: speech heard during the ERROR hold, kept whole and bounded."""

from __future__ import annotations

from kiosk.core.endpointing import EndOfSpeech, Onset, Speech
from kiosk.core.heldspeech import HeldSpeech


def test_onset_speech_and_end_are_kept_in_order_with_the_preroll() -> None:
    held = HeldSpeech(max_bytes=1000)
    assert not held
    held.add(Onset(b"pre"))
    held.add(Speech(b"-one"))
    held.add(Speech(b"-two"))
    assert held and not held.complete
    held.add(EndOfSpeech(speech_s=1.0))
    assert bytes(held.audio) == b"pre-one-two" and held.complete


def test_audio_beyond_max_bytes_is_dropped() -> None:
    held = HeldSpeech(max_bytes=6)
    held.add(Onset(b"1234"))
    held.add(Speech(b"5678"))
    assert bytes(held.audio) == b"123456"


def test_speech_without_an_onset_and_after_the_end_is_not_kept() -> None:
    held = HeldSpeech(max_bytes=100)
    held.add(Speech(b"stray"))
    assert not held and held.audio == b""
    held.add(Onset(b"a"))
    held.add(EndOfSpeech(speech_s=0.5))
    held.add(Speech(b"late"))
    assert bytes(held.audio) == b"a"


def test_a_second_question_replaces_the_first_and_no_speech_clears() -> None:
    held = HeldSpeech(max_bytes=100)
    held.add(Onset(b"first"))
    held.add(EndOfSpeech(speech_s=1.0))
    held.add(Onset(b"second"))
    assert bytes(held.audio) == b"second" and not held.complete
    held.add(EndOfSpeech(speech_s=0.0, no_speech=True))
    assert not held and held.audio == b""


def test_the_tail_of_a_sentence_the_failure_cut_off_is_not_a_new_question() -> None:
    held = HeldSpeech(max_bytes=100, skip_tail=True)
    held.add(Onset(b"...rest of"))
    held.add(Speech(b" the sentence"))
    held.add(EndOfSpeech(speech_s=0.8))
    assert not held and held.audio == b""
    held.add(Onset(b"new"))  # the visitor asks again
    held.add(EndOfSpeech(speech_s=1.0))
    assert bytes(held.audio) == b"new" and held.complete

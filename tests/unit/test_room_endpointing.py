"""The room-aware endpointer: the ambient floor, onset and continuation relative to it, the
echo tail of the barge-in guard, early speech over a still-learning guard, and the
neural second opinion that runs only while webrtcvad hears voice.

Frames come from the scripted ``Mic`` of test_endpointing (voiced when non-zero; the level
is the frame's RMS); the neural VAD is a stand-in that counts its calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from kiosk.audio.vad import ConfirmedVoiceDetector
from kiosk.config import VadSettings
from kiosk.core.endpointing import ECHO_LEARN_FRAMES, EndOfSpeech, Onset
from kiosk.core.noisefloor import NoiseFloor
from kiosk.core.syllables import SyllableCounter, block_levels_dbfs
from tests.unit.test_endpointing import (
    FRAME_BYTES,
    FRAME_MS,
    SETTINGS,
    Mic,
    make_mic,
    numbers,
    play_over,
)
from tests.unit.test_endpointing import is_speech as is_voiced

HVAC_DBFS = -40.0  # steady room noise webrtcvad calls voiced
VISITOR_DBFS = -20.0


# --- the floor itself ----------------------------------------------------------------------------


def test_levels_are_unknown_until_enough_audio_then_track_steady_noise() -> None:
    floor = NoiseFloor(FRAME_MS, window_s=2.0)
    for _ in range(20):
        floor.observe(-45.0)
    assert floor.dbfs is None and floor.ambient_dbfs is None  # 400 ms: not trusted yet
    for _ in range(10):
        floor.observe(-45.0)
    assert floor.ambient_dbfs == pytest.approx(-45.0) and floor.dbfs is None  # 600 ms idle
    for _ in range(70):
        floor.observe(-45.0)
    assert floor.dbfs == pytest.approx(-45.0)  # the floor: a whole window


def test_floor_ignores_short_loud_events_and_follows_a_level_step_within_its_window() -> None:
    floor = NoiseFloor(FRAME_MS, window_s=2.0)
    for _ in range(100):
        floor.observe(-50.0)
    for _ in range(15):  # a door slam / a visitor's word: 300 ms
        floor.observe(-15.0)
    assert floor.dbfs == pytest.approx(-50.0)
    for _ in range(100):  # the HVAC steps up for good: within the window the floor follows
        floor.observe(-40.0)
    assert floor.dbfs == pytest.approx(-40.0)


def test_floor_treats_digital_silence_as_pcm16_floor_and_is_carried_to_a_new_tracker() -> None:
    floor = NoiseFloor(FRAME_MS)
    for _ in range(200):
        floor.observe(float("-inf"))
    assert floor.dbfs == pytest.approx(-96.0)
    fresh = NoiseFloor(FRAME_MS)
    fresh.carry_from(floor)
    assert fresh.dbfs == floor.dbfs


# --- onset and continuation relative to the room -------------------------------------------------


def learned_room() -> Mic:
    """A mic whose endpointer has heard the HVAC long enough (the scripted detector calls it
    voice, so at a cold start it opens one turn, closed here as max_utterance_s would)."""
    mic = make_mic()
    mic.play(300, HVAC_DBFS)
    mic.endpointer.reset()
    mic.play(50, HVAC_DBFS)
    assert not mic.endpointer.in_speech
    return mic


def test_steady_voiced_noise_never_opens_a_turn_but_a_visitor_above_it_does() -> None:
    mic = learned_room()
    assert mic.play(1000, HVAC_DBFS) == []  # 20 s of hum above min_level_dbfs, called voiced
    assert mic.endpointer.noise_floor_dbfs == pytest.approx(HVAC_DBFS, abs=0.5)
    assert mic.endpointer.onset_level_dbfs == pytest.approx(HVAC_DBFS + SETTINGS.onset_margin_db, abs=0.5)
    (onset,) = mic.play(5, VISITOR_DBFS)
    assert isinstance(onset, Onset)


def test_voiced_noise_at_the_floor_does_not_keep_a_turn_open() -> None:
    mic = learned_room()
    mic.play(20, VISITOR_DBFS)  # a question
    ends = [e for e in mic.play(SETTINGS.hangover_ms // FRAME_MS, HVAC_DBFS) if isinstance(e, EndOfSpeech)]
    assert len(ends) == 1 and ends[0].speech_s == pytest.approx(20 * FRAME_MS / 1000)
    assert not mic.endpointer.in_speech


def test_a_turn_opened_by_a_noise_step_ends_once_the_window_has_learned_the_new_level() -> None:
    settings = VadSettings(min_speech_ms=100, hangover_ms=200, preroll_ms=60, noise_window_s=2.0)
    mic = make_mic(settings)
    mic.silence(100)  # a silent room
    events = mic.play(200, HVAC_DBFS)  # the HVAC starts: webrtcvad calls it voiced
    assert isinstance(events[0], Onset)
    ends = [i for i, e in enumerate(events) if isinstance(e, EndOfSpeech)]
    # It ends within the window + hangover, and the level never opens another turn.
    assert len(ends) == 1 and ends[0] * FRAME_MS <= (2.0 * 1000 + settings.hangover_ms + 200)
    assert mic.play(500, HVAC_DBFS) == []


def test_pauses_between_words_keep_the_floor_down_during_a_long_turn() -> None:
    mic = make_mic()
    mic.play(100, HVAC_DBFS)
    for _ in range(40):  # 16 s of speech, a 120 ms gap every 400 ms
        mic.play(20, VISITOR_DBFS)
        mic.play(6, HVAC_DBFS)
    assert mic.endpointer.noise_floor_dbfs == pytest.approx(HVAC_DBFS, abs=0.5)
    assert mic.endpointer.in_speech


# --- the echo tail and early speech over the guard -----------------------------------------------


def test_guard_outlasts_the_playback_queue_by_the_echo_tail() -> None:
    settings = VadSettings(min_speech_ms=100, hangover_ms=200, preroll_ms=60, echo_tail_ms=200,
                           barge_in_min_level_dbfs=-30.0)
    mic = make_mic(settings)
    play_over(mic, ECHO_LEARN_FRAMES + 10, -20.0, -10.0)  # echo return -10 dB learned
    mic.endpointer.guarded = False  # the queue ran empty; the room still rings
    tail_frames = settings.echo_tail_ms // FRAME_MS
    assert mic.play(tail_frames, -20.0) == []  # echo of the last block: never an onset
    assert not mic.endpointer.echo_guarded
    assert isinstance(mic.play(5, VISITOR_DBFS)[0], Onset)  # the tail is over


def test_speech_over_a_still_learning_guard_keeps_its_start() -> None:
    mic = make_mic()
    play_over(mic, ECHO_LEARN_FRAMES + 5, -30.0, -10.0)  # a first answer: echo return -20 dB
    mic.endpointer.guarded = False
    mic.silence(30)  # the answer ended; a new one starts and its period learns again
    first = mic.count + 1
    events = play_over(mic, 40, -5.0, -10.0)  # the visitor talks from the answer's first frame
    onsets = [e for e in events if isinstance(e, Onset)]
    assert len(onsets) == 1
    assert first in numbers(onsets[0].audio)  # the first word is not lost to the learning


# --- the neural second opinion -------------------------------------------------------------------


class FakeNeural:
    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.chunks: list[bytes] = []
        self.resets = 0

    def __call__(self, chunk: bytes) -> float:
        self.chunks.append(chunk)
        return self.probability

    def reset(self) -> None:
        self.resets += 1


def confirmed(first_says: list[bool], probability: float) -> tuple[list[bool], FakeNeural]:
    neural = FakeNeural(probability)
    answers = iter(first_says)
    detect = ConfirmedVoiceDetector(lambda frame: next(answers), neural, FRAME_MS, 0.5,
                                    chunk_bytes=FRAME_BYTES, reset=neural.reset)
    frames = [bytes([i % 256]) * FRAME_BYTES for i in range(len(first_says))]
    return [detect(f) for f in frames], neural


def test_neural_vad_sleeps_while_webrtcvad_hears_nothing() -> None:
    out, neural = confirmed([False] * 100, 0.9)
    assert out == [False] * 100 and neural.chunks == []


def test_neural_vad_vetoes_voiced_noise_and_confirms_speech() -> None:
    noise, _ = confirmed([True] * 20, 0.1)
    speech, _ = confirmed([True] * 20, 0.9)
    assert not any(noise) and all(speech)


def test_neural_vad_wakes_warmed_with_the_audio_before_and_sleeps_after_a_gap() -> None:
    says = [False] * 10 + [True] * 5 + [False] * 20 + [True] * 2
    _, neural = confirmed(says, 0.9)
    assert neural.resets == 2  # woke twice: once per voiced stretch after a long gap
    assert neural.chunks[0] == bytes([5]) * FRAME_BYTES  # 100 ms of warm-up before frame 10
    # Awake through the unvoiced gap only until it goes back to sleep (160 ms = 8 frames).
    assert len(neural.chunks) == 5 + 5 + 8 + 5 + 2


# --- semantic end of turn, carried room ----------------------------------------------------------

EOT = VadSettings(min_speech_ms=100, hangover_ms=700, complete_hangover_ms=300,
                  complete_after_ms=1200, complete_after_syllables=0, preroll_ms=60)
# The same with the syllable cue: 1.2 s and 8 nuclei, or 1.6 s whatever the count.
EOT_SYL = dataclasses.replace(EOT, complete_after_syllables=8, complete_long_ms=1600)
SYLLABLE_FRAMES = 8  # a syllable: 100 ms loud, 60 ms 12 dB down (5 dB would still be a dip)


def end_after_pause(speech_frames: int, settings: VadSettings = EOT, syllables: bool = False) -> int:
    """Silent frames after ``speech_frames`` of speech until the utterance ends (steady
    speech, or syllables: loud and 12 dB quieter frames in turn, still voiced)."""
    mic = make_mic(settings)
    mic.silence(30)
    for k in range(speech_frames):
        loud = not syllables or k % SYLLABLE_FRAMES < 5
        mic.play(1, VISITOR_DBFS if loud else VISITOR_DBFS - 12)
    for n in range(1, 100):
        if mic.silence(1):
            return n
    raise AssertionError("never ended")


def test_a_sentence_long_utterance_ends_after_the_short_pause() -> None:
    assert end_after_pause(1200 // FRAME_MS) * FRAME_MS == 300


def test_a_short_utterance_looks_unfinished_and_may_pause_up_to_the_cap() -> None:
    assert end_after_pause(800 // FRAME_MS) * FRAME_MS == 700


def test_syllable_cue_a_sentence_long_in_time_but_few_syllables_looks_unfinished() -> None:
    # 1.28 s: 8 syllables end after the short pause; the same time as one long vowel
    # ("uhhhh", or a slow speaker's half question: too few nuclei) may pause up to the cap.
    frames = 8 * SYLLABLE_FRAMES
    assert end_after_pause(frames, EOT_SYL, syllables=True) * FRAME_MS == 300
    assert end_after_pause(frames, EOT_SYL) * FRAME_MS == 700
    assert end_after_pause(7 * SYLLABLE_FRAMES, EOT_SYL, syllables=True) * FRAME_MS == 700


def test_syllable_cue_a_long_utterance_is_finished_whatever_the_count() -> None:
    assert end_after_pause(1600 // FRAME_MS, EOT_SYL) * FRAME_MS == 300
    assert end_after_pause(1580 // FRAME_MS, EOT_SYL) * FRAME_MS == 700


def test_syllable_counter_counts_level_peaks_above_the_threshold_only() -> None:
    counter = SyllableCounter()
    counter.feed([-30, -25, -31, -60, -29, -28, -40], threshold_dbfs=-35.0)
    assert counter.count == 2
    counter.feed([-38, -36, -38, -36, -60], threshold_dbfs=-35.0)  # below the threshold
    assert counter.count == 2
    counter.feed([-30, -29.0, -30.0, -28.5, -27.0], threshold_dbfs=-35.0)  # ripples < 3 dB
    assert counter.count == 3  # one peak, still at its height
    counter.reset()
    assert counter.count == 0


def test_block_levels_split_a_frame_into_10_ms_blocks() -> None:
    import numpy as np

    x = np.concatenate([np.full(160, 3277), np.zeros(160)]).astype("<i2").tobytes()
    loud, silent = block_levels_dbfs(x, 20)
    assert loud == pytest.approx(-20.0, abs=0.01) and silent == float("-inf")
    assert len(block_levels_dbfs(x[:320], 10)) == 1


def test_complete_long_ms_below_complete_after_ms_is_a_one_line_config_error() -> None:
    from kiosk.errors import ConfigError
    from tests.unit.config_loading import config_error

    err = config_error("[vad]\ncomplete_after_ms = 1500\ncomplete_long_ms = 1400\n")
    assert isinstance(err, ConfigError) and err.key == "vad.complete_long_ms"
    assert config_error("[vad]\ncomplete_after_syllables = -1\n").key == "vad.complete_after_syllables"


def test_carry_room_keeps_the_floor_and_echo_return_across_a_reload() -> None:
    old = learned_room()
    play_over(old, ECHO_LEARN_FRAMES, -22.0, -10.0)
    new = make_mic()
    new.endpointer.carry_room(old.endpointer)
    assert new.endpointer.noise_floor_dbfs == old.endpointer.noise_floor_dbfs
    assert new.endpointer.echo_return_db == pytest.approx(-12.0, abs=0.2)
    assert new.play(200, HVAC_DBFS) == []  # no relearning: the room's hum never opens a turn


def test_neural_vad_stays_asleep_for_voiced_frames_quieter_than_any_onset() -> None:
    """A quiet room's hum that webrtcvad calls voiced must not wake the neural model."""
    import numpy as np

    neural = FakeNeural(0.9)
    detect = ConfirmedVoiceDetector(lambda frame: True, neural, FRAME_MS, 0.5,
                                    chunk_bytes=FRAME_BYTES, reset=neural.reset,
                                    wake_level_dbfs=-50.0)
    samples = FRAME_BYTES // 2
    hum = (np.ones(samples) * 32768 * 10 ** (-56 / 20)).astype("<i2").tobytes()  # -56 dBFS
    voice = (np.ones(samples) * 32768 * 10 ** (-30 / 20)).astype("<i2").tobytes()  # -30 dBFS
    assert [detect(hum) for _ in range(50)] == [False] * 50
    assert neural.chunks == [] and neural.resets == 0
    assert detect(voice) is True
    assert neural.resets == 1 and neural.chunks[-1] == voice
    assert detect(hum) is True  # awake: a quiet frame inside speech is judged, not gated


def test_the_room_s_own_noise_does_not_wake_the_neural_vad_below_the_onset_level() -> None:
    """A quiet room (-54 dBFS) has noise frames a few dB up (-49) that webrtcvad now and then
    calls voiced: louder than vad.min_level_dbfs (-50), quieter than any onset (room + 7 dB).
    The endpointer tells the detector so, and the neural model is not even asked."""
    from kiosk.core.endpointing import Endpointer
    from tests.unit.test_endpointing import is_speech

    neural = FakeNeural(0.9)
    detect = ConfirmedVoiceDetector(is_speech, neural, FRAME_MS, 0.5, chunk_bytes=FRAME_BYTES,
                                    reset=neural.reset, wake_level_dbfs=-50.0)
    settings = dataclasses.replace(SETTINGS, min_level_dbfs=-50.0, onset_margin_db=7.0)
    mic = Mic(Endpointer(detect, settings, FRAME_MS))
    assert mic.play(300, -54.0) == []
    assert mic.endpointer.onset_level_dbfs == pytest.approx(-47.0, abs=0.1)
    for _ in range(20):
        assert mic.play(2, -49.0) + mic.play(48, -54.0) == []
    assert neural.resets == 0 and neural.chunks == []
    events = mic.play(10, VISITOR_DBFS)  # a visitor: wakes it, and is confirmed
    assert neural.resets == 1 and any(isinstance(e, Onset) for e in events)


def test_babble_is_judged_by_its_typical_level_not_by_the_gaps_between_words() -> None:
    # Other people talking: loud words with quiet gaps (webrtcvad and Silero call it speech).
    mic = make_mic(VadSettings(min_speech_ms=100, hangover_ms=200, preroll_ms=60, min_level_dbfs=-40.0))
    for _ in range(30):
        assert mic.play(10, -44.0) + mic.play(10, -62.0) == []
    floor, room = mic.endpointer.noise.dbfs, mic.endpointer.noise_floor_dbfs
    assert floor is not None and room is not None and room > floor + 10
    for _ in range(20):
        assert mic.play(10, -39.0) + mic.play(10, -62.0) == []  # louder words of the same babble
    assert isinstance(mic.play(5, -44.0 + 15.0)[0], Onset)  # a visitor 15 dB above it


def test_a_stale_speaker_level_is_no_echo_reference() -> None:
    # A speaker that stops reading when idle leaves its last level standing: after the
    # reference window it must not keep the guard up (the visitor's next question is heard).
    mic = make_mic()
    play_over(mic, ECHO_LEARN_FRAMES + 5, -20.0, -10.0)
    mic.endpointer.guarded = False
    for _ in range(100):
        mic.endpointer.process(mic.frame(None), -10.0)  # the stale level, silence in the room
    assert not mic.endpointer.echo_guarded
    events: list[object] = []
    for _ in range(5):
        events += mic.endpointer.process(mic.frame(VISITOR_DBFS), -10.0)
    assert any(isinstance(e, Onset) for e in events)


def test_speech_that_starts_during_an_earcon_is_heard_from_its_first_frame() -> None:
    mic = make_mic(VadSettings())  # the shipped timings: 180 ms earcon, 250 ms echo tail
    mic.silence(50)
    play_over(mic, 3, None, -20.0)  # the earcon starts (its echo is below the room here)
    first = mic.count + 1
    events = play_over(mic, 6, VISITOR_DBFS, -20.0)  # the visitor starts talking over it
    mic.endpointer.guarded = False  # the earcon ended
    events += mic.play(60, VISITOR_DBFS)
    onsets = [e for e in events if isinstance(e, Onset)]
    assert len(onsets) == 1
    assert first in numbers(onsets[0].audio)  # nothing of it was lost to the earcon


def test_a_visitor_heard_before_the_room_is_not_learned_as_the_room() -> None:
    # Found as a 1-in-15 failure of tests/reliability's reconnect test: a kiosk whose first
    # audio is a visitor's question counted the frames before the onset (a run broken by one
    # unvoiced frame, then the proving run) as idle, so the room's median became their
    # voice and a follow-up question 5 dB quieter, asked right after the answer, was not heard.
    settings = VadSettings(min_speech_ms=200, hangover_ms=200, preroll_ms=300)
    mic = make_mic(settings)
    mic.play(8, VISITOR_DBFS)
    mic.silence(1)
    events = mic.play(50, VISITOR_DBFS)
    assert any(isinstance(e, Onset) for e in events)
    assert any(isinstance(e, EndOfSpeech) for e in mic.silence(20))
    mic.silence(10)  # the answer plays (guarded, unheard here); then 200 ms of quiet
    room = mic.endpointer.noise_floor_dbfs
    assert room is None or room < VISITOR_DBFS - 20, room
    (onset,) = [e for e in mic.play(20, VISITOR_DBFS - 5) if isinstance(e, Onset)]


def test_noise_floor_forgets_the_last_idle_frames_it_is_told_were_a_visitor() -> None:
    floor = NoiseFloor(FRAME_MS, window_s=2.0)
    for _ in range(50):
        floor.observe(-60.0)
    for _ in range(50):
        floor.observe(-20.0)  # 10 blocks of a visitor before their onset was proved
    assert floor.ambient_dbfs == pytest.approx(-20.0)
    floor.retract_idle(50)
    assert floor.ambient_dbfs == pytest.approx(-60.0)
    floor.retract_idle(10_000)  # more than was heard: nothing left to judge by
    assert floor.ambient_dbfs is None


class ReleasableNeural(FakeNeural):
    def __init__(self, probability: float) -> None:
        super().__init__(probability)
        self.releases = 0

    def release(self) -> None:
        self.releases += 1


def lobby_mic(neural: ReleasableNeural, first_says: Callable[[bytes], bool]) -> Mic:
    """The daemon's pairing: the endpointer tells a confirmed detector the wake level and
    whether the room's level is known yet (release after the default 30 s)."""
    from kiosk.core.endpointing import Endpointer

    detect = ConfirmedVoiceDetector(first_says, neural, FRAME_MS, 0.5, chunk_bytes=FRAME_BYTES,
                                    reset=neural.reset, wake_level_dbfs=-50.0,
                                    release=neural.release)
    settings = dataclasses.replace(SETTINGS, min_level_dbfs=-50.0, onset_margin_db=7.0)
    return Mic(Endpointer(detect, settings, FRAME_MS))


def test_a_wake_by_the_lobby_before_its_level_is_known_is_let_go_of_once_it_is() -> None:
    """A -40 dBFS lobby that webrtcvad calls voiced now and then wakes the neural VAD in the
    first frames (above vad.min_level_dbfs, the only wake level until the room is learned);
    once the room's level is known it is released at once (not 30 s later: +5 MB for the
    first half minute, bench rag_idle), and the same noise never wakes it again."""
    neural = ReleasableNeural(0.1)  # Silero calls the noise noise
    from kiosk.core.endpointing import frame_dbfs

    frames = iter(range(10**6))  # webrtcvad: 3 frames in 20 of the lobby, a visitor throughout
    loud = HVAC_DBFS + 10
    mic = lobby_mic(neural, lambda frame: next(frames) % 20 < 3 or frame_dbfs(frame) > loud)
    assert mic.play(5, HVAC_DBFS) == []
    assert neural.resets == 1 and neural.releases == 0  # woken blind: the room is unknown
    assert mic.play(45, HVAC_DBFS) == []  # 1 s in
    assert mic.endpointer.noise_floor_dbfs == pytest.approx(HVAC_DBFS, abs=0.5)
    assert neural.releases == 1
    wakes = neural.resets
    assert mic.play(2000, HVAC_DBFS) == []  # 40 s of the same lobby
    assert neural.resets == wakes and neural.releases == 1
    neural.probability = 0.9
    assert any(isinstance(e, Onset) for e in mic.play(20, VISITOR_DBFS))  # a visitor wakes it
    assert neural.resets == wakes + 1


def test_a_visitor_talking_as_the_kiosk_starts_is_heard_with_the_early_release() -> None:
    """Speech from the first frame wakes the neural VAD before the room is known: the visitor
    is heard, the model lets go of it once asleep with the room known, and their next
    question (after the answer) wakes it again and is heard too."""
    neural = ReleasableNeural(0.9)
    mic = lobby_mic(neural, is_voiced)
    events = mic.play(8, VISITOR_DBFS) + mic.play(1, None) + mic.play(50, VISITOR_DBFS)
    assert [e for e in events if isinstance(e, Onset)] and neural.resets == 1
    assert any(isinstance(e, EndOfSpeech) for e in mic.silence(30))
    assert neural.releases == 0  # the room's level is learned from idle audio only
    mic.silence(20)  # the answer plays (unheard here); the room's level is learned meanwhile
    assert neural.releases == 1  # asleep with the room known: let go of
    assert any(isinstance(e, Onset) for e in mic.play(20, VISITOR_DBFS - 5))
    assert neural.resets == 2

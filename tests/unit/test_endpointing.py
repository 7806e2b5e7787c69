"""kiosk.core.endpointing: onset with pre-roll, pauses, hangover, the barge-in guard and
button-opened turns, driven by a scripted voice detector.

Every frame is numbered (sample 0 holds its number), so a test can say exactly which
frames went upstream. The detector calls a frame voiced when its level samples are
non-zero; ``level_dbfs`` sets how loud.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kiosk.config import VadSettings
from kiosk.core.endpointing import (
    ECHO_LEARN_FRAMES,
    SUSPECT_GAP_MS,
    EndOfSpeech,
    Endpointer,
    EndpointEvent,
    Onset,
    Speech,
    frame_dbfs,
)

FRAME_MS = 20
SAMPLES = 16000 * FRAME_MS // 1000
FRAME_BYTES = SAMPLES * 2
NORMAL_DBFS = -20.0  # a person at the kiosk
QUIET_DBFS = -40.0  # voiced, but about the level of the speaker's echo

# min speech 5 frames, hangover 10 frames, pre-roll 3 frames; guarded: 10 frames, >= -30 dBFS.
SETTINGS = VadSettings(
    min_speech_ms=100,
    hangover_ms=200,
    preroll_ms=60,
    barge_in_min_speech_ms=200,
    barge_in_min_level_dbfs=-30.0,
)


def is_speech(frame: bytes) -> bool:
    """The scripted detector: voiced when the level samples (all but sample 0) are non-zero."""
    return bool(np.frombuffer(frame, dtype="<i2")[1:].any())


def numbers(audio: bytes) -> list[int]:
    """The frame numbers in ``audio`` (a concatenation of whole frames)."""
    assert len(audio) % FRAME_BYTES == 0, len(audio)
    return [
        int(np.frombuffer(audio[i : i + 2], dtype="<i2")[0])
        for i in range(0, len(audio), FRAME_BYTES)
    ]


class Mic:
    """Makes numbered frames and feeds them to an endpointer, recording what came out."""

    def __init__(self, endpointer: Endpointer) -> None:
        self.endpointer = endpointer
        self.count = 0
        self.events: list[tuple[int, EndpointEvent]] = []  # (frame number, event)

    def frame(self, dbfs: float | None) -> bytes:
        self.count += 1
        samples = np.zeros(SAMPLES, dtype="<i2")
        if dbfs is not None:
            samples[1:] = round(32768 * 10 ** (dbfs / 20))
        samples[0] = self.count
        return samples.tobytes()

    def play(self, n: int, dbfs: float | None = NORMAL_DBFS) -> list[EndpointEvent]:
        """``n`` frames at ``dbfs`` (None = silence); returns the events they produced."""
        out: list[EndpointEvent] = []
        for _ in range(n):
            events = self.endpointer.process(self.frame(dbfs))
            self.events += [(self.count, e) for e in events]
            out += events
        return out

    def silence(self, n: int) -> list[EndpointEvent]:
        return self.play(n, None)

    def streamed(self) -> list[int]:
        """Frame numbers of everything sent upstream so far (onset + speech)."""
        return [
            n for _, e in self.events if isinstance(e, Onset | Speech) for n in numbers(e.audio)
        ]


def make_mic(settings: VadSettings = SETTINGS, **kwargs: float) -> Mic:
    return Mic(Endpointer(is_speech, settings, FRAME_MS, **kwargs))


def test_frame_dbfs_measures_rms_level() -> None:
    full = np.full(SAMPLES, 16384, dtype="<i2").tobytes()
    assert frame_dbfs(full) == pytest.approx(20 * math.log10(0.5))
    assert frame_dbfs(bytes(FRAME_BYTES)) == -math.inf
    assert frame_dbfs(b"") == -math.inf


def test_onset_after_min_speech_carries_preroll_and_proving_frames() -> None:
    mic = make_mic()
    assert mic.silence(10) == []  # frames 1..10
    assert mic.play(4) == []  # 80 ms voiced: not yet
    (onset,) = mic.play(1)  # the 5th voiced frame = 100 ms
    assert isinstance(onset, Onset)
    assert numbers(onset.audio) == [8, 9, 10, 11, 12, 13, 14, 15]  # 3 frames of pre-roll first
    assert mic.endpointer.in_speech


def test_onset_with_no_preroll_configured_has_only_speech() -> None:
    mic = make_mic(VadSettings(min_speech_ms=100, hangover_ms=200, preroll_ms=0))
    mic.silence(5)
    (onset,) = mic.play(5)
    assert isinstance(onset, Onset)
    assert numbers(onset.audio) == [6, 7, 8, 9, 10]


def test_short_blips_do_not_open_and_become_preroll() -> None:
    mic = make_mic()
    mic.silence(3)  # 1..3
    assert mic.play(4) == []  # cough 4..7
    assert mic.silence(1) == []  # 8
    assert mic.play(2) == []  # click 9..10
    assert mic.silence(2) == []  # 11..12
    assert not mic.endpointer.in_speech
    (onset,) = mic.play(5)  # 13..17
    assert isinstance(onset, Onset)
    assert numbers(onset.audio) == [
        10,
        11,
        12,
        13,
        14,
        15,
        16,
        17,
    ]  # pre-roll is what came just before


def test_pause_inside_speech_is_streamed_only_when_speech_resumes() -> None:
    mic = make_mic()
    mic.play(5)  # 1..5: onset
    speech = mic.play(1)  # 6
    assert [numbers(e.audio) for e in speech if isinstance(e, Speech)] == [[6]]
    assert mic.silence(4) == []  # 7..10: a pause, held back
    resumed = mic.play(1)  # 11
    assert len(resumed) == 1 and isinstance(resumed[0], Speech)
    assert numbers(resumed[0].audio) == [7, 8, 9, 10, 11]


def test_trailing_silence_is_never_streamed_and_end_comes_after_hangover() -> None:
    mic = make_mic()
    mic.silence(2)  # 1..2
    mic.play(15)  # 3..17
    assert mic.silence(9) == []  # 18..26: 180 ms, hangover is 200 ms
    (end,) = mic.silence(1)  # 27
    assert isinstance(end, EndOfSpeech)
    assert not end.no_speech
    assert mic.streamed() == list(range(1, 18))  # pre-roll 1..2, speech 3..17, no silence after
    assert not mic.endpointer.in_speech


def test_end_of_speech_reports_onset_to_last_voiced_frame() -> None:
    mic = make_mic()
    mic.silence(3)
    mic.play(15)  # 300 ms
    mic.silence(3)  # 60 ms pause inside the utterance
    mic.play(5)  # 100 ms
    (end,) = mic.silence(10)
    assert isinstance(end, EndOfSpeech)
    assert end.speech_s == pytest.approx(0.46)


def test_after_end_of_speech_a_new_onset_needs_min_speech_again() -> None:
    mic = make_mic()
    mic.play(5)
    mic.silence(10)
    assert mic.play(4) == []
    assert isinstance(mic.play(1)[0], Onset)


# --- the half-duplex guard -----------------------------------------------------------------------


def test_guarded_onset_needs_barge_in_min_speech() -> None:
    mic = make_mic()
    mic.endpointer.guarded = True
    mic.silence(3)
    assert mic.play(9) == []  # 180 ms: enough normally, not while our answer plays
    (onset,) = mic.play(1)  # 200 ms
    assert isinstance(onset, Onset)
    assert numbers(onset.audio)[-10:] == list(range(4, 14))


def test_guarded_onset_ignores_speech_quieter_than_barge_in_level() -> None:
    guarded = make_mic()
    guarded.endpointer.guarded = True
    assert guarded.play(30, QUIET_DBFS) == []
    assert not guarded.endpointer.in_speech
    unguarded = make_mic()
    assert isinstance(unguarded.play(5, QUIET_DBFS)[0], Onset)


def test_guarded_quiet_voiced_frames_neither_count_nor_break_a_loud_run() -> None:
    # Real speech dips between syllables ("ちょっと待って" never holds -30 dBFS for 400 ms):
    # a quieter voiced frame does not restart the count, it just does not add to it.
    mic = make_mic()
    mic.endpointer.guarded = True
    mic.play(8)
    assert mic.play(1, QUIET_DBFS) == []
    assert mic.play(1) == []  # 9 loud frames so far
    (onset,) = mic.play(1)[:1]  # the 10th loud frame proves it
    assert isinstance(onset, Onset)
    assert len(numbers(onset.audio)) >= 11  # the quiet frame is part of the utterance


def test_guarded_unvoiced_gap_breaks_a_loud_run() -> None:
    """Once the loud run paused the answer, a gap up to SUSPECT_GAP_MS may be between two
    syllables (tests/unit/test_guard_gap.py); a longer one ends the run: the blip is over."""
    mic = make_mic()
    mic.endpointer.guarded = True
    mic.play(8)
    mic.play(SUSPECT_GAP_MS // FRAME_MS + 1, None)  # silence: a cough-sized blip is over
    assert mic.play(9) == []
    assert isinstance(mic.play(1)[0], Onset)


def test_long_quiet_voiced_run_never_opens_and_stays_bounded() -> None:
    mic = make_mic()
    assert mic.play(500, -60.0) == []  # hum webrtcvad calls voiced, below min_level_dbfs
    assert len(mic.endpointer._onset_frames) * FRAME_MS <= 3 * SETTINGS.min_speech_ms + FRAME_MS


def play_over(mic: Mic, n: int, dbfs: float | None, far_end_dbfs: float) -> list[EndpointEvent]:
    """``n`` guarded frames while the speaker plays at ``far_end_dbfs``."""
    mic.endpointer.guarded = True
    out: list[EndpointEvent] = []
    for _ in range(n):
        out += mic.endpointer.process(mic.frame(dbfs), far_end_dbfs)
    return out


def test_guard_learns_the_echo_first_and_never_counts_it() -> None:
    mic = make_mic()
    # A loud echo path: the speaker at -10 dBFS comes back at -18 dBFS, far above the
    # absolute barge_in_min_level_dbfs (-30): only the learned echo return keeps it out.
    assert play_over(mic, ECHO_LEARN_FRAMES, -18.0, -10.0) == []  # learning: never an onset
    assert mic.endpointer.echo_return_db == pytest.approx(-8.0, abs=0.1)
    assert play_over(mic, 200, -18.0, -10.0) == []
    assert not mic.endpointer.in_speech


def test_guard_lets_speech_well_above_the_echo_barge_in() -> None:
    mic = make_mic()
    play_over(mic, ECHO_LEARN_FRAMES, -18.0, -10.0)
    # 6 dB margin over the echo's -18 dBFS: -11 dBFS counts, -13 does not.
    assert play_over(mic, 30, -13.0, -10.0) == []
    events = play_over(mic, 10, -11.0, -10.0)
    assert isinstance(events[0], Onset)


def test_guard_learning_survives_a_brief_gap_between_answer_deltas() -> None:
    mic = make_mic()
    play_over(mic, ECHO_LEARN_FRAMES, -18.0, -10.0)
    mic.endpointer.guarded = False
    mic.silence(3)  # the speaker ran dry for 60 ms
    assert isinstance(play_over(mic, 10, -11.0, -10.0)[0], Onset)  # no second learning phase


# --- button-opened turns -------------------------------------------------------------------------


def test_forced_open_with_no_speech_ends_with_no_speech_after_timeout() -> None:
    mic = make_mic(no_speech_timeout_s=1.0)
    mic.endpointer.force_open()
    assert mic.endpointer.in_speech
    assert mic.silence(49) == []  # 980 ms
    (end,) = mic.silence(1)  # 1000 ms
    assert end == EndOfSpeech(0.0, no_speech=True)
    assert mic.streamed() == []
    assert not mic.endpointer.in_speech


def test_forced_open_keeps_only_a_preroll_of_the_wait() -> None:
    mic = make_mic(no_speech_timeout_s=5.0)
    mic.endpointer.force_open()
    mic.silence(30)  # 1..30: the person gathers their thoughts
    (speech,) = mic.play(1)  # 31
    assert isinstance(speech, Speech)
    assert numbers(speech.audio) == [28, 29, 30, 31]


def test_forced_open_speech_ends_after_hangover_without_min_speech() -> None:
    mic = make_mic()
    mic.endpointer.force_open()
    mic.play(2)  # 40 ms: too short to open on its own, but the button already opened
    (end,) = mic.silence(10)
    assert isinstance(end, EndOfSpeech)
    assert not end.no_speech


def test_forced_open_speech_seconds_count_from_first_voiced_frame() -> None:
    mic = make_mic()
    mic.endpointer.force_open()
    mic.silence(25)  # 500 ms of waiting is not speech
    mic.play(10)  # 200 ms
    (end,) = mic.silence(10)
    assert isinstance(end, EndOfSpeech)
    assert end.speech_s == pytest.approx(0.2)


def test_forced_turn_does_not_leave_audio_from_before_it_in_the_next_preroll() -> None:
    mic = make_mic()
    mic.silence(10)  # 1..10: pre-roll holds 8..10
    mic.endpointer.force_open()  # button tap: no pre-roll is sent for it
    mic.play(5)  # 11..15
    mic.silence(10)  # 16..25: end of the forced utterance
    (onset,) = mic.play(5)  # 26..30: a new speech onset right away
    assert isinstance(onset, Onset)
    assert min(numbers(onset.audio)) > 10


def test_reset_forgets_utterance_and_held_pause() -> None:
    mic = make_mic()
    mic.play(5)
    mic.silence(3)
    mic.endpointer.reset()
    assert not mic.endpointer.in_speech
    assert mic.play(4) == []  # needs a full onset again
    (onset,) = mic.play(1)
    assert isinstance(onset, Onset)


def test_voiced_frames_below_min_level_never_open_a_turn() -> None:
    mic = make_mic()
    faint = SETTINGS.min_level_dbfs - 6  # webrtcvad calls hum "speech"; the level gate does not
    assert mic.play(50, faint) == []
    assert not mic.endpointer.in_speech
    assert isinstance(mic.play(5)[0], Onset)


# --- any frame sequence ------------------------------------------------------------------------

# Runs of frames (speech and pauses come in stretches), with the adapter's calls between.
FRAME_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["voiced", "silence", "quiet"]), st.integers(1, 30)),
        st.tuples(st.sampled_from(["force_open", "reset", "guard"]), st.just(1)),
    ),
    max_size=30,
).map(lambda runs: [kind for kind, count in runs for _ in range(count)])


@settings(max_examples=300, deadline=None)
@given(steps=FRAME_STEPS)
# CI found it: a gap between syllables after the answer paused keeps the onset run.
@example(steps=["guard", "voiced", "voiced", "silence", *["voiced"] * 8, *["silence"] * 10])
# Hypothesis found it: the guard's echo tail before the room's level is known (its bar is the
# quietest block heard so far + the onset margin, over these frames).
@example(steps=[*["voiced"] * 25, "reset", "guard", "voiced", "guard", *["voiced"] * 17, *["silence"] * 10])
def test_any_frame_sequence_streams_each_frame_once_in_order_without_trailing_silence(
    steps: list[str],
) -> None:
    mic = make_mic(no_speech_timeout_s=0.5)
    voiced: set[int] = set()
    is_open = False
    run: list[tuple[int, bool]] = []  # (frame, loud) of the onset candidates, as the endpointer keeps them
    first: int | None = None  # first frame of the utterance (onset run, or a forced turn's word)
    last_voiced: int | None = None
    streamed: list[int] = []
    for step in steps:
        if step == "force_open":
            if not mic.endpointer.in_speech:
                mic.endpointer.force_open()
                is_open, first, last_voiced = True, None, None
                run = []
            continue
        if step == "reset":
            mic.endpointer.reset()
            is_open, run = False, []
            continue
        if step == "guard":
            mic.endpointer.guarded = not mic.endpointer.guarded
            continue
        level = {"voiced": NORMAL_DBFS, "quiet": QUIET_DBFS, "silence": None}[step]
        # The gates as they stand when the frame arrives: the guard (or its echo tail) and
        # the levels relative to the room's floor learned so far.
        ep = mic.endpointer
        guarded = ep.echo_guarded
        onset_level = max(ep.onset_level_dbfs, SETTINGS.barge_in_min_level_dbfs if guarded else -math.inf)
        if guarded and ep.noise_floor_dbfs is None and ep.noise.quietest_dbfs is not None:
            # Before the room is known, the guard's bar is the quietest block heard so far plus
            # the onset margin (a kiosk whose first audio was a question; 30214a9).
            onset_level = max(onset_level, ep.noise.quietest_dbfs + SETTINGS.onset_margin_db)
        continue_level = ep.continue_level_dbfs
        # Once a loud run has paused the answer, a gap of up to SUSPECT_GAP_MS between
        # syllables keeps the run (the endpointer's own countdown, read before the frame).
        gap_alive = guarded and ep._gap_left > 0 and bool(run)
        events = mic.play(1, level)
        n = mic.count
        if level is not None and (not is_open or level >= continue_level):
            voiced.add(n)  # counts as speech (an open utterance needs the level too)
        need_ms = SETTINGS.barge_in_min_speech_ms if guarded else SETTINGS.min_speech_ms
        was_open = is_open
        if not is_open:
            loud = level is not None and level >= onset_level
            if level is None:
                run = [*run, (n, False)] if gap_alive else []
            elif loud and not any(flag for _, flag in run):
                run = [(n, True)]  # the quiet lead-in becomes pre-roll
            else:
                run = [*run, (n, loud)]
        for event in events:
            if isinstance(event, Onset):
                assert not is_open
                frames = numbers(event.audio)
                # Pre-roll and onset are one contiguous stretch ending with this frame.
                assert frames == list(range(frames[0], n + 1))
                # The utterance starts at the run's first loud frame (or what the cap left).
                is_open, first, last_voiced = True, run[0][0], n
                streamed += frames
            elif isinstance(event, Speech):
                assert is_open
                frames = numbers(event.audio)
                assert frames[-1] == n and n in voiced  # never ends on silence
                first = n if first is None else first
                last_voiced = n
                streamed += frames
            else:
                assert is_open
                if event.no_speech:
                    assert first is None
                else:
                    assert first is not None and last_voiced is not None
                    expected_s = (last_voiced - first + 1) * FRAME_MS / 1000
                    assert event.speech_s == pytest.approx(expected_s)
                is_open, run, first, last_voiced = False, [], None, None
        if not was_open and not is_open and len(run) * FRAME_MS > 3 * max(need_ms, 100):
            run.pop(0)  # a long quiet run keeps only its tail as onset candidates
    assert streamed == sorted(set(streamed)), "a frame was streamed twice or out of order"


def test_reset_while_waiting_forgets_preroll_and_half_proved_onset() -> None:
    mic = make_mic()
    mic.silence(5)  # 1..5
    mic.play(3)  # 6..8: not yet an onset
    mic.endpointer.reset()  # e.g. muted: what came before must not be sent later
    (onset,) = mic.silence(2) + mic.play(5)  # 9..10, 11..15
    assert isinstance(onset, Onset)
    assert numbers(onset.audio) == [9, 10, 11, 12, 13, 14, 15]

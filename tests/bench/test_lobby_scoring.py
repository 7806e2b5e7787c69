"""bench_lobby's scoring on hand-made run logs: which turn belongs to which question, merges,
splits, delays, self-interruptions; and a summary survives missed barge-ins."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_lobby as bench
import lobby_scoring as scoring
from lobby_corpus import Mix
from lobby_driver import RunLog

FRAME_S = 0.02


def frame(t_s: float) -> int:
    """The frame whose delivery (its end) is at ``t_s``."""
    return round(t_s / FRAME_S) - 1


def turn(start_s: float, commit_s: float | None, upstream_s: float = 1.0) -> dict:
    return {
        "start_frame": frame(start_s),
        "commit_frame": None if commit_s is None else frame(commit_s),
        "upstream_s": upstream_s,
        "outcome": "answered",
    }


def mix(*questions: tuple[float, float, list[float] | None]) -> Mix:
    m = Mix("m", "tuning", "questions", 1, 48000, 20.0, "pink", -45.0, snr_db=10.0)
    m.questions = [{"start_s": a, "end_s": b, "pause_s": p, "lang": "en"} for a, b, p in questions]
    return m


def log_with(*turns: dict, frames: int = 1000) -> RunLog:
    log = RunLog(
        "m", FRAME_S, frames=frames, frame_clock=[(n + 1) * FRAME_S for n in range(frames)]
    )
    log.turns = list(turns)
    return log


def test_one_turn_per_question_and_its_end_of_turn_delay():
    m = mix((2.0, 4.0, None), (7.0, 9.0, None))
    score = bench.score_questions(m, log_with(turn(2.2, 4.5, 2.3), turn(7.2, 9.3, 2.3)), 0.3)
    assert [q["turns"] for q in score["questions"]] == [1, 1]
    assert score["merged_pairs"] == 0
    assert [round(q["eot_delay_s"], 3) for q in score["questions"]] == [0.5, 0.3]
    assert score["upstream_ratio"] == pytest.approx(4.6 / 4.6)


def test_a_turn_running_over_both_questions_is_a_merge():
    m = mix((2.0, 4.0, None), (7.0, 9.0, None))
    score = bench.score_questions(m, log_with(turn(2.2, 9.6, 7.0)), 0.3)
    assert score["merged_pairs"] == 1
    assert all(q["merged"] for q in score["questions"])


def test_a_question_cut_at_its_pause_has_two_turns():
    m = mix((2.0, 5.0, [3.0, 3.6]))
    score = bench.score_questions(m, log_with(turn(2.2, 3.5), turn(3.8, 5.4)), 0.3)
    assert score["questions"][0]["turns"] == 2
    assert score["questions"][0]["eot_delay_s"] is None


def test_paced_end_of_turn_delay_reads_the_pipeline_clock():
    m = mix((2.0, 4.0, None))
    log = log_with(turn(2.2, 4.5))
    log.frame_clock = [c + 0.05 * (n >= frame(4.5)) for n, c in enumerate(log.frame_clock)]
    assert bench.eot_delays_paced(m, log) == [pytest.approx(0.55)]


def test_barge_in_delay_is_onset_to_the_next_speaker_block_after_the_hold():
    log = log_with(turn(1.2, 3.0))
    log.answer_start_frame = frame(3.6)
    log.interruption_onset_s = 5.0
    log.holds = [(frame(3.9), True), (frame(4.1), False), (frame(5.1), True)]
    assert bench.bargein_delay(log, paced=False) == pytest.approx(0.12)
    assert bench.self_interruptions(log) == ["pause at 3.90s"]
    log.holds = []
    assert bench.bargein_delay(log, paced=False) is None


def test_device_barge_in_delay_adds_the_capture_path_and_the_measured_speaker_stop():
    log = log_with(turn(1.2, 3.0))
    log.interruption_onset_s = 5.0
    log.holds = [(frame(5.1), True)]
    # The resampler let frame(5.1) (ending at 5.10 s) out when the mic had taken in 5.13 s:
    # while an answer plays the daemon's 20 ms device block with that audio ends at 5.14 s
    # (a 60 ms one, as before blk10 and on PortAudio, at 5.16 s). The reader then hands it
    # over (measured: promptly in this tree), and the speaker falls silent SPEAKER_STOP_S
    # after the pause: on the device the drop comes at once, not at the bench's next 20 ms
    # speaker read (bench/results/speaker-stop-dev11-*, capture-block-dev11-*).
    assert scoring.DEVICE_BLOCK_S == pytest.approx(0.02)
    assert scoring.CAPTURE_WAIT_S == scoring.CAPTURE_WAIT_PROMPT_S < 0.001
    assert 0.001 < scoring.SPEAKER_STOP_S < scoring.CAPTURE_WAIT_PACED_S < 0.02
    log.frame_in_s = [0.0] * log.frames
    log.frame_in_s[frame(5.1)] = 5.13
    assert bench.bargein_delay(log, paced=False) == pytest.approx(0.12)
    parts = bench.device_parts(log, paced=False)
    assert parts == {
        "frames_s": pytest.approx(0.10),
        "capture_s": pytest.approx(0.04 + scoring.CAPTURE_WAIT_S),
        "speaker_s": scoring.SPEAKER_STOP_S,
        "delay_s": pytest.approx(0.14 + scoring.CAPTURE_WAIT_S + scoring.SPEAKER_STOP_S),
        # The default PulseAudio path: 16 kHz from the server, blocks end with the frames.
        "pulse_s": pytest.approx(0.10 + scoring.CAPTURE_WAIT_S + scoring.SPEAKER_STOP_S),
        "blk10_model_s": pytest.approx(0.16),
    }
    assert bench.device_bargein_delay(log, paced=False) == parts["delay_s"]
    assert scoring.capture_hold_s(log, frame(5.1), block_s=0.06) == pytest.approx(0.06)
    log.frame_in_s[frame(5.1)] = 5.14  # a block's end, exactly: no wait for the next
    parts = bench.device_parts(log, paced=False)
    assert parts is not None and parts["capture_s"] == pytest.approx(0.04 + scoring.CAPTURE_WAIT_S)
    log.holds = []
    assert bench.device_bargein_delay(log, paced=False) is None


def test_summary_counts_a_missed_barge_in_as_infinitely_late():
    bargein = {"echo_db": -12.0, "aec": False, "self": [], "delay_s": None}
    res = {
        "questions": [],
        "noise": [{"noise": "pink", "hours": 0.5, "turns": 1}],
        "echo": [
            {"echo_db": -12.0, "mode": "guard", "self": ["pause at 4.00s"]},
            {"echo_db": -6.0, "mode": "speex", "self": [], "aec_cpu_ms_per_s": 3.0},
        ],
        "bargein": [bargein, dict(bargein, delay_s=0.2), dict(bargein, delay_s=None)],
        "eot_paced": [],
    }
    s = bench.summarize(res)
    assert s["false_turns_per_h"] == 2.0
    assert math.isinf(s["bargein_guard_p95_ms"]) and s["bargein_guard_p50_ms"] == math.inf
    assert s["self_interruptions"] == 1
    assert s["self_interruptions_guard"] == 1 and s["self_interruptions_aec"] == 0
    assert s["self_interruptions_by_mode_and_echo_db"]["guard"] == {"-12": 1, "-6": 0}
    assert s["aec_cpu_ms_per_s_playback"] == 3.0
    assert s["one_turn_pct"] is None
    rows = bench.rows_for({"tuning": s})
    assert any(r["value"] == "inf (missed)" and r["ok"] is False for r in rows)

"""Scoring one lobby mix's run (``lobby_driver.RunLog``) against the corpus labels: turns per
question, merges, upstream ratio, end-of-turn and barge-in delays, self-interruptions, the
canceller's cost. Pure functions over the log; split out of ``bench_lobby.py`` (which re-exports
them) to keep each module small."""

from __future__ import annotations

import math
from typing import Any

from lobby_corpus import Mix
from lobby_driver import RunLog


def turn_span(log: RunLog, turn: dict[str, Any]) -> tuple[float, float]:
    """Mic time from onset to commit (or the turn's end when it never committed)."""
    end = (
        turn["commit_frame"]
        if turn["commit_frame"] is not None
        else turn.get("end_frame", log.frames - 1)
    )
    return log.at_s(turn["start_frame"]), log.at_s(end if end is not None else log.frames - 1)


def score_questions(mix: Mix, log: RunLog, preroll_s: float) -> dict[str, Any]:
    spans = [turn_span(log, t) for t in log.turns]
    per_q = []
    for q in mix.questions:
        hits = [i for i, (a, b) in enumerate(spans) if a - 0.5 < q["end_s"] and b > q["start_s"]]
        per_q.append(hits)
    merged = sum(
        1 for hits in per_q if any(h in other for h in hits for other in per_q if other is not hits)
    )
    out = {"mix": mix.id, "noise": mix.noise, "snr_db": mix.snr_db, "questions": []}
    for q, hits in zip(mix.questions, per_q, strict=True):
        turn = log.turns[hits[0]] if len(hits) == 1 else None
        delay = None
        if turn is not None and turn["commit_frame"] is not None:
            delay = log.at_s(turn["commit_frame"]) - q["end_s"]
        row = {
            "turns": len(hits),
            "pause_s": q["pause_s"],
            "eot_delay_s": delay,
            "merged": any(h in o for h in hits for o in per_q if o is not hits),
        }
        if len(hits) >= 2:  # split: how soon the visitor went on after the first commit
            first, second = log.turns[hits[0]], log.turns[hits[1]]
            if first["commit_frame"] is not None:
                row["resumed_after_commit_s"] = round(
                    log.at_s(second["start_frame"]) - log.at_s(first["commit_frame"]), 3
                )
            row["first_outcome"] = first.get("outcome")
        out["questions"].append(row)
    true_s = sum(q["end_s"] - q["start_s"] + preroll_s for q in mix.questions)
    out["upstream_s"] = sum(t.get("upstream_s") or 0.0 for t in log.turns)
    out["upstream_ratio"] = out["upstream_s"] / true_s
    out["turns"] = len(log.turns)
    out["merged_pairs"] = merged // 2
    return out


def wall_delay(log: RunLog, label_s: float, event_frame: int, extra_frames: int = 0) -> float:
    """Pipeline-clock delay from a labelled mic time to the delivery of ``event_frame + extra``."""
    n_label = min(int(label_s / log.frame_s), log.frames - 1)
    label_clock = log.frame_clock[n_label] - (log.at_s(n_label) - label_s)
    n = min(event_frame + extra_frames, log.frames - 1)
    return log.frame_clock[n] - label_clock


def eot_delays_paced(mix: Mix, log: RunLog) -> list[float]:
    out = []
    for q in mix.questions:
        hits = [
            t
            for t in log.turns
            if log.at_s(t["start_frame"]) - 0.5 < q["end_s"]
            and t["commit_frame"] is not None
            and log.at_s(t["commit_frame"]) > q["start_s"]
        ]
        if len(hits) == 1:
            out.append(wall_delay(log, q["end_s"], hits[0]["commit_frame"]))
    return out


def self_interruptions(log: RunLog) -> list[str]:
    """Pauses, flushes or turns the kiosk's own echo caused (before any visitor interrupts)."""
    if log.answer_start_frame is None:
        return ["answer never started"]
    limit = log.interruption_onset_s if log.interruption_onset_s is not None else math.inf
    found = [
        f"pause at {log.at_s(n):.2f}s" for n, held in log.holds if held and log.at_s(n) < limit
    ]
    found += [f"flush at {log.at_s(n):.2f}s" for n in log.flushes if log.at_s(n) < limit]
    found += [
        f"turn at {log.at_s(t['start_frame']):.2f}s"
        for t in log.turns[1:]
        if log.at_s(t["start_frame"]) < limit
    ]
    return found


def bargein_frame(log: RunLog) -> int | None:
    """The frame after whose delivery the answer was first held or flushed, from the visitor's
    true onset on (None: no onset, or never)."""
    onset = log.interruption_onset_s
    if onset is None:
        return None
    events = [n for n, held in log.holds if held] + log.flushes
    return min((n for n in events if log.at_s(n) >= onset), default=None)


def bargein_delay(log: RunLog, paced: bool) -> float | None:
    """Visitor's true onset -> the first speaker block that is silent (held or flushed)."""
    n, onset = bargein_frame(log), log.interruption_onset_s
    if n is None or onset is None:
        return None
    # Decided after frame n's delivery; the next speaker read (frame n+1's step) is silent.
    if paced:
        return wall_delay(log, onset, n, extra_frames=1)
    return log.at_s(n + 1) - onset


# The daemon's microphone hands over this much device audio at a time while an answer plays
# (a barge-in's deciding frame): daemon_devices.BUSY_MIC_BLOCK_MS on PulseAudio since blk10,
# MIC_BLOCK_MS (60 ms) before and on PortAudio.
DEVICE_BLOCK_S = 0.06
# Measured on a real PulseAudio stream (private null sinks), the default backend where a sound
# server answers. The capture side: a busy frame's wait from its last sample reaching a client
# to the daemon's hand-over, mean over runs (bench/capture_block.py,
# capture-block-dev11-2026-12-04-{1,2}.json): the reader at its own 20 ms pace (main 659a98d,
# blk10's code; 8 streams, 3.9-17.6 ms each by its phase) 14.6 ms; prompt reading (dev11,
# PulseStream.set_block_frames(prompt=True); file 2, 2 streams) 0.7 ms.
CAPTURE_WAIT_PACED_S = 0.0146
CAPTURE_WAIT_PROMPT_S = 0.0007
CAPTURE_WAIT_S = CAPTURE_WAIT_PACED_S
# The speaker side: the pause call (PlaybackBuffer.hold: the sink drops what the server holds)
# -> the last sample already queued leaving a sink that cannot rewind, mean over 80 pauses
# (bench/speaker_stop.py, speaker-stop-dev11-2026-12-04.json: main 6.65, dev11 6.82 ms; p95
# 10.0 / 9.4). This replaces the bench's own speaker step (the next 20 ms read is silent): on
# the device the drop comes at once.
SPEAKER_STOP_S = 0.0067
try:
    from kiosk import daemon_devices as _devices

    DEVICE_BLOCK_S = getattr(_devices, "BUSY_MIC_BLOCK_MS", _devices.MIC_BLOCK_MS) / 1000
    from kiosk.audio import pulse_stream as _pulse

    if hasattr(_pulse, "PROMPT_POLL_S"):  # the kiosk under test reads busy blocks promptly
        CAPTURE_WAIT_S = CAPTURE_WAIT_PROMPT_S
except ImportError:  # a kiosk from before daemon_devices
    pass


def capture_hold_s(log: RunLog, n: int, block_s: float = DEVICE_BLOCK_S) -> float:
    """How long after its end frame ``n`` is in a device block the reader can hand over, which
    the bench's clock (one frame per ``frame_s``) leaves out: the capture resampler's hold
    (``log.frame_in_s``), up to the end of the ``block_s`` device block that brings it (blocks
    from mic time 0). The block's phase against the visitor's onset is luck (the onset follows
    the answer's start, which the server's real-time pacing moves), 0-20 ms per run: compare
    means over many runs."""
    if not log.frame_in_s:
        return 0.0
    taken_in = log.frame_in_s[min(n, len(log.frame_in_s) - 1)]
    return math.ceil(round(taken_in / block_s, 6)) * block_s - log.at_s(n)


def device_parts(log: RunLog, paced: bool) -> dict[str, float] | None:
    """:func:`bargein_delay` on a device, by part: ``frames`` the visitor's onset to the
    deciding frame's end (the bench's clock); ``capture`` that frame's wait for its device
    block (:func:`capture_hold_s`: the kiosk's capture resampler's hold, to a block's end) and
    the reader (``CAPTURE_WAIT_S``, measured); ``speaker`` the pause -> the last queued sample
    out (``SPEAKER_STOP_S``, measured). ``delay_s`` is their sum: a device format the kiosk
    resamples itself (``audio.capture_rate_hz`` set) with 20 ms busy blocks. ``pulse_s``: the
    default PulseAudio path, where the server converts the rate and the kiosk reads 16 kHz, so
    its 20 ms blocks end with the frames and the measured wait is the whole capture side.
    Neither counts the sound server's own capture latency (its source's period) nor the
    pipeline's CPU per frame. ``blk10_model_s``: the model before (the block and a 20 ms
    speaker step, no reader wait), for comparison with earlier results."""
    n, delay = bargein_frame(log), bargein_delay(log, paced)
    if n is None or delay is None:
        return None
    frames = delay - log.frame_s  # the bench's next speaker read (one frame) left out
    block = capture_hold_s(log, n)
    return {
        "frames_s": frames,
        "capture_s": block + CAPTURE_WAIT_S,
        "speaker_s": SPEAKER_STOP_S,
        "delay_s": frames + block + CAPTURE_WAIT_S + SPEAKER_STOP_S,
        "pulse_s": frames + CAPTURE_WAIT_S + SPEAKER_STOP_S,
        "blk10_model_s": delay + block,
    }


def device_bargein_delay(log: RunLog, paced: bool) -> float | None:
    """:func:`bargein_delay` on a device (:func:`device_parts`)."""
    parts = device_parts(log, paced)
    return None if parts is None else parts["delay_s"]


def aec_cost(log: RunLog) -> dict[str, Any]:
    """The canceller's CPU per second of playback, and how many frames it ran on."""
    if not log.aec_frames:
        return {"aec_frames": 0, "frames": log.frames}
    warm = {"warm_trusted": log.warm_trusted, "warm_self": log.warm_self}
    warm = {} if log.warm_trusted is None else warm
    return {
        **warm,
        "aec_cpu_ms_per_s": round(log.aec_cpu_s * 1000 / max(1e-9, log.playback_frames * log.frame_s), 3),
        "aec_frames": log.aec_frames,
        "playback_frames": log.playback_frames,
        "frames": log.frames,
    }


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (a value that occurred; misses counted as inf stay inf)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)])

"""Pulse-trace replays mark the earcon as the daemon does (stop 39): the traced reference used
to tell no earcon, so every SpeexDSP replay learned the echo return from the "listening_end"
chime that opens each answer (relearn38). ``earcon_spans`` finds the chime's blocks by their
PCM, ``TracedReference`` marks exactly the spans that overlap it, ``pulse_inputs`` carries the
spans to ``replay``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import lobby_aec_replay as rep  # noqa: E402

from kiosk.audio.earcons import render_earcon  # noqa: E402

RATE = 24000


def _trace() -> tuple[dict, float, float]:
    """The chime in 480-sample blocks from 1.0 s with the answer's first words (a tone) mixed
    on top from its 10th ms on, as the speaker mixes them (kiosk.audio.playback), then the
    answer alone."""
    chime = np.frombuffer(render_earcon("listening_end", RATE, 0.3), np.int16).astype(np.int32)
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(9000) / RATE)).astype(np.int32)
    mixed = np.zeros(240 + len(tone), np.int32)
    mixed[240:] = tone
    mixed[: len(chime)] += chime
    pcm16 = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
    played, t = [], 1.0
    for pcm in [pcm16[i : i + 960] for i in range(0, len(pcm16), 960)]:
        played.append({"start": t, "pcm": pcm, "n": len(pcm) // 2, "mono": t, "reference": 7})
        t += len(pcm) / 2 / RATE
    end = 1.0 + len(chime) / RATE
    frames = [{"reference": 7, "at": 0.9 + 0.02 * k, "lead_s": 0.0, "ref": bytes(640)} for k in range(60)]
    return {"aec": frames, "played": played}, 1.0, end


def test_earcon_spans_find_the_chime_and_only_it():
    trace, start, end = _trace()
    spans = rep.earcon_spans(trace)
    assert len(spans) == 1
    assert abs(spans[0][0] - start) < 1e-9 and abs(spans[0][1] - end) < 1e-6


def test_the_traced_reference_marks_spans_over_the_chime_only():
    trace, start, end = _trace()
    ref = rep.TracedReference(trace["aec"], earcon_spans=rep.earcon_spans(trace))
    marks = [ref.take_marked(s, 320)[1] for s in (start - 0.04, start + 0.01, end - 0.01, end + 0.001, end + 0.1)]
    assert marks == [False, True, True, False, False]


def test_a_traced_mark_is_the_daemons_own():
    trace, start, end = _trace()
    trace["aec"][0]["earcon"] = False  # (traced since stop 39: what the canceller took)
    trace["aec"][1]["earcon"] = True
    ref = rep.TracedReference(trace["aec"], earcon_spans=rep.earcon_spans(trace))
    assert ref.take_marked(start + 0.01, 320)[1] is False  # the traced frame's mark wins
    assert ref.take_marked(end + 0.5, 320)[1] is True
    assert ref.take_marked(start + 0.01, 320)[1] is True  # (no mark traced: the spans)


def test_pulse_inputs_carries_the_spans_to_the_replay():
    trace, start, end = _trace()
    trace.update(drops=[], handovers=[], row={"mix": "m", "mode": "speex-later", "kind": "echo", "echo_db": -12.0,
                                               "self": [], "room": {}})  # fmt: skip
    for f in trace["aec"]:
        f.update(raw=bytes(640), captured=f["at"], guarded=True, mono=f["at"])
    run = rep.pulse_inputs(trace)
    assert run["earcon_spans"] == rep.earcon_spans(trace) and len(run["earcon_spans"]) == 1

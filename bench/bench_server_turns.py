"""What leaving the end of turn to the server costs (issue 10, item 3): upstream audio and the
end-of-turn wait with ``realtime.turn_detection = "server_vad"`` / ``"semantic_vad"``, computed
from the lobby corpus labels (``bench/lobby_corpus.py``, both splits, every question).

With server-side turn detection the kiosk streams from its own onset (with the pre-roll)
until the server ends the turn: the visitor's speech, their pauses, and the silence the server
waits after they stop. The local endpointer streams the same speech and pauses but never the
trailing silence (it is held back and dropped), so the difference is that wait, per question:

    upstream / (true speech + pre-roll) = (speech + pre-roll + wait) / (speech + pre-roll)

The waits are the documented ones (nothing here talks to a server): ``server_vad`` as the
kiosk configures it (``silence_duration_ms`` 500, ``kiosk/core/realtime_config.py``);
``semantic_vad`` sets its wait from a turn-end probability, and its eagerness levels cap it
at 2 s (high), 4 s (medium = auto, the kiosk's setting) and 8 s (low); its shortest wait is
not documented, so the table gives the cap (a visitor whose question the model judges
unfinished) and the rows per wait let any other figure be read off. User audio is billed at
10 tokens a second (1 per 100 ms) and every later response of the conversation re-bills it
as (cached) input.

Run: ``python bench/run.py server_turns`` (seconds; no audio is rendered).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lobby_corpus import build_specs  # noqa: E402

PREROLL_S = 0.3  # vad.preroll_ms in the shipped config
AUDIO_TOKENS_PER_S = 10
# (mode, wait after the visitor stops, s, what the wait is)
WAITS = (
    ("server_vad", 0.5, "silence_duration_ms 500 (kiosk's setting)"),
    ("semantic_vad high", 2.0, "documented cap"),
    ("semantic_vad medium/auto", 4.0, "documented cap; the kiosk sends eagerness auto"),
    ("semantic_vad low", 8.0, "documented cap"),
)


def question_seconds(quick: bool) -> list[float]:
    """True speech (start to end, mid-sentence pause included) of every question, both splits."""
    out = []
    for split in ("tuning", "heldout"):
        for mix in build_specs(split, quick=quick):
            if mix.kind == "questions":
                out += [q["end_s"] - q["start_s"] for q in mix.questions]
    return out


def run(quick: bool) -> dict[str, Any]:
    speech = question_seconds(quick)
    rows = []
    details: dict[str, Any] = {"questions": len(speech), "speech_s_p50": round(statistics.median(speech), 3)}
    for mode, wait_s, note in WAITS:
        ratios = sorted((s + PREROLL_S + wait_s) / (s + PREROLL_S) for s in speech)
        p50 = statistics.median(ratios)
        rows.append(
            {
                "name": f"{mode}: upstream / (true speech + pre-roll), p50 over questions",
                "value": round(p50, 2),
                "goal": "<= 1.15",
                "note": f"wait {wait_s:g} s ({note}); worst {ratios[-1]:.2f}; "
                f"+{wait_s * AUDIO_TOKENS_PER_S:.0f} audio tokens a turn; end of turn "
                + (f"up to {wait_s * 1000:.0f} ms" if mode.startswith("semantic") else f">= {wait_s * 1000:.0f} ms"),
                "wait_s": wait_s,
                "ratio_max": round(ratios[-1], 3),
                "extra_audio_tokens_per_turn": wait_s * AUDIO_TOKENS_PER_S,
            }
        )
        details[mode] = {"wait_s": wait_s, "ratio_p50": round(p50, 3), "ratio_max": round(ratios[-1], 3)}
    return {"rows": rows, "details": details}


if __name__ == "__main__":
    for row in run("--quick" in sys.argv)["rows"]:
        print(f"{row['name']}: {row['value']}  ({row['note']})")

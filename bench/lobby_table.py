"""The lobby bench's table (``bench_lobby.py``): the issue's goal rows per split, as the README
quotes them, and the rows saved in the results JSON. Split out of ``bench_lobby.py`` (which
re-exports it) to keep each module small."""

from __future__ import annotations

import json
import math
from typing import Any

SPLIT_NAMES = {"tuning": "tuning", "heldout": "held-out"}

# (key, metric, goal, note)
ROWS = [
    ("false_turns_per_h", "false turns per hour, speech-free noise (6 types, -55..-35 dBFS)",
     "<= 1", "fast clock"),
    ("one_turn_pct", "questions at SNR >= 10 dB with exactly one turn, %", ">= 98", "fast clock"),
    ("merged", "questions 1.5-4 s apart merged into one turn", "<= 0", "fast clock"),
    ("split_pct", "questions split at a mid-sentence pause <= 600 ms, %", "<= 5", "fast clock"),
    ("upstream_ratio_max", "upstream audio / (true speech + pre-roll), worst noisy mix",
     "<= 1.15", "fast clock"),
    ("eot_p50_ms", "end-of-turn delay p50, true end -> commit, ms", "<= 350", "paced real time"),
    ("eot_p95_ms", "end-of-turn delay p95, ms", "<= 700", "paced real time"),
    (
        "bargein_guard_p95_ms",
        "barge-in p95, true onset -> speaker silent, echo -12 dB, guard, ms",
        "<= 300",
        "paced real time",
    ),
    (
        "bargein_aec_p95_ms",
        "barge-in p95, echo -12 dB, in-process AEC (SpeexDSP), first answer, ms",
        "<= 150",
        "paced real time",
    ),
    (
        "bargein_aec_warm_p95_ms",
        "barge-in p95, echo -12 dB, in-process AEC, adapted to the room, ms",
        "<= 150",
        "paced real time",
    ),
    (
        "self_interruptions_guard",
        "self-interruptions from own echo (-20/-12/-6 dB), guard",
        "<= 0",
        "answers real time",
    ),
    (
        "self_interruptions_aec",
        "self-interruptions, in-process AEC, first answer",
        "<= 0",
        "answers real time",
    ),
    (
        "self_interruptions_aec_warm",
        "self-interruptions, in-process AEC, adapted to the room",
        "<= 0",
        "answers real time",
    ),
]


def rows_for(summaries: dict[str, dict[str, Any]], paced: bool = True) -> list[dict[str, Any]]:
    rows = []
    for key, metric, goal, note in ROWS:
        for split, s in summaries.items():
            value = s[key]
            if isinstance(value, float) and math.isfinite(value):
                value = round(value, 2)
            extra = _note_extra(key, s)
            row = {
                "name": f"{metric} [{SPLIT_NAMES[split]}]",
                "value": value if value is not None else "n/a",
                "goal": goal,
                "note": _timing(note, paced) + (f"; {extra}" if extra else ""),
            }
            if value is None:
                row["ok"] = False
            elif isinstance(value, float) and math.isinf(value):
                row["value"], row["ok"] = "inf (missed)", False
            rows.append(row)
    return rows


def _note_extra(key: str, s: dict[str, Any]) -> str:
    if key == "false_turns_per_h":
        worst = max(s["false_turns_by_type_per_h"].items(), key=lambda kv: kv[1])
        return f"{s['noise_hours']} h; worst {worst[0]} {worst[1]}/h"
    if key == "one_turn_pct":
        return f"n={s['questions_snr_ge_10']}"
    if key == "split_pct":
        return f"n={s['paused_questions']}"
    if key == "upstream_ratio_max":
        return f"p50 {s['upstream_ratio_p50']:.2f}" if s["upstream_ratio_p50"] is not None else ""
    if key.startswith("eot_"):
        fast = f"p50 {s['eot_fast_p50_ms']} / p95 {s['eot_fast_p95_ms']} ms"
        return f"n={s['eot_paced_n']}; fast clock, all questions: {fast}"
    if key == "bargein_guard_p95_ms":
        p50 = s["bargein_guard_p50_ms"]
        return f"n={s['bargein_guard_n']}, p50 {p50} ms, missed (all levels) {s['bargein_missed']}"
    if key == "bargein_aec_p95_ms":
        miss = s["bargein_missed_by_mode"].get("speex", 0)
        cpu = s["aec_cpu_ms_per_s_playback"]
        return f"n={s['bargein_aec_n']}, p50 {s['bargein_aec_p50_ms']} ms, missed (all levels) {miss}; AEC CPU {cpu} ms per s of playback"
    if key == "bargein_aec_warm_p95_ms":
        miss = s["bargein_missed_by_mode"].get("speex-warm", 0)
        return f"n={s['bargein_aec_warm_n']}, p50 {s['bargein_aec_warm_p50_ms']} ms, missed (all levels) {miss}"
    if key.startswith("self_interruptions_"):
        mode = {"guard": "guard", "aec": "speex", "aec_warm": "speex-warm"}[key[len("self_interruptions_"):]]
        return "by echo dB " + json.dumps(s["self_interruptions_by_mode_and_echo_db"].get(mode, {}))
    return ""


def _timing(note: str, paced: bool) -> str:
    return note if paced else note.replace("paced real time", "NOT paced (--no-paced)")


def print_table(summaries: dict[str, dict[str, Any]], paced: bool = True) -> None:
    """metric | goal | one column per split with PASS/FAIL (what the README table quotes)."""
    import re

    header = ["metric", "goal", *(SPLIT_NAMES[s] for s in summaries), "timing"]
    lines = [header]
    for key, metric, goal, note in ROWS:
        cells = [metric, goal]
        for s in summaries.values():
            v = s[key]
            m = re.match(r"(<=|>=)\s*([0-9.]+)", goal)
            ok = (
                v is not None
                and m is not None
                and (v <= float(m.group(2)) if m.group(1) == "<=" else v >= float(m.group(2)))
            )
            shown = "n/a" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
            cells.append(f"{shown} {'PASS' if ok else 'FAIL'}")
        lines.append([*cells, _timing(note, paced)])
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    for k, r in enumerate(lines):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    for split, s in summaries.items():
        for key in ("peer_modes", "bargein_device_ms"):
            if s.get(key):
                print(f"{SPLIT_NAMES[split]} {key}: {json.dumps(s[key])}")

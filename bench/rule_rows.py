"""The rig rows of a held-out rule, pooled per code (shared by the stop rules ``warm40_rule.py``,
``warm41_rule.py`` and later ones): self-pauses (warm-up + later answer, every row), -12 dB
barge-in delays and misses, and the rows marked loaded or with sound-server glitches, which are
reported, never dropped. Percentiles are nearest rank (``lobby_scoring.pct``), p50 included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lobby_scoring import pct  # the bench's nearest-rank percentile

GLITCH_KEYS = ("pacat_underruns", "parec_overruns", "late_blocks")


def glitched(row: dict[str, Any]) -> bool:
    """A rig row the room's pipe glitched: a pacat underrun, a parec overrun, or marked loaded (the
    "clean row" of stop 43-45's rules is its negation)."""
    room = row.get("room") or {}
    return bool(room.get("pacat_underruns") or room.get("parec_overruns") or row.get("loaded"))


def pool_rig_rows(paths: list[str], code_of: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """Per code (``code_of(file name)``): the pooled rows of pulse_aec / pulse_trace JSONs."""
    pooled: dict[str, dict[str, Any]] = {}
    for path in paths:
        d = json.loads(Path(path).read_text())
        p = pooled.setdefault(code_of(Path(path).name), {"rows": 0, "warm": [], "later": [], "delays": [], "missed": [], "loaded": [], "glitch": []})  # fmt: skip
        for r in d["rows"]:
            p["rows"] += 1
            tag = f"{r['mix']} {r['echo_db']}"
            if r.get("warm_self"):
                p["warm"].append({"row": tag, "n": r["warm_self"], "holds": r.get("holds")})
            if r.get("self"):
                p["later"].append({"row": tag, "self": r["self"]})
            if r["kind"] == "bargein" and r["echo_db"] == -12.0:
                if r.get("missed") or r.get("delay_s") is None:
                    p["missed"].append(r["mix"])
                else:
                    p["delays"].append(r["delay_s"] * 1000)
            if r.get("loaded"):
                p["loaded"].append(f"{tag} load {r.get('load1_end')} other {r.get('other_busy_cores')}")
            room = r.get("room") or {}
            g = {k: room.get(k) for k in GLITCH_KEYS if room.get(k)}
            if g:
                p["glitch"].append(f"{tag} {g}")
    out = {}
    for code, p in pooled.items():
        warm = sum(w["n"] for w in p["warm"])
        later = sum(len(x["self"]) for x in p["later"])
        d = p["delays"]
        out[code] = {"rows": p["rows"], "self": warm + later, "warm_self": warm, "later_self": later,
                     "n_m12": len(d), "p95_ms": None if not d else round(pct(d, 95)),
                     "p50_ms": None if not d else round(pct(d, 50)), "missed": len(p["missed"]),
                     "warm_rows": p["warm"], "later_rows": p["later"], "loaded_rows": p["loaded"],
                     "glitch_rows": p["glitch"]}  # fmt: skip
    return out


def barge_in_figures(sel: list[dict], timed: Callable[[dict], bool]) -> tuple[int, str, str, int, int, int]:
    """Of rig rows ``sel`` (bench/warm46_rows.py, bench/pool_sets.py): barge-ins timed (those
    ``timed`` picks, not missed), their nearest-rank p95 and p50 (ms, as text), missed barge-ins,
    later and warm-up self-pauses (all rows). (speex45_rule._figures, for the rules' JSON, is its
    older twin: it counts missed at -12 dB only.)"""
    d = [r["delay_s"] * 1000 for r in sel if r["kind"] == "bargein" and timed(r)
         and not r.get("missed") and r.get("delay_s") is not None]  # fmt: skip
    missed = sum(1 for r in sel if r["kind"] == "bargein" and (r.get("missed") or r.get("delay_s") is None))
    later = sum(len(r.get("self") or []) for r in sel)
    warm = sum(r.get("warm_self") or 0 for r in sel)
    p95, p50 = (f"{pct(d, 95):.0f}", f"{pct(d, 50):.0f}") if d else ("-", "-")
    return len(d), p95, p50, missed, later, warm

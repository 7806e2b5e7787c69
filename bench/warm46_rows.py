"""Per-row table of warm46's held-out hold (stop 46): one line per rig row of ``pulse_trace`` /
``pulse_aec`` JSONs (code and seed from the file name: ``-s<seed>-<code>-``), then per code the
clean-row and all-row figures (nearest-rank p95 / p50 of -12 dB barge-in delays, self-pauses).

    python bench/warm46_rows.py [--levels=-20,-12,-6] RIG.json...

Columns: code, seed, mix, echo dB, delay ms (speaker silent after the labelled onset; '-' for an echo
mix, MISSED if missed), later self-pauses (s), warm-up self-pauses, pacat underruns, parec overruns,
loaded, steal (stolen cores over the row), pacat latency at the onset (ms), CLEAN/GLITCHED
(bench/rule_rows.glitched). ``--levels`` adds a barge-in p95 / p50 line per echo level named (stop 49's
hold G2 ran every level; the goal is at -12 dB).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rule_rows import barge_in_figures, glitched  # noqa: E402


def main(paths: list[str]) -> int:
    levels = [float(x) for x in paths.pop(0).split("=", 1)[1].split(",")] if paths and paths[0].startswith("--levels=") else []
    rows = []
    for p in paths:
        m = re.search(r"-s(\d+)-(branch|main)-", Path(p).name)
        seed, code = (m.group(1), m.group(2)) if m else ("?", "?")
        for r in json.loads(Path(p).read_text())["rows"]:
            rows.append((code, seed, r))
    rows.sort(key=lambda x: (x[0], x[1], x[2]["kind"], x[2]["mix"], x[2]["echo_db"]))
    print("code   seed mix                 dB   delay  self(later)            warm under over loaded steal  pacat@onset row")
    for code, seed, r in rows:
        room = r.get("room") or {}
        if r["kind"] == "bargein":
            delay = "MISSED" if r.get("missed") or r.get("delay_s") is None else f"{r['delay_s'] * 1000:.0f}"
        else:
            delay = "-"
        lat = room.get("pacat_latency_at_onset_ms")
        print(f"{code:6s} {seed} {r['mix']:19s} {r['echo_db']:5.0f} {delay:>6s}  {str(r.get('self') or []):22s} "
              f"{r.get('warm_self') or 0:4d} {len(room.get('pacat_underruns') or []):5d} "
              f"{len(room.get('parec_overruns') or []):4d} {str(bool(r.get('loaded'))):6s} "
              f"{(r.get('steal_cores') or 0):.3f} {'-' if lat is None else f'{lat:.1f}':>11s} "
              f"{'GLITCHED' if glitched(r) else 'CLEAN'}")  # fmt: skip
    print()
    for code in sorted({c for c, _, _ in rows}):
        mine = [r for c, _, r in rows if c == code]
        for what, sel in (("CLEAN", [r for r in mine if not glitched(r)]), ("ALL", mine)):
            n, p95, p50, missed, later, warm = barge_in_figures(sel, lambda r: r["echo_db"] == -12.0)
            print(f"{code} {what}: rows {len(sel)}, -12 dB barge-ins n={n} p95 {p95} p50 {p50} ms, missed {missed}, "
                  f"self-pauses later {later} + warm-up {warm}")  # fmt: skip
            for db in levels:
                at = [r for r in sel if r["echo_db"] == db]
                n, p95, p50, missed, later, warm = barge_in_figures(at, lambda r: True)
                print(f"  {code} {what} {db:.0f} dB: rows {len(at)}, barge-ins n={n} p95 {p95} p50 {p50} ms, "
                      f"missed {missed}, self-pauses later {later} + warm-up {warm}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

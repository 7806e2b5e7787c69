"""The rig's pipe glitches against the hypervisor's steal time (a tuning look, not a bench figure).

``steal_vs_glitch.py log FILE`` appends, each second, the uptime (= ``time.monotonic()`` on Linux, the clock of
the rig's rows), the steal ticks and the busy and idle ticks of ``/proc/stat``; run it beside rig holds.
``steal_vs_glitch.py rows FILE RESULTS.json...`` prints, per row of ``pulse_aec`` results files, its pacat underruns,
the steal over the row, the largest one-second steal step, and the steal near each underrun; then the pooled
steal rate of the rows with and without underruns. (Stop 43 found them 0.39 vs 0.07 s per s: the shared cores'
other guests, not this machine's processes, starve the room's pipe.)
"""

from __future__ import annotations

import bisect
import json
import sys
import time
from pathlib import Path

TICKS_PER_S = 100


def log(path: str) -> None:
    with open(path, "a") as out:
        while True:
            up = Path("/proc/uptime").read_text().split()[0]
            cols = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
            busy = sum(int(cols[i]) for i in (0, 1, 2, 5, 6))
            out.write(f"{up} {cols[7]} {busy} {cols[3]}\n")
            out.flush()
            time.sleep(1)


def read_samples(path: str) -> list[tuple[float, ...]]:
    """The log's (uptime s, steal ticks) per second, in order."""
    return [tuple(map(float, line.split()[:2])) for line in open(path) if len(line.split()) >= 4]


def rows(path: str, results: list[str]) -> None:
    samples = read_samples(path)
    times = [s[0] for s in samples]

    def steal(a: float, b: float) -> tuple[float | None, float]:
        i, j = bisect.bisect_left(times, a), bisect.bisect_right(times, b) - 1
        if j <= i:
            return None, 0.0
        steps = [samples[k + 1][1] - samples[k][1] for k in range(i, j)]
        return (samples[j][1] - samples[i][1]) / TICKS_PER_S, max(steps)

    seen = []
    for name in results:
        data = json.load(open(name))
        for row in data["rows"] if isinstance(data, dict) else data:
            room = row.get("room", {})
            t0 = room.get("started_mono")
            if t0 is None:
                continue
            wall = row.get("wall_s") or 0.0
            stolen, top = steal(t0, t0 + wall)
            under = [u[0] for u in room.get("pacat_underruns") or []]
            near = [steal(u - 1.5, u + 1.5)[1] for u in under][:6]
            seen.append((Path(name).name[:40], row["mix"], len(under), stolen, top, wall))
            print(*seen[-1], near)
    for label, group in (("with", [r for r in seen if r[2] and r[3] is not None]),
                         ("without", [r for r in seen if not r[2] and r[3] is not None])):
        rate = sum(r[3] for r in group) / sum(r[5] for r in group) if group else None
        tops = sorted(r[4] for r in group)[-5:]
        print(f"rows {label} underruns: {len(group)}, steal s per wall s {rate and round(rate, 3)}, "
              f"largest 1 s steps (ticks) {tops}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["log"]:
        log(sys.argv[2])
    elif sys.argv[1:2] == ["rows"]:
        rows(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)

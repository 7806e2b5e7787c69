"""Who else used the CPU during a rig row (part of :mod:`pulse_aec`).

Stop 42's held-out holds had 10-20x the pacat underruns of its tuning holds, and the rows with underruns had
~0.3-0.4 "other busy" cores against ~0.03 on the rest, with no name for that other work. A row now records the
hypervisor's steal time apart (``/proc/stat``; the shared cores of these machines can lose time to other guests)
and the processes outside the rig that used the most CPU during it (this process, its descendants -- the room,
pacat, parec -- and the PulseAudio server are the rig's own).
"""

from __future__ import annotations

import os
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
STEAL_COLUMN = 7  # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal ...
# Stolen cores (steal seconds per wall second) from which a row counts as loaded. Stop 43's tuning holds (30 rows,
# steal logged each second: lead43-steal-vs-underruns-2026-12-07.txt): rows without a pacat underrun lost 0.02-0.17,
# rows with tens of underruns 0.5-0.8, with bursts of ~1 core-second stolen in a second.
STEAL_LOADED_AT = 0.25


def steal_s() -> float:
    """CPU seconds the hypervisor gave other guests since boot, all cores."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[1:][STEAL_COLUMN]) * TICK_S


def steal_marks(steal_s: float, wall_s: float) -> dict[str, object]:
    """A row's steal marks: the seconds stolen, as cores, and whether that counts as loaded."""
    cores = steal_s / wall_s if wall_s > 0 else 0.0
    return {"steal_s": round(steal_s, 2), "steal_cores": round(cores, 3), "steal_loaded": cores >= STEAL_LOADED_AT}


def processes() -> dict[int, tuple[str, int, float]]:
    """Every process now: pid -> (name, parent pid, CPU seconds used so far)."""
    out: dict[int, tuple[str, int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone since listdir
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(entry)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_S)
    return out


def descendants(table: dict[int, tuple[str, int, float]], root: int) -> set[int]:
    """``root`` and every process under it in ``table``."""
    found, grew = {root}, True
    while grew:
        more = {pid for pid, (_, ppid, _) in table.items() if ppid in found and pid not in found}
        found |= more
        grew = bool(more)
    return found


def busiest_others(
    before: dict[int, tuple[str, int, float]], after: dict[int, tuple[str, int, float]],
    rig: set[int], n: int = 3, at_least_s: float = 0.05,
) -> list[list[object]]:
    """The ``n`` processes outside ``rig`` that used the most CPU between the two tables, as
    [name, pid, seconds] (a process new since ``before`` counts all it used), those under
    ``at_least_s`` left out. Names are not compared: a kernel worker renames itself per work item."""
    used = []
    for pid, (name, _, cpu) in after.items():
        if pid in rig:
            continue
        earlier = before[pid][2] if pid in before else 0.0
        spent = cpu - earlier if cpu >= earlier else cpu  # less than before: the pid was reused
        if spent >= at_least_s:
            used.append([name, pid, round(spent, 2)])
    return sorted(used, key=lambda x: -float(x[2]))[:n]

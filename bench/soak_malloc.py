"""Where the soak's steps of anonymous memory come from: smaps per mapping and glibc's malloc state.

Not a bench (no ``bench_`` prefix, no results file): a diagnostic beside ``soak_trace.py``.
It runs the same ``kiosk run`` as ``bench_soak_live`` (same config, fake server, lobby WAV;
questions closer together so turns come faster), reads ``/proc/PID/smaps`` every ``--every``
seconds and prints each step of anonymous memory with the mappings that grew ([heap] is
glibc's main arena; a mapping starting on a 64 MB boundary is a thread arena's heap) and the
kiosk's log lines in that window. With gdb and libc6-dbg it also prints glibc's ``mp_``
(the mmap and trim thresholds) and the arena count at the settle time and at the end. With
``--perf`` (root, perf with uprobes) it records the native stacks of malloc/realloc/calloc
calls of ``--big`` bytes or more after the settle time.

    cd bench && ../.venv/bin/python soak_malloc.py --minutes 15 [--env MALLOC_ARENA_MAX=2]

What it found (2026-12-03): the steps were [heap] growing by 512 KiB after glibc's dynamic
mmap threshold had risen to 6.25 MiB (the embedder's first query); the only allocations of
256 KiB or more after settling were the WAV microphone's 512 KiB numpy blocks and asyncio's
256 KiB socket reads. ``kiosk/service/memory.py`` pins the thresholds.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import bench_soak_live
import rig

ARENA_ALIGN = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: thread arenas' heaps are aligned to it
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
PROBES = {
    "malloc": "bytes=%di:u64",
    "realloc": "bytes=%si:u64",
    "calloc": "bytes=%si:u64 n=%di:u64",
}


def anon_by_mapping(pid: int) -> dict[str, int]:
    """Anonymous kB per mapping, keyed 'start-end perms name' with a label for arenas."""
    out: dict[str, int] = {}
    key = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if re.match(r"^[0-9a-f]+-[0-9a-f]+$", head[0]):
            start, end = (int(x, 16) for x in head[0].split("-"))
            name = head[5] if len(head) > 5 else ""
            if not name:
                size = f"[anon {(end - start) >> 10} kB]"
                name = "[arena heap]" if start % ARENA_ALIGN == 0 else size
            key = f"{head[0].split('-')[0]} {head[1]} {name}"  # the start: a heap grows at its end
        elif head[0] == "Anonymous:" and int(head[1]):
            out[key] = int(head[1])
    return out


def malloc_state(pid: int) -> str:
    """glibc's mp_ thresholds and arena count, through gdb (needs libc6-dbg)."""
    if not shutil.which("gdb"):
        return "gdb missing"
    cmd = ["gdb", "-p", str(pid), "-batch", "-ex", "p mp_", "-ex", "p narenas"]
    cmd += ["-ex", "p main_arena.system_mem"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    keep = ("trim_threshold", "mmap_threshold", "max_n_mmaps", "no_dyn_threshold", "n_mmaps")
    vals = {k: v for k, v in re.findall(r"(\w+) = (\w+)", text) if k in keep}
    nums = re.findall(r"^\$\d+ = (\d+)$", text, re.M)
    return f"{vals} narenas={nums[0] if nums else '?'} main_arena.system_mem={nums[1:2]}"


def start_perf(pid: int, out: Path, big: int) -> subprocess.Popen[bytes]:
    events: list[str] = []
    for fn, args in PROBES.items():
        subprocess.run(["perf", "probe", "-q", "-d", f"probe_libc:{fn}"], capture_output=True)
        subprocess.run(["perf", "probe", "-q", "-x", LIBC, f"{fn} {args}"], check=True)
        # a filter cannot multiply: calloc(n, size) is kept for n >= 4096, then sorted out below
        flt = "n >= 4096" if fn == "calloc" else f"bytes >= {big}"
        events += ["-e", f"probe_libc:{fn}", "--filter", flt]
    cmd = ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "--call-graph", "dwarf,32768"]
    cmd += [*events, "-p", str(pid), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_report(data: Path, big: int, t0: float) -> None:
    text = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "time,event,trace,ip,sym,dso"],
        capture_output=True,
        text=True,
    ).stdout
    for block in text.strip().split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        m = re.match(r"\s*([\d.]+):\s+probe_libc:(\w+):.*?bytes=(\d+)(?: n=(\d+))?", lines[0])
        if not m:
            continue
        size = int(m[3]) * (int(m[4]) if m[4] else 1)
        if size < big:
            continue
        frames = [ln.split(None, 1)[1] for ln in lines[1:] if len(ln.split(None, 1)) > 1]
        frames = [f for f in frames if "libc.so" not in f][:14]
        print(f"  {float(m[1]) - t0:8.1f} s {m[2]} {size} B")
        for f in frames:
            print(f"      {f[:150]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between smaps reads")
    ap.add_argument("--settle", type=float, default=120.0)
    ap.add_argument("--gap", type=float, nargs=2, default=(6.0, 40.0), help="s between questions")
    ap.add_argument("--step", type=int, default=200, help="kB of anon growth reported as a step")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the kiosk")
    ap.add_argument("--perf", action="store_true", help="record big allocations' stacks")
    ap.add_argument("--big", type=int, default=256 * 1024, help="bytes: a big allocation")
    args = ap.parse_args()
    seconds = args.minutes * 60
    audio, _ = bench_soak_live.lobby_with_questions(seconds + 30, gaps=tuple(args.gap))
    env = dict(e.split("=", 1) for e in args.env)
    print(f"env {env}; load {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    with rig.temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        wav = rig.write_wav(tmp / "lobby.wav", audio)
        index = rig.demo_index(tmp)
        log = tmp / "kiosk.log"
        with rig.fake_server() as url, log.open("wb") as f:
            cfg = rig.kiosk_config(tmp, url, index)
            cmd = rig.kiosk_command("run", "--config", str(cfg), "--input-wav", str(wav))
            cmd += ["--output-wav", str(tmp / "speaker.wav")]
            proc = subprocess.Popen(cmd, env=rig.kiosk_env(**env), stdout=f, stderr=f)
            t0 = time.monotonic()
            perf = None
            settled: dict[str, int] = {}
            prev: dict[str, int] = {}
            log_pos = 0
            steps = 0
            try:
                while time.monotonic() - t0 < seconds and proc.poll() is None:
                    time.sleep(args.every)
                    t = time.monotonic() - t0
                    cur = anon_by_mapping(proc.pid)
                    text = log.read_text(errors="replace")
                    new_log, log_pos = text[log_pos:], len(text)
                    if prev and t > 30:
                        grew = {k: cur.get(k, 0) - prev.get(k, 0) for k in cur.keys() | prev.keys()}
                        total = sum(grew.values())
                        if abs(total) >= args.step:
                            steps += total >= args.step and t >= args.settle
                            print(f"{t:7.1f} s anon {total:+d} kB (total {sum(cur.values())} kB)")
                            for k, d in sorted(grew.items(), key=lambda kv: -abs(kv[1]))[:4]:
                                if d:
                                    print(f"      {d:+6d} kB {k} (now {cur.get(k, 0)})")
                            for line in new_log.splitlines()[-12:]:
                                print(f"      | {line[:160]}")
                            sys.stdout.flush()
                    prev = cur
                    if not settled and t >= args.settle:
                        settled = cur
                        print(f"{t:7.1f} s settled: {malloc_state(proc.pid)}", flush=True)
                        if args.perf:
                            perf = start_perf(proc.pid, tmp / "perf.data", args.big)
                t = time.monotonic() - t0
                if proc.poll() is None:
                    print(f"{t:7.1f} s end: {malloc_state(proc.pid)}")
                    heap = [sum(v for k, v in m.items() if "[heap]" in k) for m in (settled, prev)]
                    print(
                        f"anon kB settled -> end: {sum(settled.values())} -> {sum(prev.values())}"
                        f" ([heap] {heap[0]} -> {heap[1]})"
                    )
            finally:
                if perf is not None:
                    perf.send_signal(2)
                    perf.wait(60)
                rig.stop(proc)
        turns = re.findall(r"turn \d+ \w+ \(", log.read_text(errors="replace"))
        print(f"{len(turns)} turns; {steps} steps >= {args.step} kB after {args.settle:.0f} s")
        if perf is not None:
            perf_report(tmp / "perf.data", args.big, t0)
            for fn in PROBES:
                subprocess.run(["perf", "probe", "-q", "-d", f"probe_libc:{fn}"])


if __name__ == "__main__":
    main()

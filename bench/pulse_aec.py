"""The sound server's echo canceller against the kiosk's guard, in real time through a real
PulseAudio server (issue 10 item 4, helper pulse27). Needs ``bash .ci/pulseaudio.sh``.

    python bench/pulse_aec.py --split tuning --out bench/results/X.json
    python bench/pulse_aec.py --split tuning --limit 4 --modes guard,pulse-aec   # a quick look
    python bench/pulse_aec.py --split heldout --seeds 381,391 --kinds bargein --echo-dbs -12  # n=12

Per echo / barge-in mix of the lobby corpus (``lobby_corpus``) and per mode, a fresh private
set of PulseAudio modules: null sinks "speaker" and "mic" at the mix's device rate, and for
the ``pulse-aec*`` modes ``module-echo-cancel`` (webrtc) with ``source_master=mic.monitor``
and ``sink_master=speaker``, with the arguments ``install.sh --aec`` writes (``pulse-aec``)
or a variant. The kiosk is the daemon itself in this process (``pulse_kiosk.RecordedDaemon``:
``KioskPipeline`` and its PulseAudio microphone and speaker as ``kiosk run`` opens them,
default config except the echo settings), pointed with ``PULSE_SOURCE``/``PULSE_SINK`` at the
echo-cancel source/sink (``audio.echo_cancelled = true``) or at the null sinks (the guard;
``speex``: the in-process SpeexDSP canceller). The fake Realtime server (this process's
loop, a real websocket) answers with the mix's TTS answer. The room is a separate process
(``pulse_room.py``): speaker monitor -> room impulse response at the mix's echo level ->
plus noise, question and the visitor's interruption -> the "mic" sink.

Times are the visitor's: the room's sample clock from the sample at which it wrote the
visitor's labelled true onset into "mic" to the first sample of the speaker's monitor after
which it stays silent (everything inside PulseAudio and the kiosk is included, plus the rig's
own pipe, ``rig_delay_s``, which the echo also travels). ``*-later`` modes: the same kiosk
first answers the same question with 3 s of the answer in this room, nobody speaking (the
daemon's and the canceller's state of a later answer), then the mix is played again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import cpu_census  # noqa: E402
from lobby_corpus import build_specs, read_clip, render  # noqa: E402
from lobby_scoring import pct  # noqa: E402  (the bench's nearest-rank percentile)
from lobby_sound import room_ir  # noqa: E402
from pulse_modules import Modules, cpu_s, pactl, pulseaudio_pid  # noqa: E402
from pulse_room import pipe_glitch_counts, silent_from  # noqa: E402
from rig_pulse import NullSinks  # noqa: E402


def install_aec_args() -> str:
    """The ``aec_args`` of the module-echo-cancel line install.sh --aec writes for PulseAudio."""
    import shlex

    text = (ROOT / "install.sh").read_text()
    body = text[text.index("aec_pulseaudio() {") :]
    line = next(x for x in body.splitlines() if x.startswith("load-module module-echo-cancel"))
    words = dict(w.split("=", 1) for w in shlex.split(line)[2:])
    return words.get("aec_args", "")


INSTALL_AEC_ARGS = install_aec_args()
OLD_INSTALL_AEC_ARGS = ""  # before pulse27: none, i.e. PulseAudio's analog gain control on
# mode: (audio.echo_cancel, audio.echo_cancelled, module-echo-cancel aec_args or None, later);
# "pulse-aec*" without "-installed": the PulseAudio backend (devices "", PULSE_SOURCE/SINK)
MODES: dict[str, tuple[str, bool, str | None, bool]] = {
    "guard": ("none", False, None, False),
    "guard-later": ("none", False, None, True),
    "pulse-aec": ("none", True, OLD_INSTALL_AEC_ARGS, False),
    "pulse-aec-later": ("none", True, OLD_INSTALL_AEC_ARGS, True),
    "pulse-aec-noagc": ("none", True, "analog_gain_control=0", False),
    "pulse-aec-noagc-later": ("none", True, "analog_gain_control=0", True),
    # as install.sh --aec configures the kiosk: input/output_device = "pulse" (PortAudio's
    # ALSA "pulse" device, which PULSE_SOURCE/PULSE_SINK route), echo_cancelled = true
    "pulse-aec-installed": ("none", True, INSTALL_AEC_ARGS, False),
    "pulse-aec-installed-later": ("none", True, INSTALL_AEC_ARGS, True),
    "pulse-aec-agc-installed": ("none", True, OLD_INSTALL_AEC_ARGS, False),
    "pulse-aec-agc-installed-later": ("none", True, OLD_INSTALL_AEC_ARGS, True),
    "speex": ("speex", False, None, False),
    "speex-later": ("speex", False, None, True),
}
DEFAULT_MODES = ("guard,guard-later,pulse-aec-agc-installed,pulse-aec-agc-installed-later,"
                 "pulse-aec-installed,pulse-aec-installed-later")
WARM_ANSWER_S = 3.0  # the earlier answer of a *-later run (bench_lobby's warm_s)
WARM_GAP_S = 1.5  # after the earlier answer ended, before the mix starts again
EXTRA_S = 40.0  # noise after the mix (the kiosk keeps listening)
TAIL_S = 1.5  # after the measured turn ended and the speaker is idle
PLAYBACK_RATE_HZ = 24000
DEFAULT_PIPE = "20"  # the room's pacat --latency-msec, main's pipe (pulse_room.PACAT_LATENCY_MS)
def kiosk_config(base: Any, mode: str, server: Any, state_dir: Path) -> Any:
    from kiosk.simulate import _point_at

    echo_cancel, cancelled, _, _ = MODES[mode]
    device = "pulse" if "-installed" in mode else base.audio.input_device
    cfg = dataclasses.replace(
        base,
        audio=dataclasses.replace(base.audio, echo_cancel=echo_cancel, echo_cancelled=cancelled,
                                  input_device=device, output_device=device),
        service=dataclasses.replace(base.service, state_dir=str(state_dir)),
        realtime=dataclasses.replace(base.realtime, fallback="none"),
    )
    return _point_at(cfg, server)


class RoomProcess:
    def __init__(self, spec_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "pulse_room.py"), str(spec_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.ready = json.loads(self.proc.stdout.readline())["ready"]

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def finish(self) -> dict[str, Any]:
        self.send("stop")
        out, _ = self.proc.communicate(timeout=10)
        return json.loads(out.strip().splitlines()[-1])


def parse_pipes(text: str) -> list[str]:
    """``--room-pacat-ms`` (rig45): room-pipe settings, comma-separated, each pacat's latency in ms with
    an optional ``rt`` (the room and its pipes SCHED_FIFO), e.g. ``20,60,20rt``; "20" is main's pipe.
    ``abs<ms>`` (pipe46, e.g. ``abs20``): the room's libpulse writer, each block at its room-time offset."""
    pipes = [w.strip() for w in text.split(",") if w.strip()]
    for w in pipes:
        if not w.removesuffix("rt").removeprefix("abs").isdigit():
            raise ValueError(f"room pipe {w!r}: pacat ms or abs<ms>, optionally with rt")
    return pipes


def pipe_spec(pipe: str) -> dict[str, Any]:
    """The room spec's keys for one ``--room-pacat-ms`` setting (pulse_room.pipe_setting reads them)."""
    ms = int(pipe.removesuffix("rt").removeprefix("abs"))
    return {("abs_ms" if pipe.startswith("abs") else "pacat_ms"): ms, "rt": pipe.endswith("rt")}


async def run_one(mix: Any, mode: str, base_cfg: Any, server: Any, tmp: Path, n: int,
                  pipe: str = DEFAULT_PIPE) -> dict[str, Any]:
    from pulse_kiosk import RecordedDaemon

    from kiosk.testing.fake_script import FakeScript

    _, _, aec_args, later = MODES[mode]
    rate = mix.device_rate_hz
    pcm = read_clip(Path(mix.answer_clip), PLAYBACK_RATE_HZ).astype("<i2").tobytes()
    full = FakeScript(call_search=False, answer_pcm=pcm, realtime_pacing=True)
    warm = FakeScript(call_search=False, answer_pcm=pcm[: int(WARM_ANSWER_S * PLAYBACK_RATE_HZ) * 2],
                      realtime_pacing=True)
    server.script = warm if later else full
    measured = 2 if later else 1  # the turn whose answer is measured
    audio = render(mix, extra_s=EXTRA_S)
    np.save(tmp / "audio.npy", audio)
    np.save(tmp / "ir.npy", room_ir(rate, mix.seed, mix.echo_db))
    spec: dict[str, Any] = {"rate": rate, "audio": str(tmp / "audio.npy"), "ir": str(tmp / "ir.npy"),
                            "speaker_out": str(tmp / "speaker.npy"), **pipe_spec(pipe)}
    if mix.interruption:
        clip = read_clip(Path(mix.interruption["clip"]), rate) * 10 ** (mix.interruption["gain_db"] / 20)
        np.save(tmp / "clip.npy", clip)
        spec.update(clip=str(tmp / "clip.npy"), interruption=mix.interruption)
    loop = asyncio.get_running_loop()
    pa_pid = pulseaudio_pid()
    with Modules(f"{os.getpid()}_{n}", rate, aec_args) as mods:
        spec.update(speaker_monitor=f"{mods.speaker}.monitor", mic_sink=mods.mic)
        (tmp / "spec.json").write_text(json.dumps(spec))
        os.environ.update(mods.kiosk_env())
        cfg = kiosk_config(base_cfg, mode, server, tmp / "state")
        (tmp / "state").mkdir(exist_ok=True)
        room = RoomProcess(tmp / "spec.json")
        events: dict[str, float] = {}

        def on_answer(turn: int) -> None:
            if turn == measured:
                room.send("answer")

        def on_turn_end(turn: int) -> None:
            events.setdefault(f"end{turn}", time.monotonic())
            if later and turn == 1:
                server.script = full

        daemon = RecordedDaemon(cfg, on_answer, on_turn_end)
        cpu0, pa0, t0 = time.process_time(), cpu_s(pa_pid), time.monotonic()
        busy0, kids0 = busy_s(), _children_cpu_s()
        steal0, procs0 = cpu_census.steal_s(), cpu_census.processes()
        task = loop.create_task(daemon.run())
        phase2_at: float | None = None
        deadline = t0 + (mix.duration_s + 8.0) * (2 if later else 1) + 25.0
        turn_deadline = t0 + mix.duration_s + 6.0
        ec_volume, latencies = None, {}
        while time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            rec = daemon.record
            if ec_volume is None and now - t0 > 2.0:
                ec_volume = mods.source_volume(f"{mods.mic}.monitor") if aec_args is not None else "-"
                latencies = mods.latencies_ms()
            if not rec.turns and now > turn_deadline:
                break  # the question opened no turn
            playback = getattr(daemon, "playback", None)
            idle = playback is not None and playback.is_idle
            if later and phase2_at is None and "end1" in events and idle:
                if now - events["end1"] >= WARM_GAP_S:
                    phase2_at = now
                    turn_deadline = now + mix.duration_s + 6.0
                    room.send("phase2")
            if later and phase2_at is not None and len(rec.turns) < 2 and now > turn_deadline:
                break
            end = events.get(f"end{measured}")
            if end is not None and idle and now - end >= TAIL_S:
                break
        ec_volume_end = mods.source_volume(f"{mods.mic}.monitor") if aec_args is not None else None
        daemon.stop()
        try:
            await asyncio.wait_for(task, 10)
        except (asyncio.TimeoutError, TimeoutError):
            task.cancel()
        cpu1, pa1, t1 = time.process_time(), cpu_s(pa_pid), time.monotonic()
        procs1 = cpu_census.processes()  # while the room and its pipes still live: they are the rig's
        rig = cpu_census.descendants(procs1, os.getpid()) | ({pa_pid} if pa_pid else set())
        room_out = room.finish()
        own_s = (cpu1 - cpu0) + (pa1 - pa0) + (_children_cpu_s() - kids0)
        marks = load_marks(busy0, busy_s(), own_s, t1 - t0)
        marks.update(cpu_census.steal_marks(cpu_census.steal_s() - steal0, t1 - t0))
        marks["loaded"] = marks["loaded"] or marks["steal_loaded"]
        marks["busiest_others"] = cpu_census.busiest_others(procs0, procs1, rig)
        speaker = np.load(tmp / "speaker.npy")
        block_mono = np.load(tmp / "speaker.npy.mono.npy")
    server.connections.clear()
    room_out["silent_from"] = lambda t, k: silent_from(speaker, block_mono, room_out["block"], t, k, rate=rate)
    return score(mix, mode, daemon.record, room_out, phase2_at, {
        "room_pipe": pipe, "wall_s": round(t1 - t0, 2), "kiosk_cpu_s": round(cpu1 - cpu0, 3),
        "pulse_cpu_s": round(pa1 - pa0, 3), "mic_volume_2s": ec_volume, "mic_volume_end": ec_volume_end,
        "latencies_ms": latencies, **marks,
    })


def _children_cpu_s() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


LOADED_AT = 1.5  # a 1-min load average over this on 2 shared cores: something else ran beside the row
# or half a core kept busy by something not the rig during the row (a quiet machine: ~0.1)
OTHER_BUSY_AT = 0.5


def busy_s() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: every column but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def load_marks(busy0: float, busy1: float, own_cpu_s: float, wall_s: float) -> dict[str, Any]:
    """What else ran beside a row: the machine's busy cores less the rig's own (kiosk, PulseAudio, room).

    Last stop's spurious self-pauses came in rows run beside other CPU work (pacat underruns); this marks
    such rows in every results file instead of leaving it to the 1-min load average of the whole run.
    """
    load1 = os.getloadavg()[0]
    other = max(0.0, (busy1 - busy0 - own_cpu_s) / wall_s) if wall_s > 0 else 0.0
    loaded = load1 > LOADED_AT or other >= OTHER_BUSY_AT
    return {"load1_end": round(load1, 2), "other_busy_cores": round(other, 2), "loaded": loaded}


def score(mix: Any, mode: str, rec: Any, room: dict[str, Any], phase2_at: float | None,
          extra: dict[str, Any]) -> dict[str, Any]:
    later = MODES[mode][3]
    measured = 2 if later else 1
    room = dict(room)
    silent_fn = room.pop("silent_from")
    row: dict[str, Any] = {"mix": mix.id, "kind": mix.kind, "echo_db": mix.echo_db, "mode": mode,
                           "rate": mix.device_rate_hz, **extra, "room": room}
    row["turns"] = [{k: (round(v - room["started_mono"], 3) if isinstance(v, float) else v)
                     for k, v in t.items()} for t in rec.turns]
    rel = room["started_mono"]
    row["holds"] = [(round(t - rel, 3), held) for t, held in rec.holds]
    row["flushes"] = [round(t - rel, 3) for t in rec.flushes]
    if len(rec.turns) < measured or len(rec.answer_writes) < measured:
        row["error"] = f"the question opened {len(rec.turns)} turn(s), {len(rec.answer_writes)} answer(s)"
        row["self"], row["delay_s"] = [], None
        return row
    start = rec.answer_writes[measured - 1]
    onset = room.get("onset_mono")
    limit = onset if onset is not None else math.inf
    self_ev = [f"pause at {t - rel:.2f}s" for t, held in rec.holds if held and start <= t < limit]
    self_ev += [f"flush at {t - rel:.2f}s" for t in rec.flushes if start <= t < limit]
    self_ev += [f"turn at {t['start'] - rel:.2f}s" for t in rec.turns[measured:] if t["start"] < limit]
    row["self"] = self_ev
    if later:
        p2 = phase2_at or math.inf
        row["warm_self"] = sum(1 for t, held in rec.holds if held and t < p2) + sum(1 for t in rec.flushes if t < p2)
    if mix.kind == "bargein":
        stops = [t for t, held in rec.holds if held and t >= limit] + [t for t in rec.flushes if t >= limit]
        row["kiosk_stop_s"] = round(min(stops) - onset, 4) if stops and onset is not None else None
        silent = silent_fn(min(stops), room["onset_k"]) if stops and onset is not None else None
        row["delay_s"] = round((silent - room["onset_k"]) / room["rate"], 4) if silent is not None else None
        row["missed"] = not stops
        # proven: the answer stopped for good (flushed) after the onset, or its turn ended
        # interrupted; else it only paused and resumed (the kiosk took her for a cough)
        outcome = rec.turns[measured - 1].get("outcome", "")
        row["confirmed"] = any(t >= limit for t in rec.flushes) or "interrupted" in outcome
    else:
        row["delay_s"] = None
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    several = len({r.get("room_pipe", DEFAULT_PIPE) for r in rows}) > 1
    for mode in dict.fromkeys(_group(r, several) for r in rows):
        mine = [r for r in rows if _group(r, several) == mode]
        by_db: dict[str, Any] = {}
        for db in sorted({r["echo_db"] for r in mine}):
            at = [r for r in mine if r["echo_db"] == db]
            barge = [r for r in at if r["kind"] == "bargein" and "error" not in r]
            d = [r["delay_s"] if r["delay_s"] is not None else math.inf for r in barge]
            kd = [r["kiosk_stop_s"] for r in barge if r.get("kiosk_stop_s") is not None]
            by_db[f"{db:g}"] = {
                "bargein_n": len(barge),
                "p95_ms": _ms(pct(d, 95)), "p50_ms": _ms(pct(d, 50)),
                "kiosk_stop_p50_ms": _ms(pct(kd, 50)),
                "missed": sum(r.get("missed", False) for r in barge),
                "not_confirmed": sum(not r.get("confirmed", True) for r in barge),
                "self_interruptions": sum(len(r["self"]) for r in at),
                "runs_with_self": sum(bool(r["self"]) for r in at),
                "errors": sum("error" in r for r in at),
            }
        play_s = sum(r["room"].get("speaker_loud_s") or 0 for r in mine)
        out[mode] = {
            "by_echo_db": by_db,
            "pulse_cpu_ms_per_s_playback": round(1000 * sum(r["pulse_cpu_s"] for r in mine) / play_s, 2) if play_s else None,
            "pulse_cpu_ms_per_s_wall": round(1000 * sum(r["pulse_cpu_s"] for r in mine) / sum(r["wall_s"] for r in mine), 2),
            "kiosk_cpu_ms_per_s_wall": round(1000 * sum(r["kiosk_cpu_s"] for r in mine) / sum(r["wall_s"] for r in mine), 2),
            "warm_self": sum(r.get("warm_self", 0) for r in mine),
            "rig_late_blocks": sum(r["room"].get("late_blocks", 0) for r in mine),
            "rig_pipe": pipe_glitch_counts(r["room"] for r in mine),
            "loaded_rows": [r["mix"] for r in mine if r.get("loaded")],
        }
    return out


def _group(row: dict[str, Any], several: bool) -> str:
    """A summary's key: the mode; with the room pipe when the run has several and this is not main's
    (rig45: a run on one pipe keeps the keys readers expect; each row names its pipe)."""
    pipe = row.get("room_pipe", DEFAULT_PIPE)
    return row["mode"] if pipe == DEFAULT_PIPE or not several else f"{row['mode']} pipe={pipe}"


def _ms(s: float | None) -> float | None:
    if s is None:
        return None
    return math.inf if math.isinf(s) else round(s * 1000)


async def run_all(mixes: list[Any], modes: list[str], log: Any,
                  pipes: tuple[str, ...] = (DEFAULT_PIPE,)) -> list[dict[str, Any]]:
    from bench_lobby import load_bench_config

    from kiosk.testing.fake_realtime import FakeRealtimeServer

    base = load_bench_config()
    rows = []
    os.environ.pop("NOTIFY_SOCKET", None)
    async with FakeRealtimeServer("ga") as server:
        n = 0
        for i, mix in enumerate(mixes):
            # several pipes: each mix on each, their order alternating by mix (rig45)
            for pipe, mode in [(p, m) for p in (pipes if i % 2 == 0 else pipes[::-1]) for m in modes]:
                n += 1
                with tempfile.TemporaryDirectory(prefix="pulse27-") as tmp:
                    kw = {} if pipe == DEFAULT_PIPE else {"pipe": pipe}
                    row = await run_one(mix, mode, base, server, Path(tmp), n, **kw)
                rows.append(row)
                if os.environ.get("PULSE_AEC_ROWS"):  # each row as it comes (a killed run keeps them)
                    with open(os.environ["PULSE_AEC_ROWS"], "a") as f:
                        f.write(json.dumps(row, default=str) + "\n")
                under = len(row.get("room", {}).get("pacat_underruns") or [])
                print(f"# {mix.id} {mix.echo_db:g} dB {mode}{'' if pipe == DEFAULT_PIPE else ' pipe=' + pipe}: "
                      f"delay {row.get('delay_s')} self {row['self']} {row.get('error', '')}"
                      f"{f' underruns {under}' if under else ''}", file=log, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    p.add_argument("--seed", type=int)
    p.add_argument("--seeds", help="several seeds, comma-separated, pooled in one table (more "
                   "barge-ins for a p95: a split has 6 at -12 dB); mix ids get an s<seed>- prefix")
    p.add_argument("--modes", default=DEFAULT_MODES)
    p.add_argument("--kinds", default="echo,bargein")
    p.add_argument("--limit", type=int, help="only the first N mixes (a quick look)")
    p.add_argument("--only", help="mix ids, comma-separated")
    p.add_argument("--echo-dbs", help="only mixes at these echo levels, comma-separated (e.g. -12)")
    p.add_argument("--out", type=Path)
    p.add_argument("--label", default="")
    p.add_argument("--room-pacat-ms", default=DEFAULT_PIPE, help="the room pipe(s): pacat's latency in ms, "
                   "or abs<ms> (pipe46's seek-absolute writer), optionally with rt (SCHED_FIFO room), "
                   "comma-separated: each mix runs on each (rig45)")
    args = p.parse_args(argv)
    pipes = tuple(parse_pipes(args.room_pacat_ms))
    why = NullSinks.available()
    if why:
        print(f"pulse_aec: {why}", file=sys.stderr)
        return 2
    kinds = set(args.kinds.split(","))
    if args.seeds and args.seed is not None:
        p.error("--seed or --seeds, not both")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    mixes = [
        dataclasses.replace(m, id=f"s{seed}-{m.id}") if len(seeds) > 1 else m
        for seed in seeds
        for m in build_specs(args.split, seed=seed)
        if m.kind in kinds
    ]
    if args.echo_dbs:
        mixes = [m for m in mixes if m.echo_db in {float(d) for d in args.echo_dbs.split(",")}]
    if args.only:
        mixes = [m for m in mixes if m.id in args.only.split(",")]
    if args.limit:
        mixes = mixes[: args.limit]
    modes = args.modes.split(",")
    import run as bench_run

    import kiosk

    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(NullSinks.LOCK, "a") as lock:  # the PulseAudio tests' lock, as rig_pulse does
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = asyncio.run(run_all(mixes, modes, sys.stderr, pipes))
    out = {
        "label": args.label, "split": args.split, "seed": args.seed, "seeds": seeds, "modes": modes, "room_pipes": pipes,
        "install_aec_args": INSTALL_AEC_ARGS, "old_install_aec_args": OLD_INSTALL_AEC_ARGS, "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_start": load0, "load_end": os.getloadavg(),
        "pulseaudio": pactl("info").split("Server Version: ")[1].split("\n")[0],
        "summary": summarize(rows), "rows": rows,
        "machine": bench_run.machine(), "commit": bench_run.git_commit(),
        "kiosk_code": str(Path(kiosk.__file__).parent),
    }
    report(out, args.out)
    return 0


def report(out: dict[str, Any], path: Path | None) -> None:
    """Print the summary; write the whole results file to ``path`` if given."""
    print(json.dumps(out["summary"], indent=1))
    if path:
        path.write_text(json.dumps(out, indent=1, default=str))
        print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())

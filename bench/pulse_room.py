"""A simulated room between two real PulseAudio null sinks, in its own process (issue 10,
helper pulse27): what the kiosk's speaker plays comes back into its microphone through a
room impulse response, with the lobby's noise and the visitor's speech.

    python bench/pulse_room.py SPEC.json     # driven by bench/pulse_aec.py over stdin/stdout

The room reads the speaker sink's monitor (``parec``, mono, the mix's device rate) in 10 ms
blocks; for each block read it writes one block into the microphone sink (``pacat``,
stereo): the mix's audio (noise, question, interruption) plus that block convolved with the
room's impulse response (``lobby_sound.room_ir`` at the mix's echo level). Both sinks run on
the server's one clock, so sample ``k`` of the monitor and sample ``k`` of the microphone
stream are handled at the same moment ("room time"; the rig's own pipe latency, measured by
:func:`click_delay_s`, comes on top of it in both directions).

Commands on stdin (one a line): ``answer`` (the kiosk began to play its answer: place the
interruption ``after_answer_s`` after the speaker next becomes audible), ``phase2`` (start
the mix again from its beginning: a later answer in the same room), ``stop``. At ``stop`` it
prints one JSON line: the room-time sample index (and ``time.monotonic``) at which the
visitor's labelled true onset was written, when the speaker became audible, and the room's
own timing; the speaker's monitor (``speaker_out``, .npy) and when each of its blocks was
handled (``.mono.npy``) are saved for the driver to find when the speaker fell silent.
"""

from __future__ import annotations

import json
import math
import os
import select
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BLOCK_MS = 10
AUDIBLE_DBFS = -55.0  # a speaker block this loud is "playing" (the answer; its echo is quieter)
PAREC_LATENCY_MS = 10
PACAT_LATENCY_MS = 20


RT_PRIORITY = 4  # SCHED_FIFO of the room and its pipes with the spec's "rt": under PulseAudio's null-sink threads (RR 5)


def parec_command(source: str, rate: int, channels: int = 1, latency_ms: int = PAREC_LATENCY_MS) -> list[str]:
    return [
        "parec", f"--device={source}", "--format=s16le", f"--rate={rate}",
        f"--channels={channels}", f"--latency-msec={latency_ms}", "--raw", "-v",
    ]


def pacat_command(sink: str, rate: int, channels: int = 2, latency_ms: int = PACAT_LATENCY_MS) -> list[str]:
    return [
        "pacat", "--playback", f"--device={sink}", "--format=s16le", f"--rate={rate}",
        f"--channels={channels}", f"--latency-msec={latency_ms}", "--raw", "-v",
    ]


def pipe_setting(spec: dict[str, Any]) -> dict[str, Any]:
    """The room pipe the spec asks for (rig45): pacat's and parec's ``--latency-msec`` and whether
    the room and its pipes run SCHED_FIFO (``rt``). Absent keys: main's pipe (20 / 10 ms, normal).
    ``abs_ms`` (pipe46): the microphone stream is bench/pipe46_writer.AbsWriter (each block at its
    room-time offset, heard ``abs_ms`` after it is written) instead of pacat (``pacat_ms`` None)."""
    abs_ms = spec.get("abs_ms")
    return {"pacat_ms": None if abs_ms else int(spec.get("pacat_ms", PACAT_LATENCY_MS)),
            "parec_ms": int(spec.get("parec_ms", PAREC_LATENCY_MS)), "rt": bool(spec.get("rt", False)),
            **({"abs_ms": int(abs_ms)} if abs_ms else {})}


def pipe_latency_near(samples: list[tuple[float, int]], at_s: float | None, span_s: float = 0.5) -> float | None:
    """pacat's reported latency (ms, median of its status lines) within ``span_s`` of room time ``at_s``:
    the mic pipe's latency at the visitor's onset (the room writes her onset this much before the sink
    plays it)."""
    if at_s is None:
        return None
    near = [us for t, us in samples if abs(t - at_s) <= span_s]
    return round(statistics.median(near) / 1000, 1) if near else None


class Convolver:
    """Streaming overlap-add convolution of fixed-size blocks with ``ir``."""

    def __init__(self, ir: np.ndarray, block: int) -> None:
        self.block = block
        self.size = 1 << (block + ir.size - 2).bit_length()
        self.ir_f = np.fft.rfft(ir, self.size)
        self.tail = np.zeros(self.size)

    def process(self, x: np.ndarray) -> np.ndarray:
        y = np.fft.irfft(np.fft.rfft(x, self.size) * self.ir_f, self.size)
        y += self.tail
        out = y[: self.block].copy()
        self.tail = np.concatenate([y[self.block :], np.zeros(self.block)])
        return out


def _read_exact(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("parec ended")
        buf += chunk
    return buf


class Room:
    """The room loop (see the module docstring); ``audio`` is the mix at ``rate``, stereo
    float (int16 scale), ``interruption`` as in ``lobby_corpus.Mix`` (None: nobody
    interrupts)."""

    def __init__(
        self, spec: dict[str, Any], audio: np.ndarray, ir: np.ndarray, clip: np.ndarray | None
    ) -> None:
        self.spec = spec
        self.rate = int(spec["rate"])
        self.block = self.rate * BLOCK_MS // 1000
        self.audio = audio
        self.clip = clip
        self.conv = Convolver(ir, self.block)
        self.k = 0  # room-time samples handled
        self.phase_start = 0  # room time at which the mix (re)started
        self.extra: dict[int, np.ndarray] = {}  # interruption samples by room-time block
        self.want_answer = False
        self.answer_message_k: int | None = None
        self.audible_k: int | None = None
        self.onset_k: int | None = None
        self.onset_mono: float | None = None
        self.end_k: int | None = None
        self.speaker_log: list[np.ndarray] = []  # the speaker's monitor, every block
        self.block_mono: list[float] = []  # time.monotonic when each block was handled
        self.last_loud_k: int | None = None
        self.speaker_blocks_loud = 0
        self.late_blocks = 0  # blocks handled > 1 block late (the room fell behind)
        self.max_peak = 0.0

    def command(self, line: str) -> bool:
        word = line.strip()
        if word == "answer":
            self.want_answer = True
            self.answer_message_k = self.k
        elif word == "phase2":
            self.phase_start = self.k
        elif word == "stop":
            return False
        return True

    def _schedule(self) -> None:
        spec = self.spec.get("interruption")
        if spec is None or self.clip is None or self.audible_k is None:
            return
        onset = self.audible_k + round(spec["after_answer_s"] * self.rate)
        start = onset - round(spec["onset_in_clip_s"] * self.rate)
        start = max(start, self.k + self.block)  # never into the past
        self.onset_k = start + round(spec["onset_in_clip_s"] * self.rate)
        self.end_k = start + round(spec["end_in_clip_s"] * self.rate)
        for i in range(0, self.clip.size, self.block):
            part = self.clip[i : i + self.block]
            b = (start + i) // self.block * self.block
            off = start + i - b
            for at, piece in ((b, part[: self.block - off]), (b + self.block, part[self.block - off :])):
                if piece.size:
                    buf = self.extra.setdefault(at, np.zeros(self.block))
                    o = off if at == b else 0
                    buf[o : o + piece.size] += piece

    def step(self, speaker: np.ndarray) -> np.ndarray:
        """One block: the speaker's (mono int16) in, the microphone's (stereo int16) out."""
        k, block = self.k, self.block
        level = 20 * np.log10(np.sqrt(np.mean(speaker.astype(np.float64) ** 2)) / 32768 + 1e-12)
        loud = level > AUDIBLE_DBFS
        if loud:
            self.last_loud_k = k + block
            self.speaker_blocks_loud += 1
        if self.want_answer and loud and self.audible_k is None:
            first = int(np.argmax(np.abs(speaker) > 32768 * 10 ** (AUDIBLE_DBFS / 20)))
            self.audible_k = k + first
            self._schedule()
        self.speaker_log.append(speaker.copy())
        self.block_mono.append(time.monotonic())
        echo = self.conv.process(speaker.astype(np.float64))
        pos = k - self.phase_start
        mix = np.zeros((block, 2))
        if pos + block <= len(self.audio):
            mix = self.audio[pos : pos + block].copy()
        elif len(self.audio):  # past the mix: its noise loops (the kiosk keeps listening)
            idx = (np.arange(pos, pos + block) - len(self.audio)) % max(1, len(self.audio) // 2)
            mix = self.audio[len(self.audio) // 2 + idx] if len(self.audio) > 1 else mix
        mix[:, 0] += echo
        mix[:, 1] += echo
        add = self.extra.pop(k, None)
        if add is not None:
            mix[:, 0] += add
            mix[:, 1] += add * 0.92
            if self.onset_k is not None and k <= self.onset_k < k + block:
                self.onset_mono = time.monotonic()
        self.max_peak = max(self.max_peak, float(np.max(np.abs(mix))))
        self.k += block
        return np.clip(np.rint(mix), -32768, 32767).astype("<i2")

    def report(self, started: float) -> dict[str, Any]:
        r = self.rate

        def s(k: int | None) -> float | None:
            return None if k is None else round(k / r, 4)

        if self.spec.get("speaker_out"):
            np.save(self.spec["speaker_out"], np.concatenate(self.speaker_log or [np.zeros(0, "<i2")]))
            np.save(self.spec["speaker_out"] + ".mono.npy", np.array(self.block_mono))
        return {
            "rate": r,
            "room_s": s(self.k),
            "answer_message_s": s(self.answer_message_k),
            "audible_s": s(self.audible_k),
            "onset_s": s(self.onset_k),
            "onset_mono": self.onset_mono,
            "end_s": s(self.end_k),
            "onset_k": self.onset_k,
            "block": self.block,
            "last_loud_s": s(self.last_loud_k),
            "started_mono": started,
            "late_blocks": self.late_blocks,
            "speaker_loud_s": round(self.speaker_blocks_loud * BLOCK_MS / 1000, 2),
            "max_peak": round(self.max_peak),
        }


class PipeGlitches:
    """The rig's own pipe, as ``parec``/``pacat -v`` tell it on stderr: an underrun of the
    microphone stream (pacat) plays silence into the microphone and makes everything after it,
    the echo too, come later (pacat's latency after one: ~+5 ms, ad hoc on vsink); an overrun of
    the monitor (parec) drops speaker audio. Each as (monotonic time, room-time seconds) when
    read. And pacat's reported latency as its median per room-time second, in ms: coarse, as the
    status line samples a ~10 ms sawtooth (the room's 10 ms writes) at its own pace, so on a
    steady pipe these medians wander within ~12-19 ms; only a step past that range means much."""

    WORDS = {"stream underrun": "pacat_underruns", "stream overrun": "parec_overruns"}

    def __init__(self, room: Room) -> None:
        self.room = room
        self.seen: dict[str, list[Any]] = {v: [] for v in self.WORDS.values()}
        self._second: int | None = None
        self._latencies: list[int] = []
        self.seen["pacat_latency_ms_per_s"] = []
        self.latency_samples: list[tuple[float, int]] = []  # (room-time s, pacat's latency in us)

    def hear(self, line: str, tool: str) -> None:
        """One status line of ``tool``'s stderr (pacat and parec rewrite theirs with ``\\r``)."""
        when = (round(time.monotonic(), 4), round(self.room.k / self.room.rate, 3))
        line = line.lower()
        for word, key in self.WORDS.items():
            if word in line:
                self.seen[key].append(when)
        if tool != "pacat" or "latency:" not in line:
            return
        digits = line.split("latency:")[1].strip().split(" ")[0]
        if digits.isdigit():
            second = int(when[1])
            if second != self._second:
                self.close_second()
                self._second = second
            self._latencies.append(int(digits))
            self.latency_samples.append((when[1], int(digits)))

    def close_second(self) -> None:
        if self._latencies:
            median = statistics.median_high(self._latencies)
            self.seen["pacat_latency_ms_per_s"].append((self._second, round(median / 1000, 1)))
        self._latencies = []

    def follow(self, stream: Any, tool: str) -> threading.Thread:
        def read() -> None:
            pending = ""
            for raw in iter(lambda: stream.read1(4096), b""):
                pending += raw.decode("utf-8", "replace").replace("\r", "\n")
                *lines, pending = pending.split("\n")
                for line in lines:
                    self.hear(line, tool)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


def pipe_glitch_counts(rooms: Any) -> dict[str, int]:
    """How many of each :class:`PipeGlitches` kind the rooms (their reports) saw."""
    counts = {key: 0 for key in PipeGlitches.WORDS.values()}
    for room in rooms:
        for key in counts:
            counts[key] += len(room.get(key, ()))
    return counts


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """The room process: ``spec`` names the sinks, the rate and the .npy files."""
    rate = int(spec["rate"])
    audio = np.load(spec["audio"])
    ir = np.load(spec["ir"])
    clip = np.load(spec["clip"]) if spec.get("clip") else None
    room = Room(spec, audio, ir, clip)
    pipe = pipe_setting(spec)
    if pipe["rt"]:  # before the pipes start: parec, pacat and the readers' threads inherit it
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    rec = subprocess.Popen(
        parec_command(spec["speaker_monitor"], rate, latency_ms=pipe["parec_ms"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    glitches = PipeGlitches(room)
    readers = [glitches.follow(rec.stderr, "parec")]
    if pipe.get("abs_ms"):
        # (imports kiosk.audio.libpulse: on the room's PYTHONPATH)
        from pipe46_writer import AbsWriter, RoomPipe

        play: Any = RoomPipe(AbsWriter(spec["mic_sink"], rate, 2, lead_ms=pipe["abs_ms"]), room)
    else:
        play = subprocess.Popen(
            pacat_command(spec["mic_sink"], rate, latency_ms=pipe["pacat_ms"]), stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        readers.append(glitches.follow(play.stderr, "pacat"))
    assert rec.stdout is not None and play.stdin is not None
    fd, out = rec.stdout.fileno(), play.stdin
    started = time.monotonic()
    print(json.dumps({"ready": started}), flush=True)
    go = True
    try:
        while go:
            data = _read_exact(fd, room.block * 2)
            t = time.monotonic()
            due = started + (room.k + room.block) / rate
            if t - due > BLOCK_MS / 1000 + 0.05:
                room.late_blocks += 1
            out.write(room.step(np.frombuffer(data, "<i2")).tobytes())
            out.flush()
            while select.select([sys.stdin], [], [], 0)[0]:
                line = sys.stdin.readline()
                if not line or not room.command(line):
                    go = False
                    break
    finally:
        rec.terminate()
        play.terminate()
        for p in (rec, play):
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
        for reader in readers:
            reader.join(timeout=1)
        glitches.close_second()
    out = {**room.report(started), **glitches.seen, **pipe}
    if pipe.get("abs_ms"):  # the writer's glitches and latencies in pacat's keys (rule_rows.glitched reads them)
        out.update(play.report(glitches))
    out["pacat_latency_at_onset_ms"] = pipe_latency_near(glitches.latency_samples, out["onset_s"])
    out["pacat_latency_median_ms"] = pipe_latency_near(glitches.latency_samples, 0.0, math.inf)
    return out


def silent_from(
    speaker: np.ndarray, block_mono: np.ndarray, block: int, t_stop: float, from_k: int,
    quiet_abs: int = 4, run_s: float = 0.03, rate: int = 48000,
) -> int | None:
    """Room time at which the speaker fell silent for the pause or stop the kiosk made at
    ``time.monotonic`` ``t_stop``: the start of the first run of at least ``run_s`` of
    (near-)zero samples (a paused or flushed null sink renders zeros) that is still going on
    two blocks before the block the room handled right after ``t_stop``, or starts later;
    not before ``from_k`` (the visitor's onset). None: never silent in the recording."""
    i = int(np.searchsorted(block_mono, t_stop))
    k0 = max(0, (i - 2) * block)
    quiet = np.abs(speaker[k0:].astype(np.int32)) <= quiet_abs
    need = max(1, round(run_s * rate))
    if quiet.size < need:
        return None
    # run lengths: start of each quiet run at or after k0
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    for a, b in zip(starts, ends):
        if b - a >= need:
            start = k0 + int(a)
            if a == 0:  # quiet already at k0: it began earlier
                before = np.nonzero(np.abs(speaker[:k0].astype(np.int32)) > quiet_abs)[0]
                start = int(before[-1]) + 1 if before.size else 0
            return max(start, from_k)
    return None


def click_delay_s(recorded: np.ndarray, rate: int, played_at: int) -> tuple[float, float]:
    """Where a click played at sample ``played_at`` of a stream came back in ``recorded``
    (the peak), in seconds after it, and its level in dB relative to the click (1.0)."""
    peak = int(np.argmax(np.abs(recorded)))
    return (peak - played_at) / rate, 20 * np.log10(np.abs(recorded[peak]) / 32767 + 1e-12)


if __name__ == "__main__":
    result = run(json.loads(Path(sys.argv[1]).read_text()))
    print(json.dumps(result), flush=True)

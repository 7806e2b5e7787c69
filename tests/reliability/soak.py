"""The soak: a simulated stretch of lobby life (speech, silence, noise) through the pipeline.

Shared by ``tests/reliability/test_soak.py`` (minutes, in CI) and ``bench/bench_soak.py``
(an hour and more). Measures what slowly kills a daemon that runs for months: resident
memory growth, leaked file descriptors and asyncio tasks, and how much audio went upstream
compared with how much speech was actually spoken (silence never sent is never billed).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiosk.core.events import Usage
from kiosk.cost import CostLedgerSubscriber, open_ledger
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .rig import TIMEOUT_FACTOR, PipelineRig, lobby_noise, max_in_any_minute, rig_config, speech

SPEECH_FIXTURES = (
    "en_restroom_espeak_16k.wav",
    "ja_parking_16k.wav",
    "ja_restroom_16k.wav",
    "ja_stop_16k.wav",
)


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class SoakResult:
    simulated_s: float = 0.0
    wall_s: float = 0.0
    turns: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    spoken: int = 0  # utterances put in front of the microphone
    speech_s: float = 0.0  # voiced seconds put in front of the microphone
    upstream_s: float = 0.0  # per the turn summaries
    server_audio_s: float = 0.0  # per what the fake server received
    rss_growth_bytes: int = 0
    fd_growth: int = 0
    task_growth: int = 0
    connections: int = 0
    max_connections_per_minute: int = 0
    tokens: Usage = field(default_factory=Usage)
    ledger_tokens_today: int = 0
    validation_errors: list[str] = field(default_factory=list)
    preroll_s: float = 0.0
    retained_summaries: int = 0  # TurnSummary objects the pipeline keeps (grows per turn?)

    @property
    def upstream_ratio(self) -> float:
        return self.upstream_s / self.speech_s if self.speech_s else 0.0

    @property
    def upstream_allowed_s(self) -> float:
        """The goal: 1.15 x the speech, plus the pre-roll each turn sends so the first
        syllable is not lost (the same bound the end-to-end simulate test uses)."""
        return 1.15 * self.speech_s + self.preroll_s * self.turns


def voiced_seconds(samples: np.ndarray, rate_hz: int = 16000) -> float:
    """Seconds from the first to the last sample above -40 dBFS: the spoken part of a clip
    (the fixtures carry some silence around the words, which must not count as speech)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 328)
    return float(loud[-1] - loud[0]) / rate_hz if loud.size else 0.0


async def soak(
    simulated_s: float,
    *,
    seed: int = 3,
    warmup_turns: int = 3,
    on_measure: Callable[[str], None] | None = None,
) -> SoakResult:
    """Run the pipeline for ``simulated_s`` seconds of mixed lobby audio; measure leaks.

    Baselines (RSS, fds, tasks) are taken after ``warmup_turns`` turns, so one-time costs
    (imports, first connection, caches) do not count as growth. ``on_measure("baseline")``
    and ``on_measure("end")`` run at those two moments (e.g. tracemalloc snapshots).
    """
    rng = random.Random(seed)
    clips = {name: speech(name) for name in SPEECH_FIXTURES}
    voiced = {name: voiced_seconds(c) for name, c in clips.items()}
    noise = lobby_noise(30.0)
    result = SoakResult()
    script = FakeScript(
        realtime_pacing=False, call_search=False, call_grounding=False, answer_audio_s=1.5
    )
    started_wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-soak-") as state_dir:
        async with FakeRealtimeServer("ga", script=script) as server:
            rig = PipelineRig(rig_config(server.url), server, seed=seed)
            ledger = open_ledger(Path(state_dir), rig.cfg.cost)
            # One fixed wall-clock instant: a run that crosses midnight must not split the
            # ledger's day and fail the comparison below.
            wallclock = time.time()
            rig.bus.subscribe(CostLedgerSubscriber(ledger, lambda: wallclock))
            start = rig.clock()
            baseline: tuple[int, int, int] | None = None
            spoken = 0
            appended = 0

            def drain_server_records() -> None:
                # The fake server records every frame (audio included): count what the
                # kiosk sent, then drop the records so harness memory is not measured.
                nonlocal appended
                for conn in server.connections:
                    for event in conn.received:
                        if event.get("type") == "input_audio_buffer.append":
                            appended += len(str(event.get("audio", ""))) * 3 // 4
                    conn.received.clear()
                    conn.sent.clear()
                rig.events.clear()

            try:
                while rig.clock() - start < simulated_s:
                    if baseline is None and spoken >= warmup_turns:
                        # Measure from a quiet moment: idle, websocket closed, records dropped.
                        await rig.pass_time(rig.cfg.turns.idle_close_s + 1.0)
                        await asyncio.sleep(0.2)
                        drain_server_records()
                        gc.collect()
                        baseline = (rss_bytes(), open_fds(), len(asyncio.all_tasks()))
                        if on_measure is not None:
                            on_measure("baseline")
                    choice = rng.random()
                    if choice < 0.45:
                        name = rng.choice(SPEECH_FIXTURES)
                        summary = await rig.turn(clips[name])
                        spoken += 1
                        result.speech_s += voiced[name]
                        if summary is not None:
                            result.outcomes[summary.outcome] = (
                                result.outcomes.get(summary.outcome, 0) + 1
                            )
                        drain_server_records()
                    elif choice < 0.8:
                        await rig.silence(rng.uniform(2.0, 40.0))
                    else:
                        n = int(rng.uniform(2.0, 20.0) * 16000)
                        offset = rng.randrange(0, len(noise) - n)
                        await rig.feed(noise[offset : offset + n])
                await rig.settle()
                await rig.pass_time(rig.cfg.turns.idle_close_s + 1.0)  # let the idle close run
                await asyncio.sleep(0.2)
                drain_server_records()
                gc.collect()
                if on_measure is not None:
                    on_measure("end")
                if baseline is not None:
                    result.rss_growth_bytes = rss_bytes() - baseline[0]
                    result.fd_growth = open_fds() - baseline[1]
                    result.task_growth = len(asyncio.all_tasks()) - baseline[2]
            finally:
                await rig.aclose()
                ledger_today = ledger.totals("day", wallclock)
                ledger.close()
            summaries = rig.summaries()
            result.simulated_s = rig.clock() - start
            result.turns = len(summaries)
            result.upstream_s = sum(s.upstream_audio_s for s in summaries)
            for s in summaries:
                result.tokens = result.tokens + s.usage
            result.ledger_tokens_today = ledger_today.input_total + ledger_today.output_total
            result.spoken = spoken
            result.preroll_s = rig.cfg.vad.preroll_ms / 1000
            result.retained_summaries = len(getattr(rig.pipeline, "summaries", ()))
            result.server_audio_s = appended / 48000
            result.connections = len(rig.connect_times)
            result.max_connections_per_minute = max_in_any_minute(rig.connect_times)
            result.validation_errors = list(server.validation_errors)
    result.wall_s = time.perf_counter() - started_wall
    return result


def soak_in_fresh_process(
    simulated_s: float, *, seed: int = 3, timeout_s: float = 300.0
) -> SoakResult:
    """:func:`soak` in a new interpreter, so that its memory and threads are the soak's own.

    In the test suite's process the soak ran after ~1800 other tests: ~2 GB resident and
    ~37 threads they left (embedding models that unload themselves after 5 idle minutes,
    say), any of which may wake inside the soak's window and move the resident size.
    """
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.soak", str(simulated_s), "--seed", str(seed)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout_s * TIMEOUT_FACTOR,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"soak process failed ({done.returncode}): {done.stderr[-2000:]}")
    fields = json.loads(done.stdout.strip().splitlines()[-1])
    fields["tokens"] = Usage(**fields["tokens"])
    return SoakResult(**fields)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one soak; prints its result as JSON")
    parser.add_argument("seconds", type=float, help="simulated seconds of lobby life")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args.seconds, seed=args.seed))
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()

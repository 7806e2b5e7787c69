"""``kiosk simulate``: the whole pipeline with WAV files as microphone and speaker.

The microphone is the concatenated ``--input`` files (any rate, mono or stereo), read at
16 kHz in frames of ``audio.frame_ms``. Between inputs and after the last one it keeps
feeding silence until the kiosk is idle again, like a person waiting for the answer.
The speaker pulls one frame of answer audio per microphone frame and writes what it
plays to ``--output`` (24 kHz mono).

Time: by default frames are paced like a real microphone. With ``fast`` the clock skips
ahead while nothing is pending upstream (IDLE/LISTENING), so silence costs no wall time;
while an answer is awaited or spoken it runs in real time, because the server paces its
audio in real time and barge-in timing must stay honest.

With no API key configured (or ``realtime.provider = "local"``), the on-device local engine
answers (:mod:`kiosk.local`: it hears the question, searches the knowledge base and reads
the best passage out); a small demo knowledge base stands in for a missing index, and the
report says both. The fake Realtime server (:mod:`kiosk.testing`) is for tests only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.app import VAD_RATE_HZ, KioskPipeline, earcon_subscriber
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.resample import Resampler
from kiosk.audio.vad import voice_detector
from kiosk.audio.wav import WavReader, WavSink, open_wavs
from kiosk.config import Config, Secret
from kiosk.core.bus import EventStream
from kiosk.core.events import KioskEvent, State, StateChanged, TurnEnded, Usage
from kiosk.errors import ConfigError
from kiosk.net.endpoints import realtime_endpoint
from kiosk.prices import estimated_usd, resolve_prices

log = logging.getLogger(__name__)

PLAYBACK_RATE_HZ = 24000
MAX_WAIT_FOR_IDLE_S = 60.0
# ``echo_db``: the speaker's sound reaches the microphone this much later (device latency).
ECHO_LATENCY_MS = 60


class SkippingClock:
    """Monotonic time = the loop's clock + time skipped in fast mode."""

    def __init__(self, base: Callable[[], float]) -> None:
        self._base = base
        self.skipped_s = 0.0

    def __call__(self) -> float:
        return self._base() + self.skipped_s


def check_key_for_endpoint(cfg: Config) -> None:
    """An endpoint without its key is an error that names the missing variable (the endpoint
    was asked for; never silently answer with something else)."""
    rt = cfg.realtime
    if rt.provider in ("voicerag", "local") or cfg.api_key or not rt.endpoint:
        return
    var = "OPENAI_API_KEY" if rt.provider == "openai" else "AZURE_OPENAI_API_KEY"
    raise ConfigError(
        var,
        f"not set, but realtime.endpoint (--endpoint) is: provider {rt.provider!r} needs it "
        "(any value for a loopback test server)",
    )


def demo_corpus_dir() -> Path:
    return Path(str(resources.files("kiosk") / "data" / "demo_kb"))


def _open_tools(cfg: Config, tmpdir: Path, use_demo: bool) -> tuple[Any, Any]:
    """(ToolRunner | None, citations_from_middle_tier) for this run."""
    try:
        from kiosk.rag import ToolRunner, citations_from_middle_tier, open_knowledge_base
        from kiosk.rag.ingest import ingest_paths
        from kiosk.rag.sqlite_index import SqliteIndex
    except ImportError as exc:  # pragma: no cover - rag is part of the package
        log.warning("knowledge tools unavailable: %s", exc)
        return None, None
    if cfg.rag.backend == "none":
        return None, citations_from_middle_tier
    index_missing = cfg.rag.backend == "local" and not Path(cfg.rag.index_path).exists()
    if use_demo and index_missing and demo_corpus_dir().is_dir():
        demo = SqliteIndex(tmpdir / "demo-index.sqlite")
        ingest_paths(demo, [demo_corpus_dir()])
        knowledge: Any = demo
        print(
            f"simulate: no index at {cfg.rag.index_path}; using the bundled demo knowledge base",
            file=sys.stderr,
        )
    else:
        knowledge = open_knowledge_base(cfg)
    if knowledge is None:
        return None, citations_from_middle_tier
    runner = ToolRunner(knowledge, top_k=cfg.rag.top_k, max_result_chars=cfg.rag.max_result_chars)
    return runner, citations_from_middle_tier


async def run_simulation(
    cfg: Config,
    inputs: list[Path],
    output: Path,
    *,
    fast: bool = False,
    fake_server: Any | None = None,
    echo_db: float | None = None,
    local_fallback: bool = False,
    budget_left: Any = None,
) -> dict[str, Any]:
    """Run the pipeline over ``inputs``; returns the report (see ``kiosk simulate --json``).

    ``fake_server``: an already running FakeRealtimeServer to use (tests); when None and no
    key is configured (or the provider is "local"), the local engine answers.
    ``budget_left``: the daemon's cost-cap check (``CostLedger.budget_left`` bound to a clock).
    ``local_fallback``: with ``fake_server``, also run the local engine as
    ``realtime.fallback`` (without a fake server it runs whenever the setting says "local").
    ``echo_db``: simulate a room: what the speaker plays reaches the microphone
    ``ECHO_LATENCY_MS`` later (device latency), attenuated by this many dB (e.g. -20), as it
    would without echo cancellation.
    """
    # Headers checked now: bad files fail before any connection. Samples are streamed.
    mic = open_wavs(inputs)
    notes: list[str] = []
    if fake_server is None:
        check_key_for_endpoint(cfg)
    async with contextlib.AsyncExitStack() as stack:
        for reader in mic:
            stack.callback(reader.close)
        if fake_server is not None:
            cfg = _point_at(cfg, fake_server)
        elif cfg.uses_local_engine and not (cfg.realtime.provider == "local" and cfg.realtime.endpoint):
            # (a "local" config with an endpoint is aimed at an engine that already runs)
            from kiosk.local import NOTICE, serve_local_engine

            if cfg.realtime.provider != "local":
                notes.append(NOTICE)  # the report prints it (once)
            cfg = await stack.enter_async_context(serve_local_engine(cfg))
        fallback = None
        if cfg.realtime.provider != "local" and cfg.realtime.fallback == "local" and (
            fake_server is None or local_fallback
        ):
            fallback = await _start_fallback(stack, cfg, notes)
        with tempfile.TemporaryDirectory(prefix="kiosk-sim-") as tmp:
            tools, middle_tier_citations = _open_tools(cfg, Path(tmp), use_demo=True)
            report = await _simulate(
                cfg, mic, output, fast, tools, middle_tier_citations, echo_db, fallback, budget_left
            )
    report["engine"] = "local" if cfg.realtime.provider == "local" else cfg.realtime.provider
    report["notes"] = notes
    report["inputs"] = [str(p) for p in inputs]
    report["output"] = str(output)
    return report


def _point_at(cfg: Config, server: Any) -> Config:
    """Aim the config at a local fake server (loopback ws:// is allowed)."""
    url: str = server.url
    rt = cfg.realtime
    if rt.provider == "voicerag":
        rt = dataclasses.replace(rt, endpoint=url.rstrip("/") + "/realtime")
    else:
        rt = dataclasses.replace(rt, endpoint=url.replace("ws://", "http://", 1))
    creds = cfg.credentials
    if not cfg.api_key:
        fake = Secret("sk-local-fake-server")
        creds = dataclasses.replace(creds, openai_api_key=fake, azure_openai_api_key=fake)
    return dataclasses.replace(cfg, realtime=rt, credentials=creds)


async def _start_fallback(stack: contextlib.AsyncExitStack, cfg: Config, notes: list[str]) -> Any:
    """The local engine as ``realtime.fallback``; None (with a note) when it cannot run."""
    from kiosk.errors import KioskError
    from kiosk.local import serve_local_engine
    from kiosk.net.engine import Engine

    try:
        local_cfg = await stack.enter_async_context(serve_local_engine(cfg, on_demand=True))
    except KioskError as exc:
        notes.append(f'realtime.fallback = "local" unavailable: {exc}')
        return None
    return Engine("local", realtime_endpoint(local_cfg))


def _engine(cfg: Config) -> Any:
    from kiosk.net.engine import Engine, cloud_engine

    endpoint = realtime_endpoint(cfg)
    return Engine("local", endpoint) if cfg.realtime.provider == "local" else cloud_engine(endpoint)


async def _simulate(
    cfg: Config,
    mic: list[WavReader],
    output: Path,
    fast: bool,
    tools: Any,
    middle_tier_citations: Any,
    echo_db: float | None = None,
    fallback: Any = None,
    budget_left: Any = None,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    clock = SkippingClock(loop.time)
    start = clock()
    bus = EventStream(on_error=lambda sub, exc: log.error("subscriber %r failed: %s", sub, exc))
    states: list[list[Any]] = []
    turns: list[dict[str, Any]] = []
    usage_total = Usage()
    prices = resolve_prices(cfg.priced_model, cfg.cost)

    def record(event: KioskEvent) -> None:
        nonlocal usage_total
        if isinstance(event, StateChanged):
            states.append([round((event.t_s - start) * 1000), event.new.value])
        elif isinstance(event, TurnEnded):
            s = event.summary
            usage_total = usage_total + s.usage
            turns.append(
                {
                    "turn_id": s.turn_id,
                    "trigger": s.trigger,
                    "outcome": s.outcome,
                    "started_ms": round((s.started_t_s - start) * 1000),
                    "user_speech_s": s.user_speech_s,
                    "upstream_audio_s": s.upstream_audio_s,
                    "response_latency_ms": s.response_latency_ms,
                    "noise_floor_dbfs": s.noise_floor_dbfs,
                    "transcript": s.transcript,
                    "answer_transcript": s.answer_transcript,
                    "citations": [dataclasses.asdict(c) for c in s.citations],
                    "tokens": dataclasses.asdict(s.usage),
                    "engine": s.engine,
                    "usd": round(estimated_usd(s.usage, prices), 6),
                }
            )

    bus.subscribe(record)
    playback = PlaybackBuffer(PLAYBACK_RATE_HZ)
    if cfg.earcons.enabled:
        bus.subscribe(earcon_subscriber(playback, cfg.earcons.volume, PLAYBACK_RATE_HZ))
    frame_ms = cfg.audio.frame_ms
    is_speech = voice_detector(cfg.vad, VAD_RATE_HZ, frame_ms)
    pipeline = KioskPipeline(
        cfg,
        _engine(cfg),
        bus,
        playback,
        is_speech,
        clock,
        tools=tools,
        citations_from_middle_tier=middle_tier_citations,
        fallback=fallback,
        budget_left=budget_left,
    )
    if cfg.wake.mode == "wakeword":
        from kiosk.audio.wakeword import WakeWordDetector

        w = cfg.wake
        pipeline.wake_detector = WakeWordDetector(w.wakeword_model, w.wakeword_threshold, w.refractory_s)
    echo_path = Resampler(PLAYBACK_RATE_HZ, VAD_RATE_HZ) if echo_db is not None else None
    echo_gain = 10 ** ((echo_db or 0.0) / 20)
    latency_samples = VAD_RATE_HZ * ECHO_LATENCY_MS // 1000 if echo_db is not None else 0
    echo = np.zeros(latency_samples, dtype=np.int16)
    states.append([0, pipeline.state.value])
    samples_per_frame = VAD_RATE_HZ * frame_ms // 1000
    speaker_samples = PLAYBACK_RATE_HZ * frame_ms // 1000
    silent_block = bytes(speaker_samples * 2)
    frames_fed = 0
    if pipeline.echo_tap is not None:
        # The simulated device reports its latency, as the daemon's sink does (unplayed_ms):
        # a block read at frame n is heard ECHO_LATENCY_MS later (with or without an echo
        # path: at 0 the resampled reference lags the frame it is asked for, now and then).
        latency_s = ECHO_LATENCY_MS / 1000
        pipeline.echo_tap.reference.clock = lambda: frames_fed * frame_s + latency_s
    silence = bytes(samples_per_frame * 2)
    frame_s = frame_ms / 1000
    next_real = loop.time()
    played_s = 0.0

    async def step(frame: bytes) -> None:
        nonlocal next_real, played_s, echo, frames_fed
        skip = fast and pipeline.state in (State.IDLE, State.LISTENING) and playback.is_idle
        if skip:
            clock.skipped_s += frame_s
            next_real = loop.time()
            await asyncio.sleep(0)
        else:
            next_real += frame_s
            delay = next_real - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
        if not playback.is_idle:
            if playback.playing_item is not None and not playback.held:
                played_s += frame_s  # answer audio (earcons play too, but are not answers)
            block = playback.read(speaker_samples)
            sink.write(block)
        else:
            block = silent_block  # the room hears the speaker's silence too
        if echo_path is not None:
            # One continuous stream, a fixed device latency behind (more than soxr's bursts).
            heard = np.frombuffer(echo_path.process(block), dtype="<i2")
            echo = np.concatenate([echo, heard])
        if echo.size:
            mic_frame = np.frombuffer(frame, dtype="<i2").astype(np.int32)
            take = echo[: mic_frame.size].astype(np.float64) * echo_gain
            mic_frame[: take.size] += take.astype(np.int32)
            echo = echo[mic_frame.size :]
            frame = np.clip(mic_frame, -32768, 32767).astype("<i2").tobytes()
        # The WAV is the audio clock: the echo canceller's reference (the block read now is
        # heard from this frame on) and this frame are stamped with its sample time.
        mic_s = frames_fed * frame_s
        frames_fed += 1
        pipeline.on_mic_frame(frame, mic_s)

    with WavSink(output, PLAYBACK_RATE_HZ) as sink:
        try:
            for reader in mic:
                for frame in reader.frames_of(VAD_RATE_HZ, samples_per_frame):
                    await step(frame)
                # Wait (feeding silence) for the kiosk to finish this turn, like a person would.
                waited = 0.0
                while (
                    pipeline.busy or pipeline.endpointer.in_speech
                ) and waited < MAX_WAIT_FOR_IDLE_S:
                    await step(silence)
                    waited += frame_s
            for _ in range(int(0.3 / frame_s)):
                await step(silence)
        finally:
            await pipeline.aclose()
    upstream = sum(t["upstream_audio_s"] for t in turns)
    return {
        "turns": turns,
        "states": states,
        "connections_opened": pipeline.connections_opened,
        "upstream_audio_s": round(upstream, 3),
        "answer_audio_s": round(played_s, 3),
        "tokens": dataclasses.asdict(usage_total),
        "usd": round(estimated_usd(usage_total, prices), 6),
        "priced_as": cfg.priced_model,
        "endpoint": pipeline.endpoint.redacted,
        "dialect": pipeline.endpoint.dialect,
    }

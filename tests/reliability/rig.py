"""A kiosk pipeline on accelerated time against the fake Realtime server, for fault tests.

:class:`PipelineRig` runs the real :class:`~kiosk.app.KioskPipeline` (real endpointer with
webrtcvad, real websockets to a :class:`~kiosk.testing.fake_realtime.FakeRealtimeServer` on
127.0.0.1) with a clock that skips ahead one frame per microphone frame, so an hour of
lobby audio takes seconds. While an answer is awaited (THINKING) the clock follows real time
instead, so the answer timeout stays honest against a server that answers in milliseconds.

Every connection attempt is logged with the simulated time it was made (through the
pipeline's ``connect`` seam), so a test can check the per-minute budget in simulated time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.app import VAD_RATE_HZ, KioskPipeline, earcon_subscriber
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.vad import webrtc_voice_detector
from kiosk.audio.wav import read_wav_mono
from kiosk.config import Config, load_config
from kiosk.core.bus import EventStream
from kiosk.core.events import KioskEvent, State, TurnEnded, TurnSummary
from kiosk.net.connection import WebsocketLink
from kiosk.net.endpoints import realtime_endpoint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Every real-time wait is scaled by this (a slow CI box sets KIOSK_TEST_TIMEOUT_FACTOR=3).
TIMEOUT_FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
SECRET_KEY = "sk-rel-SECRET-0123456789abcdef"  # must never show up in logs, errors or reports
PLAYBACK_RATE_HZ = 24_000
ACTIVE = (State.LISTENING, State.THINKING, State.SPEAKING)


def rig_config(server_url: str, toml: str = "", *, realtime: str = "") -> Config:
    """Defaults plus: no GPIO, no knowledge base, aimed at the fake server, a known key.

    ``realtime``: extra lines for the ``[realtime]`` table; ``toml``: further tables.
    """
    base = f"""
[realtime]
endpoint = "{server_url.replace("ws://", "http://", 1)}"
{realtime}
[gpio]
enabled = false
[rag]
backend = "none"
"""
    return load_config(
        base + toml, {"OPENAI_API_KEY": SECRET_KEY, "AZURE_OPENAI_API_KEY": SECRET_KEY}
    )


def speech(name: str = "en_restroom_espeak_16k.wav") -> np.ndarray:
    return read_wav_mono(FIXTURES / name, VAD_RATE_HZ)


def lobby_noise(seconds: float) -> np.ndarray:
    noise = read_wav_mono(FIXTURES / "lobby_noise_16k.wav", VAD_RATE_HZ)
    n = int(seconds * VAD_RATE_HZ)
    return np.tile(noise, int(np.ceil(n / len(noise))))[:n]


class SimClock:
    """Loop time plus skipped seconds: monotonic, and fast-forwarded by the rig."""

    def __init__(self, base: Callable[[], float]) -> None:
        self._base = base
        self.skipped_s = 0.0

    def __call__(self) -> float:
        return self._base() + self.skipped_s


@dataclasses.dataclass
class RigStats:
    frames: int = 0
    speech_s_fed: float = 0.0  # seconds of speech the rig put in front of the microphone


class PipelineRig:
    """One pipeline + speaker drain + event log, driven frame by frame."""

    def __init__(self, cfg: Config, server: object, *, seed: int = 1) -> None:
        loop = asyncio.get_running_loop()
        self.cfg = cfg
        self.server = server
        self.clock = SimClock(loop.time)
        self.events: list[KioskEvent] = []  # the soak clears it between turns
        self.ended: list[TurnSummary] = []
        self.connect_times: list[float] = []  # simulated time of every connection attempt
        self.stats = RigStats()
        self.bus = EventStream(on_error=self._subscriber_failed)
        self.bus.subscribe(self._record)
        self.playback = PlaybackBuffer(PLAYBACK_RATE_HZ)
        self.bus.subscribe(earcon_subscriber(self.playback, cfg.earcons.volume, PLAYBACK_RATE_HZ))
        self.subscriber_errors: list[BaseException] = []
        frame_ms = cfg.audio.frame_ms
        self.frame_s = frame_ms / 1000
        self.frame_samples = VAD_RATE_HZ * frame_ms // 1000
        self.speaker_samples = PLAYBACK_RATE_HZ * frame_ms // 1000
        self.pipeline = KioskPipeline(
            cfg,
            realtime_endpoint(cfg),
            self.bus,
            self.playback,
            webrtc_voice_detector(cfg.vad.aggressiveness, VAD_RATE_HZ, frame_ms),
            self.clock,
            rng=random.Random(seed),
            connect=self._connect,
        )

    def _record(self, event: KioskEvent) -> None:
        self.events.append(event)
        if isinstance(event, TurnEnded):
            self.ended.append(event.summary)

    def _subscriber_failed(self, subscriber: Any, exc: BaseException) -> None:
        self.subscriber_errors.append(exc)

    async def _connect(self, *args: Any, **kwargs: Any) -> WebsocketLink:
        self.connect_times.append(self.clock())
        return await WebsocketLink.open(*args, **kwargs)

    # --- driving -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.pipeline.state

    async def frame(self, pcm: bytes) -> None:
        """One microphone frame; the speaker plays one frame of whatever is queued."""
        self.stats.frames += 1
        if self.pipeline.state is State.THINKING:
            await asyncio.sleep(0.002)  # real time: the server's answer is on its way
        else:
            self.clock.skipped_s += self.frame_s
            await asyncio.sleep(0)
        if not self.playback.is_idle:
            self.playback.read(self.speaker_samples)
        self.pipeline.on_mic_frame(pcm)

    async def feed(self, samples: np.ndarray) -> None:
        data = samples.astype("<i2").tobytes()
        step = self.frame_samples * 2
        for i in range(0, len(data) - step + 1, step):
            await self.frame(data[i : i + step])

    async def silence(self, seconds: float) -> None:
        frame = bytes(self.frame_samples * 2)
        for _ in range(round(seconds / self.frame_s)):
            await self.frame(frame)

    async def pass_time(self, seconds: float) -> None:
        """Nothing happens for ``seconds`` (simulated): the clock jumps, one silent frame."""
        self.clock.skipped_s += seconds
        await self.silence(self.frame_s)

    async def settle(self, max_sim_s: float = 60.0, timeout_s: float = 20.0) -> None:
        """Feed silence until the pipeline is idle (or ERROR) with nothing playing."""
        frame = bytes(self.frame_samples * 2)
        async with asyncio.timeout(timeout_s * TIMEOUT_FACTOR):
            start = self.clock()
            while self.pipeline.busy or self.pipeline.endpointer.in_speech:
                if self.clock() - start > max_sim_s:
                    raise AssertionError(
                        f"not idle after {max_sim_s} simulated s: {self.pipeline.state}"
                    )
                await self.frame(frame)

    async def recover(self) -> None:
        """Wait out an ERROR hold (silence) until the kiosk is IDLE again."""
        await self.settle()
        frame = bytes(self.frame_samples * 2)
        async with asyncio.timeout(20.0 * TIMEOUT_FACTOR):
            while self.pipeline.state is State.ERROR:
                await self.frame(frame)

    async def turn(self, utterance: np.ndarray | None = None) -> TurnSummary | None:
        """Say ``utterance`` (default: a short question) and wait for the turn to end.

        Returns the summary of the turn that started, or None if no turn started.
        """
        samples = speech() if utterance is None else utterance
        before = len(self.summaries())
        self.stats.speech_s_fed += len(samples) / VAD_RATE_HZ
        await self.feed(samples)
        await self.settle()
        ended = self.summaries()[before:]
        return ended[-1] if ended else None

    def summaries(self) -> list[TurnSummary]:
        return list(self.ended)

    async def aclose(self) -> None:
        await self.pipeline.aclose()


def max_in_any_minute(times: list[float]) -> int:
    """The largest number of ``times`` inside any 60 s window."""
    ordered = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(ordered):
        while ordered[j] <= t - 60.0:
            j += 1
        best = max(best, i - j + 1)
    return best

"""Runs one lobby mix through the real pipeline and logs what happened, in microphone time.

The same objects as ``kiosk simulate`` and the daemon: :class:`~kiosk.app.KioskPipeline`
with the daemon's voice detector (webrtcvad, confirmed by Silero unless ``[vad] neural``
is "off"), the playback buffer, earcons, and the fake Realtime server over a real websocket. The microphone is the mix at its device format (44.1/48 kHz stereo), delivered
in ``frame_ms`` blocks through the daemon's capture path: channel average, the streaming
:class:`~kiosk.audio.resample.Resampler` to 16 kHz, the :class:`FrameSlicer`.

The speaker is pulled one frame per microphone frame (as in simulate); what it plays goes
through a synthetic room (``lobby_sound.room_ir``) back into the microphone at the mix's
echo level, at the device rate, from the next block on. ``aec=True`` runs the kiosk's real
in-process echo canceller (``audio.echo_cancel = "speex"``) on that microphone, fed with
what the speaker took from the playback buffer; both are stamped on the microphone's own
timeline (a block the speaker takes at frame n is heard from frame n+1 on), so the run does
not depend on the machine's timer jitter. A fresh pipeline per mix: the canceller starts
unconverged (the first answer after start-up), unless ``warm_s`` > 0 plays that much of the
answer through the same room first (a kiosk that has spoken in this room before): into the
canceller alone (mode "speex-warm": an adapted filter, an endpointer that has heard nothing), or
with ``warm_through_pipeline`` (mode "speex-later") through the pipeline itself, playback buffer,
canceller and endpointer, in the mix's room noise: what the daemon's one long-lived
``KioskPipeline`` holds when a later answer starts (the filter, the endpointer's trust in it,
the echo return and the room's level; ``Endpointer.reset`` between turns keeps them).

Time: every event is stamped with the 16 kHz frame index it happened at (frame ``n``
covers mic time ``[n, n+1) * frame_s`` and is delivered at its end) and the pipeline clock.
``paced=False`` skips the clock ahead while nothing is pending upstream (IDLE/LISTENING,
speaker idle), like ``simulate --fast``; while an answer is awaited or played the loop runs
in real time, because the fake server paces its audio in real time. Mixes without answer
audio of interest (questions, noise) are fully deterministic in mic time when not paced: the
microphone waits while the (short, unpaced) answer is awaited, as if the server answered in
zero time. (The capture resampler dithers its int16 output, so two runs can still differ by
a webrtcvad decision now and then.)
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lobby_corpus import Mix, read_clip, render
from lobby_sound import db_to_amp, noise_bed, room_ir, to_stereo

from kiosk.app import VAD_RATE_HZ, KioskPipeline, earcon_subscriber
from kiosk.audio import resample as _resample
from kiosk.audio.frames import FrameSlicer
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.resample import Resampler
from kiosk.audio.vad import voice_detector
from kiosk.audio.wav import read_wav_mono
from kiosk.config import Config
from kiosk.core.bus import EventStream
from kiosk.core.events import State, StateChanged, TurnEnded, TurnStarted
from kiosk.net.endpoints import realtime_endpoint
from kiosk.simulate import SkippingClock, _point_at

PLAYBACK_RATE_HZ = 24000
# The daemon's microphone resampler setting (kiosk.audio.resample.CAPTURE_QUALITY; older kiosk
# code: soxr's default "HQ"), so the bench hears what the daemon's capture path hands over.
CAPTURE_QUALITY = getattr(_resample, "CAPTURE_QUALITY", "HQ")
# The speaker's device latency: a block taken at mic frame n is heard this long after the
# microphone block that delivered frame n (it must exceed the capture resampler's bursts:
# soxr hands over ~35 ms at a time, and an echo cannot land in delivered audio). In ms, so
# that 10 ms frames meet the same room as 20 ms ones.
ECHO_LATENCY_MS = 80
# What the kiosk is told of that latency (sink.unplayed_ms in the daemon): 20 ms short, so the
# canceller's filter has to find the rest itself, as on a real device.
KNOWN_LATENCY_MS = 60
MAX_WAIT_S = 25.0  # after the mix, keep feeding its noise until the kiosk is idle, at most this
ANSWER_S_FOR_QUESTIONS = 0.2  # question mixes: a short answer so the kiosk is idle again soon
INSTANT_ANSWER_WAIT_S = 5.0
LATER_MODE = "speex-later"  # warmed up through the pipeline (warm_through_pipeline)
# WebRTC's AEC3 (audio.echo_cancel = "webrtc") in the same two ways: a first answer and a later one.
WEBRTC_MODE, WEBRTC_LATER_MODE = "webrtc", "webrtc-later"
LATER_MODES = (LATER_MODE, WEBRTC_LATER_MODE)
# "speex-later": the room heard before the earlier answer (the daemon knows the room's level by
# then) and after it (its echo rings out), nobody speaking.
WARM_LEAD_S, WARM_TAIL_S = 1.0, 1.0


@dataclass
class RunLog:
    mix_id: str
    frame_s: float
    frames: int = 0
    frame_clock: list[float] = field(
        default_factory=list
    )  # pipeline clock at each frame's delivery
    turns: list[dict[str, Any]] = field(default_factory=list)
    holds: list[tuple[int, bool]] = field(default_factory=list)  # (frame, held) changes
    flushes: list[int] = field(default_factory=list)
    answer_start_frame: int | None = None
    interruption_onset_s: float | None = None  # mic time of the visitor's true onset
    interruption_end_s: float | None = None
    cancels: int = 0
    wall_s: float = 0.0
    playback_frames: int = 0  # frames in which the speaker had something to play
    aec_cpu_s: float = 0.0  # process CPU time inside the echo canceller
    aec_frames: int = 0  # frames that went through it (the rest passed untouched)
    # Warmed up: was the canceller trusted when the run began, and the warm-up's own frames that
    # counted as a visitor (a pause or an onset: the earlier answer interrupted itself)?
    warm_trusted: bool | None = None
    warm_self: int = 0
    # Mic time (s) of the device audio taken in when each frame left the capture resampler:
    # how long the resampler held it back (its frames are stamped on their own timeline).
    frame_in_s: list[float] = field(default_factory=list)

    def at_s(self, frame: int) -> float:
        """Mic time at which frame ``frame`` has been delivered (its end)."""
        return (frame + 1) * self.frame_s


def _stereo_block_to_frames(
    block: np.ndarray, resampler: Resampler, slicer: FrameSlicer
) -> list[bytes]:
    """The daemon's capture path (PyAudioSource._callback) for one stereo int16 block."""
    pcm = block.mean(axis=1).astype(np.int16).tobytes()
    return list(slicer.push(resampler.process(pcm)))


class _Echo:
    """Speaker output -> room -> microphone, at the device rate (streaming overlap-add)."""

    def __init__(self, rate: int, ir: np.ndarray) -> None:
        self.resampler = Resampler(PLAYBACK_RATE_HZ, rate)
        self.ir = ir
        self.tail = np.zeros(len(ir) - 1)
        self.landing: int | None = None  # where the next echo sample lands in the mic audio

    def play_into(self, mic: np.ndarray, speaker_pcm24k: bytes, pos: int, latency: int) -> None:
        """Add the echo of one speaker block to ``mic`` (device rate; mono, or frames x
        channels). The speaker plays one continuous stream, so each block's echo follows the
        last one's (not this mic block's: the capture resampler hands over 0 or 2 frames now
        and then); the first lands ``latency`` samples after ``pos``, and nothing lands before
        ``pos`` (already captured)."""
        e = self.process(speaker_pcm24k)
        if self.landing is None:
            self.landing = pos + latency
        start, end = max(pos, self.landing), min(len(mic), self.landing + e.size)
        if end > start:
            part = e[start - self.landing : end - self.landing]
            mic[start:end] += part if mic.ndim == 1 else part[:, None]
        self.landing += e.size

    def process(self, speaker_pcm24k: bytes) -> np.ndarray:
        x = np.frombuffer(self.resampler.process(speaker_pcm24k), dtype="<i2").astype(np.float64)
        if x.size == 0:
            return np.zeros(0)
        n = x.size + self.ir.size - 1
        size = 1 << (n - 1).bit_length()
        y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(self.ir, size), size)[:n]
        y[: self.tail.size] += self.tail[: min(self.tail.size, n)]
        out, rest = y[: x.size], y[x.size :]
        tail = np.zeros(self.ir.size - 1)
        tail[: rest.size] = rest
        if self.tail.size > n:
            tail[: self.tail.size - n] += self.tail[n:]
        self.tail = tail
        return out


def echo_cancel_of(mode: str) -> str:
    """The ``audio.echo_cancel`` an AEC mode runs with: "webrtc" for the webrtc modes, else "speex"."""
    return "webrtc" if mode.startswith(WEBRTC_MODE) else "speex"


async def run_mix(
    mix: Mix,
    cfg: Config,
    server: Any,
    *,
    paced: bool = False,
    aec: bool = False,
    warm_s: float = 0.0,
    max_s: float | None = None,
    guard: str = "guard",
    warm_through_pipeline: bool = False,
) -> RunLog:
    """Drive ``mix`` through a fresh pipeline connected to ``server`` (a FakeRealtimeServer)."""
    from kiosk.testing.fake_script import FakeScript

    rate = mix.device_rate_hz
    if mix.answer_clip:
        pcm = read_wav_mono(Path(mix.answer_clip), PLAYBACK_RATE_HZ).astype("<i2").tobytes()
        server.script = FakeScript(call_search=False, answer_pcm=pcm, realtime_pacing=True)
    else:
        server.script = FakeScript(
            call_search=False, answer_audio_s=ANSWER_S_FOR_QUESTIONS, realtime_pacing=False
        )
    cfg = dataclasses.replace(
        cfg,
        audio=dataclasses.replace(
            cfg.audio, echo_cancelled=False, echo_cancel=echo_cancel_of(guard) if aec else "none"
        ),
    )
    cfg = _point_at(cfg, server)
    audio = render(mix, extra_s=MAX_WAIT_S)  # the future noise is there; echo is added into it
    if max_s is not None:
        audio = audio[: int(max_s * rate)]
    echo = None
    if mix.echo_db is not None:
        echo = _Echo(rate, room_ir(rate, mix.seed, mix.echo_db))

    loop = asyncio.get_running_loop()
    clock = SkippingClock(loop.time)
    frame_ms = cfg.audio.frame_ms
    frame_s = frame_ms / 1000
    log = RunLog(mix.id, frame_s)
    bus = EventStream()
    playback = PlaybackBuffer(PLAYBACK_RATE_HZ)
    open_turns: dict[int, dict[str, Any]] = {}

    def record(event: Any) -> None:
        n = log.frames - 1  # the frame being processed (or the last one, for server events)
        if isinstance(event, TurnStarted):
            turn = {
                "turn_id": event.turn_id,
                "trigger": event.trigger,
                "start_frame": n,
                "start_clock": clock(),
                "commit_frame": None,
                "commit_clock": None,
            }
            open_turns[event.turn_id] = turn
            log.turns.append(turn)
        elif (
            isinstance(event, StateChanged)
            and event.old is State.LISTENING
            and event.new is State.THINKING
        ):
            for turn in open_turns.values():
                if turn["commit_frame"] is None:
                    turn["commit_frame"], turn["commit_clock"] = n, clock()
        elif isinstance(event, TurnEnded):
            turn = open_turns.pop(event.summary.turn_id, None)
            if turn is not None:
                turn.update(
                    outcome=event.summary.outcome,
                    upstream_s=event.summary.upstream_audio_s,
                    end_frame=n,
                )

    bus.subscribe(record)
    if cfg.earcons.enabled:
        bus.subscribe(earcon_subscriber(playback, cfg.earcons.volume, PLAYBACK_RATE_HZ))
    pipeline = KioskPipeline(
        cfg,
        realtime_endpoint(cfg),
        bus,
        playback,
        voice_detector(cfg.vad, VAD_RATE_HZ, frame_ms),  # the daemon's detector ([vad] neural)
        clock,
    )
    if guard in ("guard-bands", "guard-level") and pipeline.echo_level is not None:
        pipeline.echo_level.pitch = None  # the guard without its pitch cue
    if guard == "guard-level" and pipeline.echo_level is not None:
        pipeline.echo_level.meter = None  # the lined-up guard judging the whole frame only
    if guard == "guard-recent" and pipeline.echo_level is not None:
        # The guard as it was: the speaker's loudest block of the last 200 ms (a peer run).
        pipeline.echo_level.close()
        pipeline.hearing.echo_level = None
        pipeline.endpointer.reference_aligned = False
    canceller = pipeline.echo_canceller
    if canceller is not None and warm_s > 0 and mix.answer_clip:
        ir = room_ir(rate, mix.seed, mix.echo_db or -12.0)
        if warm_through_pipeline or guard in LATER_MODES:
            n = int((WARM_LEAD_S + warm_s + WARM_TAIL_S) * rate)
            bed = noise_bed(mix.noise, n, rate, mix.seed + 7) * db_to_amp(mix.noise_dbfs)
            room = to_stereo(bed, mix.seed + 7)
            log.warm_self = warm_up_pipeline(pipeline, playback, pcm, rate, ir, room, warm_s, WARM_LEAD_S)
        else:
            _warm_up(canceller, pcm, rate, ir, warm_s)
        log.warm_trusted = pipeline.endpointer.echo_cancelled_well
    if pipeline.echo_tap is not None:
        # The speaker's blocks are stamped on the microphone's timeline (see the docstring).
        known = KNOWN_LATENCY_MS // frame_ms
        pipeline.echo_tap.reference.clock = lambda: (log.frames + known) * frame_s
    resampler = Resampler(rate, VAD_RATE_HZ, quality=CAPTURE_QUALITY)
    slicer = FrameSlicer(VAD_RATE_HZ, frame_ms)
    block = rate * frame_ms // 1000
    speaker_samples = PLAYBACK_RATE_HZ * frame_ms // 1000
    mix_end = int(mix.duration_s * rate)
    pos = 0
    # No answer audio of interest (question and noise mixes), not paced: the server answers
    # in zero mic time, so the counts do not depend on its latency or the machine's load.
    instant = not paced and mix.answer_clip is None
    next_real = loop.time()
    started_wall = loop.time()
    flushes_seen = playback.flush_count
    held = False
    try:
        while pos + block <= len(audio):
            if (
                pos >= mix_end
                and not (pipeline.busy or pipeline.endpointer.in_speech)
                and (mix.interruption is None or log.interruption_onset_s is not None)
            ):
                break
            chunk = np.clip(np.rint(audio[pos : pos + block]), -32768, 32767).astype(np.int16)
            pos += block
            for frame in _stereo_block_to_frames(chunk, resampler, slicer):
                if instant:
                    await _until_answered(pipeline, playback)
                skip = instant or (
                    not paced
                    and pipeline.state in (State.IDLE, State.LISTENING)
                    and playback.is_idle
                )
                if skip:
                    clock.skipped_s += frame_s
                    next_real = loop.time()
                    await asyncio.sleep(0)
                else:
                    next_real += frame_s
                    delay = next_real - loop.time()
                    await asyncio.sleep(max(0.0, delay))
                n = log.frames
                log.frames += 1
                log.frame_clock.append(clock())
                log.frame_in_s.append(pos / rate)
                if not playback.is_idle:
                    if (
                        playback.playing_item is not None
                        and log.answer_start_frame is None
                        and not playback.held
                    ):
                        log.answer_start_frame = n
                        _schedule_interruption(mix, log, audio, rate, pos)
                    log.playback_frames += 1
                    out = playback.read(speaker_samples)
                else:
                    out = bytes(speaker_samples * 2)  # silence: the room's tail rings out
                if echo is not None:
                    echo.play_into(audio, out, pos, ECHO_LATENCY_MS // frame_ms * block)
                pipeline.on_mic_frame(frame, n * frame_s)
                if playback.held != held:
                    held = playback.held
                    log.holds.append((n, held))
                if playback.flush_count != flushes_seen:
                    flushes_seen = playback.flush_count
                    log.flushes.append(n)
                    held = playback.held
    finally:
        if canceller is not None:
            log.aec_cpu_s, log.aec_frames = canceller.cpu_s, canceller.frames_cancelled
        await pipeline.aclose()
    for conn in server.connections:
        log.cancels += conn.received_types().count("response.cancel")
    server.connections.clear()
    log.wall_s = loop.time() - started_wall
    return log


async def _until_answered(pipeline: KioskPipeline, playback: PlaybackBuffer) -> None:
    """Hold the microphone while the answer is awaited (THINKING) or its end is (SPEAKING with
    the speaker drained), at most a few seconds of wall time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + INSTANT_ANSWER_WAIT_S
    while loop.time() < deadline:
        pipeline.tick()
        waiting = pipeline.state is State.THINKING or (
            pipeline.state is State.SPEAKING and playback.is_idle
        )
        if not waiting:
            return
        await asyncio.sleep(0.002)


def _schedule_interruption(mix: Mix, log: RunLog, audio: np.ndarray, rate: int, pos: int) -> None:
    """Place the visitor's interruption ``after_answer_s`` after the answer became audible."""
    spec = mix.interruption
    if spec is None:
        return
    answer_at_s = log.at_s(log.answer_start_frame or 0)
    onset_s = answer_at_s + spec["after_answer_s"]
    clip = read_clip(Path(spec["clip"]), rate) * 10 ** (spec["gain_db"] / 20)
    start = round((onset_s - spec["onset_in_clip_s"]) * rate)
    start = max(start, pos)
    end = min(len(audio), start + clip.size)
    audio[start:end, 0] += clip[: end - start]
    audio[start:end, 1] += clip[: end - start] * 0.92
    log.interruption_onset_s = start / rate + spec["onset_in_clip_s"]
    log.interruption_end_s = start / rate + spec["end_in_clip_s"]


def _warm_up(canceller: Any, pcm24k: bytes, rate: int, ir: np.ndarray, seconds: float) -> None:
    """Let the canceller adapt to this room on ``seconds`` of an earlier answer: the same
    audio through the same speaker -> room -> capture path, latency and stamping as
    :func:`run_mix`, on a timeline long before the run's (nobody speaking)."""
    frame_s = canceller.frame_ms / 1000
    t0 = -1000.0
    n = 0
    known = KNOWN_LATENCY_MS // canceller.frame_ms
    canceller.reference.clock = lambda: t0 + (n + 1 + known) * frame_s
    echo = _Echo(rate, ir)
    block = rate * canceller.frame_ms // 1000
    speaker = PLAYBACK_RATE_HZ * canceller.frame_ms // 1000
    n_blocks = int(seconds / frame_s)
    mic = np.random.default_rng(0).standard_normal((n_blocks + 8) * block) * 3  # ~ -80 dBFS
    resampler = Resampler(rate, VAD_RATE_HZ, quality=CAPTURE_QUALITY)
    slicer = FrameSlicer(VAD_RATE_HZ, canceller.frame_ms)
    for k in range(n_blocks):
        pos = (k + 1) * block
        chunk = np.clip(np.rint(mic[k * block : pos]), -32768, 32767)
        stereo = np.stack([chunk, chunk * 0.92], axis=1).astype(np.int16)
        for frame in _stereo_block_to_frames(stereo, resampler, slicer):
            out = pcm24k[n * speaker * 2 : (n + 1) * speaker * 2]
            out += bytes(speaker * 2 - len(out))
            canceller.reference.played(out)
            echo.play_into(mic, out, pos, ECHO_LATENCY_MS // canceller.frame_ms * block)
            canceller.process(frame, t0 + n * frame_s)
            n += 1


def warm_up_pipeline(
    pipeline: KioskPipeline, playback: PlaybackBuffer, pcm24k: bytes, rate: int, ir: np.ndarray,
    room: np.ndarray, seconds: float, lead_s: float = 0.0,
) -> int:
    """An earlier answer in this room, heard by the whole pipeline as in :func:`run_mix`: the
    first ``seconds`` of ``pcm24k`` played from ``playback`` from ``lead_s`` on (its read tap feeds the canceller),
    through the room ``ir`` into ``room`` (the room's noise, stereo at ``rate``, nobody
    speaking), each frame through ``pipeline.on_mic_frame``, until ``room`` ends (the echo rings
    out; the endpointer hears the room). On a timeline long before the run's. Returns the frames
    in which the endpointer suspected a visitor (enough loud voice to pause an answer) or the
    pipeline left IDLE (an onset): 0 if all went well. The pipeline stays IDLE while the earlier
    answer plays, so a suspicion pauses nothing; it also counts in the lead, before anything
    plays, while the room's level is not yet learned."""
    frame_ms = pipeline.cfg.audio.frame_ms
    frame_s, t0, n = frame_ms / 1000, -1000.0, 0
    known = KNOWN_LATENCY_MS // frame_ms
    assert pipeline.echo_tap is not None
    pipeline.echo_tap.reference.clock = lambda: t0 + (n + 1 + known) * frame_s
    lead = round(lead_s / frame_s)
    echo, resampler = _Echo(rate, ir), Resampler(rate, VAD_RATE_HZ, quality=CAPTURE_QUALITY)
    slicer = FrameSlicer(VAD_RATE_HZ, frame_ms)
    block, speaker = rate * frame_ms // 1000, PLAYBACK_RATE_HZ * frame_ms // 1000
    pause_ms = pipeline.cfg.vad.barge_in_pause_ms
    heard_as_visitor = 0
    for pos in range(block, len(room) + 1, block):
        chunk = np.clip(np.rint(room[pos - block : pos]), -32768, 32767).astype(np.int16)
        for frame in _stereo_block_to_frames(chunk, resampler, slicer):
            if n == lead:
                playback.write(pcm24k[: int(seconds * PLAYBACK_RATE_HZ) * 2], "earlier-answer")
            out = bytes(speaker * 2) if playback.is_idle else playback.read(speaker)
            echo.play_into(room, out, pos, ECHO_LATENCY_MS // frame_ms * block)
            pipeline.on_mic_frame(frame, t0 + n * frame_s)
            n += 1
            suspect = pipeline.endpointer.suspected_speech_ms >= pause_ms
            heard_as_visitor += suspect or pipeline.state is not State.IDLE
    return heard_as_visitor

"""The daemon's device side: the microphone and speaker streams (or WAV files), GPIO and
the wake word detector it opens at start-up, and the callbacks through which they feed the
pipeline. PortAudio and gpiozero call back on their own threads; those callbacks only hand
over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.app import VAD_RATE_HZ, KioskPipeline
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.wav_devices import WavMicrophone, WavSpeaker
from kiosk.config import Config
from kiosk.core.bus import EventStream
from kiosk.core.turns import DeviceRecovered, TurnInput, UpstreamFailed, turn_input_for_gesture
from kiosk.errors import ConfigError

log = logging.getLogger("kiosk.daemon")  # the daemon's log lines keep the daemon's name

# Microphone audio per wake-up: three 20 ms frames per PortAudio callback (or WAV read)
# instead of one, a third of the wake-ups while idle; the VAD still sees 20 ms frames.
MIC_BLOCK_MS = 60
# ... and while a turn or its answer is in progress (KioskPipeline.busy), one frame per block
# where the stream can change on the fly (PulseAudio; PortAudio keeps 60): a frame no longer
# waits for the rest of its block (20 ms mean, 40 at most), which a barge-in's deciding frame
# did while the answer played. The idle room keeps the 60 ms blocks' fewer wake-ups.
BUSY_MIC_BLOCK_MS = 20
# ... handed over as soon as each is whole (PulseStream's prompt reading): at its own pace the
# reader's phase against the server's pushes left a frame 14.6 ms waiting on average, now ~1
# (bench/capture_block.py, capture-block-dev11-2026-12-04-{1,2}).
# While the kiosk has nothing to react to (KioskPipeline.quiet: IDLE, nothing playing, no
# loud voiced frame), one hand-over gathers up to this many blocks (480 ms): a quiet room's
# event loop then wakes ~2 times a second instead of ~17. A block with a frame loud enough
# to count towards an onset ends the batch at once, so a visitor's first syllable is heard
# as soon as with single blocks; quieter audio (a voiced hum below the onset level, a wake
# word said softly) is heard up to 420 ms later, pre-roll and all.
QUIET_HANDOVER_BLOCKS = 8
# ... "loud enough": this far below the level that counts towards an onset.
HANDOVER_MARGIN_DB = 3.0
# The speaker stream stops after this long with nothing to play (no silence rendered while
# idle) and starts again when audio is queued; 1 s also lets the echo reference go quiet.
SPEAKER_IDLE_PAUSE_S = 1.0
# Each wait for audio devices at start-up extends systemd's start timeout by the time to
# the next try plus this (a try itself may hang up to device_recovery.ATTEMPT_TIMEOUT_S).
STARTUP_EXTEND_MARGIN_S = 30.0


def _mic_block_ms(pipeline: KioskPipeline) -> int:
    return BUSY_MIC_BLOCK_MS if pipeline.busy else MIC_BLOCK_MS


class DaemonDevices:
    """Opening and feeding from the devices: a part of :class:`kiosk.daemon.Daemon`, whose
    state (settings, pipeline, event stream, stop event) it shares."""

    cfg: Config
    args: argparse.Namespace
    pipeline: KioskPipeline | None
    bus: EventStream
    _stop: asyncio.Event
    _wake: Any
    _leds: Any
    _recovery: Any
    _sink: Any
    _source: Any = None  # the PortAudio microphone, if any
    _mic_blocks = 1  # blocks per hand-over the microphone is asked for (see _mic_follow)
    _mic_level_dbfs = -math.inf  # a block with a frame this loud is handed over at once

    if TYPE_CHECKING:

        async def _stop_after(self, mic: WavMicrophone) -> None: ...

    def _on_frame(self, frame: bytes) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        pipeline.on_mic_frame(frame)

    def _on_frames(self, frames: list[bytes], arrived_s: float | None = None) -> None:
        """One hand-over of frames (a PortAudio callback's, or several gathered while quiet);
        ``arrived_s`` (time.monotonic, the loop's clock) when the last came: with the input
        latency, when each frame was captured (the echo canceller lines the speaker's output
        up with it)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        if arrived_s is None or pipeline.echo_tap is None:
            pipeline.on_mic_frames(frames)
        else:
            source = self._source
            latency_s = source.input_latency_ms / 1000 if source is not None else 0.0
            frame_s = self.cfg.audio.frame_ms / 1000
            end_s = arrived_s - latency_s
            n = len(frames)
            pipeline.on_mic_frames(frames, [end_s - (n - i) * frame_s for i in range(n)])
        self._mic_follow(pipeline)

    def _mic_follow(self, pipeline: KioskPipeline) -> None:
        """Tell the microphone how much to gather per hand-over from now on."""
        self._mic_blocks = QUIET_HANDOVER_BLOCKS if pipeline.quiet else 1
        self._mic_level_dbfs = pipeline.endpointer.onset_level_dbfs - HANDOVER_MARGIN_DB
        source = self._source
        if source is not None:
            source.handover_level_dbfs = self._mic_level_dbfs
            source.handover_blocks = self._mic_blocks
            source.follow_block_ms(_mic_block_ms(pipeline), prompt=pipeline.busy)

    def _mic_now(self) -> None:
        """Something happened (a state change, a button): one block per hand-over again,
        from the microphone's next block on (it hands over what it gathered with it)."""
        self._mic_blocks = 1
        if self._source is not None:
            self._source.handover_blocks = 1
            if self.pipeline is not None:  # a turn starts or ends: its blocks at once
                self._source.follow_block_ms(
                    _mic_block_ms(self.pipeline), prompt=self.pipeline.busy
                )

    def _on_device_error(self, exc: BaseException) -> None:
        """A stream died (USB unplugged...): ERROR now, reopen with backoff in the background."""
        if self._recovery is not None:
            self._recovery.on_error(exc)  # logs and reports device_lost once per loss
        if self.pipeline is not None:
            self.pipeline.feed(UpstreamFailed(f"audio device failed: {exc}"[:200], latch=True))

    def _on_devices_back(self) -> None:
        log.info("audio devices are back")
        if self.pipeline is not None:
            self.pipeline.feed(DeviceRecovered())

    def _open_audio(
        self,
        stack: contextlib.AsyncExitStack,
        tasks: list[asyncio.Task[None]],
        playback: PlaybackBuffer,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        cfg = self.cfg
        streams: list[Any] = []
        audio_host: Any = None  # PulseAudio directly or PortAudio (audio.backend)
        if not (self.args.output_wav and self.args.input_wav):
            from kiosk.audio.pulse_host import host_factory

            a = cfg.audio
            audio_host = host_factory(a.backend, a.input_device, a.output_device)

        def threadsafe_error(e: BaseException) -> None:
            loop.call_soon_threadsafe(self._on_device_error, e)

        if self.args.output_wav:
            speaker = WavSpeaker(Path(self.args.output_wav), playback)
            tasks.append(loop.create_task(speaker.run()))
        else:
            from kiosk.audio.pyaudio_io import PyAudioSink

            sink = PyAudioSink(
                cfg.audio.output_device,
                playback,
                volume=cfg.audio.output_volume,
                playback_rate_hz=cfg.audio.playback_rate_hz,
                on_error=threadsafe_error,
                idle_pause_s=SPEAKER_IDLE_PAUSE_S,
                pyaudio_factory=audio_host,
            )
            stack.callback(sink.close)  # opened by _audio_devices_open
            streams.append(sink)
            self._sink = sink
            if self.pipeline is not None:
                self.pipeline.unheard_ms = lambda: sink.unplayed_ms
        if self.args.input_wav:
            mic = WavMicrophone(
                Path(self.args.input_wav),
                cfg.audio.frame_ms,
                block_ms=MIC_BLOCK_MS,
                rate_hz=VAD_RATE_HZ,
                on_frames=self._on_frames,
                blocks_per_wake=lambda: self._mic_blocks,
                handover_level_dbfs=lambda: self._mic_level_dbfs,
            )
            tasks.append(loop.create_task(mic.run()))
            if getattr(self.args, "exit_at_end", False):
                tasks.append(loop.create_task(self._stop_after(mic)))
        else:
            from kiosk.audio.pyaudio_io import PyAudioSource

            source = PyAudioSource(
                cfg.audio.input_device,
                rate_hz=VAD_RATE_HZ,
                frame_ms=cfg.audio.frame_ms,
                block_ms=MIC_BLOCK_MS,
                on_frames=lambda frames: loop.call_soon_threadsafe(
                    self._on_frames, frames, time.monotonic()
                ),
                on_error=threadsafe_error,
                capture_rate_hz=cfg.audio.capture_rate_hz,
                silence_timeout_s=cfg.audio.silence_timeout_s,
                pyaudio_factory=audio_host,
            )
            stack.callback(source.close)
            streams.append(source)
            self._source = source
        if streams:
            import random

            from kiosk.audio.pyaudio_io import reopen_streams
            from kiosk.device_recovery import DeviceRecovery

            self._recovery = DeviceRecovery(
                lambda: reopen_streams(*streams),
                self.bus,
                loop.time,
                random.Random(),
                on_recovered=self._on_devices_back,
            )
            stack.push_async_callback(self._recovery.aclose)

    async def _audio_devices_open(self, notifier: Any) -> bool:
        """Open the PortAudio streams; if the devices are not there yet, wait for them with
        backoff (STATUS= says why, the start-up timeout is extended each try) instead of
        exiting. False when SIGTERM came first."""
        if self._recovery is None:  # WAV files only
            return True

        def waiting(problem: str, next_try_s: float) -> None:
            notifier.status(f"waiting for audio devices: {problem}"[:200])
            extend_usec = int((next_try_s + STARTUP_EXTEND_MARGIN_S) * 1_000_000)
            notifier.notify(f"EXTEND_TIMEOUT_USEC={extend_usec}")

        return bool(await self._recovery.wait_for_devices(waiting, self._stop))

    def _open_gpio(
        self, stack: contextlib.AsyncExitStack, bus: EventStream, loop: asyncio.AbstractEventLoop
    ) -> None:
        g = self.cfg.gpio
        if not g.enabled or (
            g.led == "none" and not g.button_pin and not g.mute_switch_pin and not g.state_pins
        ):
            return
        from kiosk.hardware.gpio import open_gpio

        hw = open_gpio(g, loop, self._on_gesture, clock=loop.time)
        stack.callback(hw.close)
        bus.subscribe(hw.leds.on_event)
        self._leds = hw.leds
        if hw.initially_muted and self.pipeline is not None:
            from kiosk.core.turns import MuteToggled

            self.pipeline.feed(MuteToggled())  # the switch was already closed at boot

    def _open_wake_word(self, stack: contextlib.AsyncExitStack) -> None:
        if self.cfg.wake.mode != "wakeword":
            return
        try:
            from kiosk.audio.wakeword import WakeWordDetector

            w = self.cfg.wake
            self._wake = WakeWordDetector(w.wakeword_model, w.wakeword_threshold, w.refractory_s)
            stack.callback(self._wake.close)
            if self.pipeline is not None:
                self.pipeline.wake_detector = self._wake
        except ConfigError:
            raise  # a malformed custom model file: a settings error, like a bad kiosk.toml
        except (ImportError, OSError, ValueError) as exc:
            log.error("wake word unavailable (%s): only the button opens a turn", exc)

    def _on_gesture(self, gesture: Any) -> None:
        self._mic_now()
        pipeline = self.pipeline
        if pipeline is None:
            return
        turn_input: TurnInput | None = turn_input_for_gesture(gesture, pipeline.state)
        if turn_input is not None:
            pipeline.feed(turn_input)

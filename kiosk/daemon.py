"""``kiosk run``: the daemon on real devices (or WAV files with ``--input-wav``).

Opens the adapters around one :class:`~kiosk.app.KioskPipeline` in an ``AsyncExitStack``
(teardown in reverse), talks sd_notify (READY only after start-up self-checks, STATUS on
state changes, WATCHDOG from the event loop itself, RELOADING on SIGHUP, STOPPING on
SIGTERM) and keeps running until SIGTERM/SIGINT.

Threads: PortAudio and gpiozero call back on their own threads; those callbacks only
hand over with ``loop.call_soon_threadsafe``. Opening the devices and their callbacks are
in :mod:`kiosk.daemon_devices`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from typing import Any

from kiosk.app import VAD_RATE_HZ, KioskPipeline, earcon_subscriber
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.vad import voice_detector
from kiosk.audio.wav_devices import WavMicrophone
from kiosk.config import Config
from kiosk.core.bus import EventStream
from kiosk.core.events import State, StateChanged
from kiosk.daemon_devices import MIC_BLOCK_MS as MIC_BLOCK_MS  # re-exported
from kiosk.daemon_devices import DaemonDevices
from kiosk.errors import ConfigError, KioskError
from kiosk.hardware.led_patterns import is_animated
from kiosk.net.endpoints import realtime_endpoint
from kiosk.net.engine import cloud_engine
from kiosk.net.link_process import ProcessLink
from kiosk.prices import resolve_prices
from kiosk.reload import KnowledgeTools, load_for_reload
from kiosk.service.memory import release_startup_memory
from kiosk.settings import load_run_settings

log = logging.getLogger(__name__)

PLAYBACK_RATE_HZ = 24000
TICK_S = 0.03
IDLE_TICK_S = 1.0  # quiet IDLE: only the idle close of a warm connection is due, in seconds
STOP_TIMEOUT_S = 1.5
RELOAD_POLL_S = 0.2  # how often a reload held by a turn checks whether it ended


def _load(args: argparse.Namespace) -> Config:
    return load_run_settings(args)


def run_daemon(args: argparse.Namespace) -> int:
    from kiosk.service.logs import set_level, setup_logging

    level = "debug" if args.verbose else (args.log_level or "info")
    redactor = setup_logging(level)
    try:
        cfg = _load(args)
    except ConfigError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    redactor.add(*(s.reveal() for s in _secrets(cfg) if s))
    if not args.log_level and not args.verbose:
        set_level(cfg.service.log_level)
    daemon = Daemon(cfg, args, redactor=redactor)
    try:
        return asyncio.run(daemon.run())
    except ConfigError as exc:  # found while opening (a custom wake word model file)
        log.error("kiosk stopped: %s", exc)
        return 2
    except KioskError as exc:
        log.error("kiosk stopped: %s", exc)
        return 1


def _secrets(cfg: Config) -> list[Any]:
    c = cfg.credentials
    return [c.openai_api_key, c.azure_openai_api_key, c.azure_search_api_key]


class Daemon(DaemonDevices):
    def __init__(self, cfg: Config, args: argparse.Namespace, *, redactor: Any = None) -> None:
        self.cfg = cfg
        self.args = args
        self.redactor = redactor  # kiosk.service.logs.SecretRedactingFilter
        self.pipeline: KioskPipeline | None = None
        self._stop = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._tick_now = asyncio.Event()
        self._reload_requested = False
        self.exit_code = 0
        self._reload_waiting_since: float | None = None  # a turn was in progress at SIGHUP
        self._knowledge = KnowledgeTools()
        self._wake: Any = None
        self._leds: Any = None
        self._recovery: Any = None
        self._sink: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._local_url: str | None = None  # the local engine's loopback URL once started

    async def run(self) -> int:
        from kiosk.service.notify import SdNotifier, StatusReporter

        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._tick_now = asyncio.Event()
        notifier = SdNotifier()
        async with contextlib.AsyncExitStack() as stack:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._request_stop, sig)
                stack.callback(loop.remove_signal_handler, sig)
            loop.add_signal_handler(signal.SIGHUP, self._request_reload)
            stack.callback(loop.remove_signal_handler, signal.SIGHUP)
            stack.callback(notifier.close)

            bus = EventStream(
                on_error=lambda sub, exc: log.error("event subscriber %r failed: %s", sub, exc)
            )
            self.bus = bus
            self._subscribe_logging(bus, stack)
            bus.subscribe(StatusReporter(notifier))
            bus.subscribe(self._on_event_for_ticker)
            playback = PlaybackBuffer(PLAYBACK_RATE_HZ)
            self.playback = playback
            if self.cfg.earcons.enabled:
                bus.subscribe(
                    earcon_subscriber(playback, self.cfg.earcons.volume, PLAYBACK_RATE_HZ)
                )

            stack.callback(self._knowledge.close)
            self._stack = stack
            await self._ensure_local_engine(self.cfg)
            self.pipeline = self._build_pipeline(self.cfg, bus, playback, loop)
            self._knowledge.commit()
            from kiosk.offline import OfflineNotice

            if self.cfg.realtime.fallback != "none":  # "local" too: when the device cannot answer
                bus.subscribe(
                    OfflineNotice(playback, loop.time, language=self.cfg.realtime.language)
                )
            tasks: list[asyncio.Task[None]] = []
            stack.push_async_callback(self._cancel, tasks)
            tasks.append(loop.create_task(self._ticker()))
            interval = notifier.watchdog_interval_s()
            if interval:  # fed from here on, also while start-up waits for audio devices
                tasks.append(loop.create_task(self._watchdog(notifier, interval)))
            self._open_audio(stack, tasks, playback, loop)
            running = await self._audio_devices_open(notifier)  # False: stopped meanwhile
            if running:
                self._open_gpio(stack, bus, loop)
                self._open_wake_word(stack)
                notifier.ready(status="idle")
                release_startup_memory()
                log.info(
                    "kiosk ready (%s, %s)",
                    "local engine" if self.cfg.uses_local_engine else self.cfg.realtime.provider,
                    self.pipeline.endpoint.redacted,
                )

            while running:
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._stop.is_set():
                    break
                if self._reload_requested and not self._turn_holds_reload(notifier, loop):
                    self._reload_requested = False
                    self._reload_waiting_since = None
                    await self._reload(notifier, bus, playback, loop)
            notifier.stopping()
            log.info("stopping")
            playback.flush()
            if self.pipeline is not None:
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self.pipeline.aclose(), STOP_TIMEOUT_S)
        return self.exit_code

    # --- pieces ------------------------------------------------------------------------------

    def _subscribe_logging(self, bus: EventStream, stack: contextlib.AsyncExitStack) -> None:
        from kiosk.service.logs import EventLogger

        bus.subscribe(
            EventLogger(prices=resolve_prices(self.cfg.priced_model, self.cfg.cost))
        )
        self.ledger: Any = None
        try:
            from kiosk.cost import CostLedgerSubscriber, open_ledger

            ledger = open_ledger(
                self.cfg.service.state_dir, self.cfg.cost, self.cfg.priced_model
            )
            stack.callback(ledger.close)
            bus.subscribe(CostLedgerSubscriber(ledger, time.time))
            self.ledger = ledger
        except (OSError, KioskError) as exc:
            log.warning("cost ledger disabled (%s): token totals are only logged", exc)
        self._subscribe_operator_views(bus, stack)

    def _subscribe_operator_views(
        self, bus: EventStream, stack: contextlib.AsyncExitStack
    ) -> None:
        """The turn log behind `kiosk report` and the node_exporter textfile, if configured."""
        import sqlite3

        svc = self.cfg.service
        prices = resolve_prices(self.cfg.priced_model, self.cfg.cost)
        if svc.turn_log_days > 0:
            from kiosk.turnlog import TurnLogSubscriber, open_turn_log

            try:
                turn_log = open_turn_log(svc.state_dir, svc.turn_log_days)
            except (OSError, sqlite3.Error) as exc:
                log.warning("turn log disabled (%s): `kiosk report` will have nothing new", exc)
            else:
                stack.callback(turn_log.close)
                bus.subscribe(TurnLogSubscriber(turn_log, prices, time.time))
        if svc.metrics_textfile:
            from kiosk.metrics import TextfileMetrics

            metrics = TextfileMetrics(svc.metrics_textfile, prices)
            metrics.write()  # a scrape right after start sees the kiosk, not a stale file
            bus.subscribe(metrics)

    async def _ensure_local_engine(self, cfg: Config) -> None:
        """Start the on-device engine's loopback server if ``cfg`` answers locally or falls
        back to it (once; its model loads only when someone first speaks)."""
        wanted = cfg.uses_local_engine or cfg.realtime.fallback == "local"
        if not wanted or self._local_url is not None or self._stack is None:
            return
        from kiosk.local import NOTICE, serve_local_engine

        if cfg.uses_local_engine and cfg.realtime.provider != "local":
            log.warning(NOTICE)
        try:
            # As the fallback it may never answer: it loads at its first connection.
            local_cfg = await self._stack.enter_async_context(
                serve_local_engine(cfg, on_demand=not cfg.uses_local_engine)
            )
        except KioskError as exc:
            if cfg.uses_local_engine:
                raise
            log.warning("realtime.fallback = \"local\" unavailable (%s): the offline clip plays "
                        "instead", exc)
            return
        self._local_url = local_cfg.realtime.endpoint

    def _build_pipeline(
        self,
        cfg: Config,
        bus: EventStream,
        playback: PlaybackBuffer,
        loop: asyncio.AbstractEventLoop,
    ) -> KioskPipeline:
        engine: Any = None
        fallback: Any = None
        if self._local_url is not None:
            from kiosk.local import point_at_local
            from kiosk.net.engine import Engine

            local = Engine("local", realtime_endpoint(point_at_local(cfg, self._local_url)))
            if cfg.uses_local_engine:
                cfg, engine = point_at_local(cfg, self._local_url), local
            elif cfg.realtime.fallback == "local":
                fallback = local
        tools, middle_tier = self._knowledge.stage(cfg)  # commit() once the pipeline is in
        ledger = getattr(self, "ledger", None)
        sink = self._sink
        budget_left = (lambda: ledger.budget_left(time.time())) if ledger is not None else None
        return KioskPipeline(
            cfg,
            # The websocket and its TLS in a child process that ends with the connection
            # (kiosk.net.link_process): none of it stays in the idle daemon.
            engine or cloud_engine(realtime_endpoint(cfg), ProcessLink.open),
            bus,
            playback,
            voice_detector(cfg.vad, VAD_RATE_HZ, cfg.audio.frame_ms),
            loop.time,
            tools=tools,
            citations_from_middle_tier=middle_tier,
            budget_left=budget_left,
            unheard_ms=(lambda: sink.unplayed_ms) if sink is not None else None,
            fallback=fallback,
        )

    async def _ticker(self) -> None:
        """The one timer: turn deadlines, idle close, LED animation.

        ~30 Hz during a turn or while the LED animates; in a quiet IDLE (steady LED, nothing
        playing) once a second, woken at once by any state change so the LED follows it.
        """
        while True:
            self._tick_now.clear()
            # asyncio.timeout, not wait_for: no Task per tick (this runs ~30 times a second in
            # a turn), and no orphaned Event.wait coroutine when the ticker is cancelled.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick_interval_s()):
                    await self._tick_now.wait()
            pipeline = self.pipeline
            if pipeline is None:
                continue
            now = pipeline.clock()
            pipeline.tick()
            if self._leds is not None:
                self._leds.render(now)

    def _tick_interval_s(self) -> float:
        pipeline = self.pipeline
        if pipeline is None or pipeline.state is not State.IDLE or not self.playback.is_idle:
            return TICK_S
        if self._leds is not None and is_animated(self._leds.state):
            return TICK_S
        return IDLE_TICK_S

    def _on_event_for_ticker(self, event: Any) -> None:
        if isinstance(event, StateChanged):
            self._tick_now.set()
            self._mic_now()
            if event.old is State.IDLE and event.new is State.LISTENING:
                self._knowledge.prepare()  # opens a lazy backend while the visitor speaks

    async def _watchdog(self, notifier: Any, interval_s: float) -> None:
        """WATCHDOG=1 from the event loop itself: a stuck loop stops it, and systemd restarts us."""
        while True:
            notifier.watchdog()
            await asyncio.sleep(interval_s / 2)

    async def _stop_after(self, mic: WavMicrophone) -> None:
        """--exit-at-end: once the file is over and the turn it started is done, stop (exit 0)."""
        while True:
            await asyncio.sleep(0.1)  # only with --exit-at-end, a scripts-and-tests mode
            pipeline = self.pipeline
            busy = pipeline is not None and (pipeline.busy or pipeline.endpointer.in_speech)
            if mic.at_end and not busy and self.playback.is_idle:
                log.info("end of %s: stopping", self.args.input_wav)
                self._request_stop()
                return

    def _request_stop(self, sig: int = signal.SIGTERM) -> None:
        # SIGINT (Ctrl-C) exits 130 like any interrupted command; SIGTERM (systemctl stop) 0.
        self.exit_code = 130 if sig == signal.SIGINT else 0
        self._stop.set()
        self._wakeup.set()

    def _request_reload(self) -> None:
        self._reload_requested = True
        self._wakeup.set()

    def _turn_holds_reload(self, notifier: Any, loop: asyncio.AbstractEventLoop) -> bool:
        """True while a turn is in progress: the reload waits for the answer to finish (a
        new pipeline would cut it off), re-checked every RELOAD_POLL_S, at most as long as
        a whole turn may last."""
        now = loop.time()
        if self._reload_waiting_since is None:
            notifier.reloading()
            self._reload_waiting_since = now
        pipeline = self.pipeline
        if pipeline is None or not pipeline.busy:
            return False
        t = self.cfg.turns
        limit_s = self.cfg.vad.max_utterance_s + t.answer_timeout_s + t.max_answer_s
        if now - self._reload_waiting_since > limit_s:
            log.warning("reload: the turn outlasted %.0f s; reloading now", limit_s)
            return False
        if now == self._reload_waiting_since:
            log.info("reload: after the turn in progress")
        loop.call_later(RELOAD_POLL_S, self._wakeup.set)
        return True

    async def _reload(
        self,
        notifier: Any,
        bus: EventStream,
        playback: PlaybackBuffer,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """SIGHUP: build a new Config and swap it in whole; a bad one keeps the old."""
        try:
            new = load_for_reload(self.args)
            await self._ensure_local_engine(new)
            new_pipeline = self._build_pipeline(new, bus, playback, loop)
        except Exception as exc:  # ConfigError, KioskError, or a bug: never end the daemon
            self._knowledge.rollback()
            reason = str(exc) if isinstance(exc, KioskError) else f"{type(exc).__name__}: {exc}"
            log.error("reload: keeping the old settings: %s", reason.splitlines()[0][:300])
            notifier.ready(status="reload failed: kept old settings")
            return
        if new.audio != self.cfg.audio:
            log.warning("reload: [audio] changes take effect after a restart")
        if self.pipeline is not None and new.connection == self.cfg.connection:
            # The connection budget spans reloads (a SIGHUP must not buy new connections);
            # a hold (bad key) ends, since the new settings may have fixed it.
            new_pipeline.policy = self.pipeline.policy
            new_pipeline.policy.release(loop.time())
        if self.pipeline is not None:
            # [wake] changes need a restart; the room's noise floor and echo carry over.
            new_pipeline.wake_detector = self.pipeline.wake_detector
            keep_canceller = (
                self.pipeline.echo_canceller is not None and new_pipeline.echo_canceller is not None
            )
            new_pipeline.endpointer.carry_room(self.pipeline.endpointer, keep_canceller)
            # The echo canceller has adapted to this room: keep it (and its tap).
            new_pipeline.hearing.keep_canceller_of(self.pipeline.hearing)
        old, self.pipeline, self.cfg = self.pipeline, new_pipeline, new
        if old is not None:
            await old.aclose()
        self._knowledge.commit()  # closes the old knowledge base if the new one replaced it
        # A reload may bring a rotated key (redact it too) and a new service.log_level.
        if self.redactor is not None:
            self.redactor.add(*(s.reveal() for s in _secrets(new) if s))
        if not self.args.log_level and not self.args.verbose:
            from kiosk.service.logs import set_level

            set_level(new.service.log_level)
        log.info("reloaded settings")
        notifier.ready(status="idle")

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

"""Audio device loss: report it once, reopen with backoff, say when it is back.

Owns the recovery loop the daemon runs when a PortAudio stream dies (a USB microphone
unplugged, the sound server restarted, a null sink unloaded): one ``ErrorReported``
(code ``device_lost``) per loss, then reopen attempts with exponential backoff and jitter
until one works, then ``on_recovered``. Each attempt runs in a worker thread under a
timeout, so a PortAudio call that hangs on a wedged device cannot block the event loop (and
with it the systemd watchdog keep-alive, the LEDs and the button).

The same attempts serve start-up (:meth:`DeviceRecovery.wait_for_devices`): devices that
are not there yet (no sound server, a USB card that enumerates late) are waited for with the
same backoff instead of ending the process, whose unit would soon hit its start limit.

It does not own the streams (``kiosk.audio.pyaudio_io``: ``reopen_streams``) or decide what
the kiosk shows meanwhile (the daemon feeds the turn machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from kiosk.core.bus import EventStream
from kiosk.core.events import ErrorReported
from kiosk.net.policy import Backoff

log = logging.getLogger(__name__)

MIN_DELAY_S = 0.5  # full jitter can draw ~0: never hammer a device in a tight loop
ATTEMPT_TIMEOUT_S = 5.0
CLOSE_WAIT_S = 1.0  # a hung reopen must not hold up shutdown for long


class DeviceRecovery:
    """Reopen failed audio streams with backoff until they work again.

    Args:
        reopen: blocking; reopens every stream or raises (``DeviceError``/``OSError``).
        bus: where the loss is reported (``ErrorReported(code="device_lost")``).
        clock: monotonic seconds for the event's ``t_s``.
        rng: backoff jitter.
        on_recovered: called on the loop once a reopen succeeded.
        initial_s, max_s: backoff bounds; ``min_delay_s`` floors each (full-jitter) delay.
        attempt_timeout_s: an attempt still running after this is abandoned (its thread is
            left to finish; no second attempt starts while it runs).
        sleep: ``asyncio.sleep`` (tests pass a recorder).

    Contract: call :meth:`on_error` on the event-loop thread (PortAudio callbacks hop over
    with ``loop.call_soon_threadsafe``); call :meth:`aclose` on shutdown.
    """

    def __init__(
        self,
        reopen: Callable[[], None],
        bus: EventStream,
        clock: Callable[[], float],
        rng: random.Random,
        *,
        on_recovered: Callable[[], None] | None = None,
        initial_s: float = 1.0,
        max_s: float = 30.0,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
        min_delay_s: float = MIN_DELAY_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._reopen = reopen
        self._bus = bus
        self._clock = clock
        self._backoff = Backoff(initial_s, max_s, rng)
        self._on_recovered = on_recovered
        self._attempt_timeout_s = attempt_timeout_s
        self._min_delay_s = min_delay_s
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._attempt: asyncio.Future[None] | None = None
        self._closed = False
        self.losses = 0
        self.recoveries = 0
        self.attempts = 0

    @property
    def recovering(self) -> bool:
        return self._task is not None and not self._task.done()

    def on_error(self, exc: BaseException) -> None:
        """A stream failed. Starts recovery unless it is already running (one report per loss)."""
        if self.recovering or self._closed:
            log.debug("device error while recovering or closed: %s", exc)
            return
        self.losses += 1
        message = f"audio device failed: {exc}"[:200]
        log.error("%s; reopening with backoff", message)
        self._bus.publish(ErrorReported(self._clock(), message, "device_lost"))
        self._backoff.reset()
        self._task = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while True:
            await self._sleep(max(self._min_delay_s, self._backoff.next_delay()))
            problem = await self._attempt_reopen()
            if self._closed:  # closed meanwhile: never retry, or reopen, behind aclose()
                return
            if problem is None:
                break
            log.warning("audio device still unavailable: %s", problem)
        self.recoveries += 1
        log.info("audio device is back after %d attempt(s)", self.attempts)
        if self._on_recovered is not None:
            self._on_recovered()

    async def _attempt_reopen(self) -> str | None:
        """One reopen in a worker thread under the timeout: None if it worked, else why not."""
        if self._attempt is not None and not self._attempt.done():
            log.warning("previous reopen attempt still hung; waiting")
            return "the previous attempt is still hung"
        self.attempts += 1
        attempt = self._attempt = asyncio.ensure_future(asyncio.to_thread(self._reopen))
        # asyncio.wait, not wait_for(shield(...)): on Python 3.11 wait_for swallows a cancel
        # that arrives as the attempt finishes, and aclose() then waited for ever on a task
        # that went on retrying (a test hung 5 min in the full suite).
        await asyncio.wait({attempt}, timeout=self._attempt_timeout_s)
        if not attempt.done():
            log.error(
                "reopening the audio device hung for %.0f s; will retry", self._attempt_timeout_s
            )
            return f"opening the device hung for {self._attempt_timeout_s:.0f} s"
        exc = attempt.exception()
        if isinstance(exc, (OSError, ValueError)):  # DeviceError is an OSError
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if exc is not None:
            raise exc
        return None

    async def wait_for_devices(
        self, on_waiting: Callable[[str, float], None], stop: asyncio.Event
    ) -> bool:
        """Start-up: open the streams now, else retry with the same backoff until they open
        (no sound server yet, a USB card still enumerating) instead of exiting.

        ``on_waiting(problem, next_try_s)`` is called after each failed attempt (the daemon
        puts it in STATUS=). Returns True once open, False if ``stop`` was set first.
        """
        self._backoff.reset()
        last = ""
        while not stop.is_set():
            problem = await self._attempt_reopen()
            if problem is None:
                if self.attempts > 1:
                    log.info("audio devices opened after %d attempt(s)", self.attempts)
                return True
            delay = max(self._min_delay_s, self._backoff.next_delay())
            if problem != last:
                log.warning("waiting for audio devices: %s", problem)
                last = problem
            on_waiting(problem, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        return False

    async def aclose(self) -> None:
        """Stop recovering. A reopen already running in its thread is waited for (up to
        ``CLOSE_WAIT_S``): cancelling the task does not stop the thread, and a device opened
        after close returned would be left open behind the caller's back."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._attempt is not None and not self._attempt.done():
            await asyncio.wait({self._attempt}, timeout=CLOSE_WAIT_S)
        if self._attempt is not None and self._attempt.done() and not self._attempt.cancelled():
            self._attempt.exception()  # retrieved: a failed last attempt is not an unhandled error

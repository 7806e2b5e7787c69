"""Device loss: one report per loss, reopen with backoff until it works, a hung reopen never
blocks the event loop. The reopen callable is a real function over a small device model."""

from __future__ import annotations

import asyncio
import random
import threading
import time

from kiosk.core.bus import EventStream
from kiosk.core.events import ErrorReported, KioskEvent
from kiosk.device_recovery import MIN_DELAY_S, DeviceRecovery
from kiosk.errors import DeviceError


class FlakyDevice:
    """Comes back after ``missing_for`` failed opens; can hang an open until released."""

    def __init__(self, missing_for: int) -> None:
        self.missing_for = missing_for
        self.opens = 0
        self.hang = threading.Event()
        self.release = threading.Event()

    def reopen(self) -> None:
        self.opens += 1
        if self.hang.is_set():
            self.release.wait(10.0)
        if self.opens <= self.missing_for:
            raise DeviceError("no such device: vsink.monitor")


def recorder() -> tuple[list[float], object]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    return delays, sleep


class Recovered:
    """on_recovered callback that tests can await."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._changed.set()

    async def wait(self, count: int = 1, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


async def test_lost_device_is_reported_once_and_reopened_with_growing_backoff() -> None:
    bus = EventStream()
    events: list[KioskEvent] = []
    bus.subscribe(events.append)
    device = FlakyDevice(missing_for=4)
    recovered = Recovered()
    delays, sleep = recorder()
    recovery = DeviceRecovery(
        device.reopen,
        bus,
        lambda: 1.0,
        random.Random(2),
        on_recovered=recovered,
        initial_s=1.0,
        max_s=8.0,
        sleep=sleep,  # type: ignore[arg-type]
    )
    recovery.on_error(DeviceError("input device stalled"))
    recovery.on_error(DeviceError("input device stalled"))  # the second stream's error: same loss
    await recovered.wait()
    assert device.opens == 5 and recovery.attempts == 5
    assert [e for e in events if isinstance(e, ErrorReported)] == [
        ErrorReported(1.0, "audio device failed: input device stalled", "device_lost")
    ]
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(
        MIN_DELAY_S <= d <= max(MIN_DELAY_S, c) for d, c in zip(delays, ceilings, strict=True)
    )
    assert not recovery.recovering and recovery.recoveries == 1
    # A later loss starts a new recovery with a fresh backoff.
    device.missing_for = device.opens + 1
    recovery.on_error(DeviceError("output device stalled"))
    await recovered.wait(2)
    assert recovery.losses == 2
    await recovery.aclose()


async def test_hung_reopen_times_out_without_blocking_the_loop_then_recovers() -> None:
    bus: EventStream = EventStream()
    device = FlakyDevice(missing_for=0)
    device.hang.set()
    recovered = Recovered()
    recovery = DeviceRecovery(
        device.reopen,
        bus,
        lambda: 0.0,
        random.Random(1),
        on_recovered=recovered,
        initial_s=0.01,
        max_s=0.02,
        min_delay_s=0.01,
        attempt_timeout_s=0.1,
    )
    ticks = 0

    async def keepalive() -> None:  # stands for the sd_notify watchdog task
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(keepalive())
    recovery.on_error(DeviceError("stalled"))
    await asyncio.sleep(1.2)
    assert device.opens == 1  # no pile-up of hung threads: one attempt at a time
    assert recovered.count == 0
    assert ticks > 50  # the loop kept running while PortAudio hung
    device.hang.clear()
    device.release.set()
    await recovered.wait()
    beat.cancel()
    await recovery.aclose()


async def test_aclose_while_recovering_stops_the_attempts() -> None:
    device = FlakyDevice(missing_for=10**9)
    recovery = DeviceRecovery(
        device.reopen,
        EventStream(),
        lambda: 0.0,
        random.Random(1),
        initial_s=0.01,
        max_s=0.02,
        min_delay_s=0.01,
    )
    recovery.on_error(DeviceError("gone"))
    await asyncio.sleep(0.3)  # attempts every 0.01-0.02 s
    assert device.opens >= 5
    await recovery.aclose()
    opens = device.opens
    await asyncio.sleep(0.1)
    assert device.opens == opens and not recovery.recovering


async def test_aclose_returns_only_after_the_reopen_in_flight_has_finished() -> None:
    entered = threading.Event()
    finished = threading.Event()

    def slow_reopen() -> None:
        entered.set()
        time.sleep(0.1)
        finished.set()
        raise DeviceError("no such device: vsink.monitor")

    recovery = DeviceRecovery(
        slow_reopen, EventStream(), lambda: 0.0, random.Random(1), min_delay_s=0.0, initial_s=0.001
    )
    recovery.on_error(DeviceError("gone"))
    while not entered.is_set():
        await asyncio.sleep(0.005)
    await recovery.aclose()
    # The worker thread's reopen is not cancelled with the task: close waits for it.
    assert finished.is_set()
    assert not recovery.recovering


async def test_aclose_that_lands_as_an_attempt_finishes_still_stops_the_attempts() -> None:
    # The close is scheduled from the attempt's own done callback: the recovery task has not
    # yet woken for the attempt's result when it is cancelled. Python 3.11's wait_for swallowed
    # exactly that cancel and the task went on retrying, so aclose() never returned.
    device = FlakyDevice(missing_for=10**9)
    device.hang.set()
    recovery = DeviceRecovery(
        device.reopen, EventStream(), lambda: 0.0, random.Random(1), min_delay_s=0.0, initial_s=0.001
    )
    recovery.on_error(DeviceError("gone"))
    while recovery._attempt is None:
        await asyncio.sleep(0.005)
    closing: list[asyncio.Task[None]] = []
    recovery._attempt.add_done_callback(
        lambda _: closing.append(asyncio.ensure_future(recovery.aclose()))
    )
    device.hang.clear()
    device.release.set()
    while not closing:
        await asyncio.sleep(0.005)
    done, _ = await asyncio.wait(closing, timeout=2.0)
    opens = device.opens
    stuck = not done
    while recovery.recovering:  # (the old code: stop it so that the test can end)
        recovery._task.cancel()  # type: ignore[union-attr]
        await asyncio.sleep(0.01)
    assert not stuck, "aclose() did not return: the recovery task swallowed its cancel"
    await asyncio.sleep(0.05)
    assert device.opens == opens

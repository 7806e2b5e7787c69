"""sd_notify against a real datagram socket the test binds."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.core.bus import EventStream
from kiosk.core.events import EarconRequested, ErrorReported, State, StateChanged
from kiosk.service.notify import SdNotifier, StatusReporter, status_text, watchdog_keepalive

TIMEOUT_S = 2.0 * float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(TIMEOUT_S)
    yield path, sock
    sock.close()


def recv_fields(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def assert_nothing_pending(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        with pytest.raises(BlockingIOError):
            sock.recv(4096)
    finally:
        sock.settimeout(TIMEOUT_S)


def changed(old: State, new: State, reason: str = "") -> StateChanged:
    return StateChanged(t_s=0.0, old=old, new=new, reason=reason, turn_id=1)


def test_ready_with_status_sends_one_datagram(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = SdNotifier(path)
    assert notifier.ready("idle")
    assert recv_fields(sock) == ["READY=1", "STATUS=idle"]


def test_reloading_carries_monotonic_usec(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    SdNotifier(path).reloading(monotonic_usec=1234)
    assert recv_fields(sock) == ["RELOADING=1", "MONOTONIC_USEC=1234"]


def test_reloading_default_clock_is_monotonic_usec(
    notify_socket: tuple[str, socket.socket],
) -> None:
    import time

    path, sock = notify_socket
    before = time.monotonic_ns() // 1000
    SdNotifier(path).reloading()
    fields = recv_fields(sock)
    usec = int(fields[1].removeprefix("MONOTONIC_USEC="))
    assert before <= usec <= time.monotonic_ns() // 1000


def test_stopping_and_watchdog_fields(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = SdNotifier(path)
    notifier.watchdog()
    notifier.stopping()
    assert recv_fields(sock) == ["WATCHDOG=1"]
    assert recv_fields(sock) == ["STOPPING=1"]


def test_abstract_namespace_socket_receives(tmp_path: Path) -> None:
    name = f"kiosk-test-{os.getpid()}-{tmp_path.name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(TIMEOUT_S)
    try:
        SdNotifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert recv_fields(sock) == ["READY=1"]
    finally:
        sock.close()


def test_status_repeats_are_sent_once(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = SdNotifier(path)
    assert notifier.status("idle")
    assert not notifier.status("idle")
    assert notifier.status("listening")
    assert recv_fields(sock) == ["STATUS=idle"]
    assert recv_fields(sock) == ["STATUS=listening"]
    assert_nothing_pending(sock)


def test_status_newlines_cannot_inject_fields(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    SdNotifier(path).status("error: bad\nREADY=1")
    assert recv_fields(sock) == ["STATUS=error: bad READY=1"]


def test_without_notify_socket_every_call_is_a_noop() -> None:
    notifier = SdNotifier(env={})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval_s() is None


def test_socket_gone_send_returns_false_without_raising(tmp_path: Path) -> None:
    notifier = SdNotifier(str(tmp_path / "missing.sock"))
    assert notifier.enabled
    assert not notifier.ready()
    assert not notifier.stopping()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_from_env(env: dict[str, str], expected: float | None) -> None:
    assert (
        SdNotifier(env={"NOTIFY_SOCKET": "/nonexistent", **env}).watchdog_interval_s() == expected
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (changed(State.IDLE, State.LISTENING), "listening"),
        (changed(State.LISTENING, State.THINKING), "answering"),
        (changed(State.THINKING, State.SPEAKING), "answering"),
        (changed(State.SPEAKING, State.IDLE), "idle"),
        (changed(State.IDLE, State.MUTED), "muted"),
        (
            changed(State.IDLE, State.ERROR, "upstream unreachable, retrying in 8 s"),
            "error: upstream unreachable, retrying in 8 s",
        ),
        (ErrorReported(t_s=0.0, message="no audio input"), "error: no audio input"),
        (EarconRequested(name="wake"), None),
    ],
)
def test_status_text_maps_events(event: StateChanged, expected: str | None) -> None:
    assert status_text(event) == expected


def test_status_reporter_shows_error_message_only_in_error_state(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    stream = EventStream()
    stream.subscribe(StatusReporter(SdNotifier(path)))
    stream.publish(changed(State.IDLE, State.LISTENING))
    stream.publish(ErrorReported(t_s=0.0, message="tool search failed"))
    stream.publish(changed(State.LISTENING, State.ERROR))
    stream.publish(ErrorReported(t_s=1.0, message="upstream unreachable, retrying in 8 s"))
    stream.publish(changed(State.ERROR, State.IDLE))
    got = [recv_fields(sock) for _ in range(4)]
    assert got == [
        ["STATUS=listening"],
        ["STATUS=error: tool search failed"],
        ["STATUS=error: upstream unreachable, retrying in 8 s"],
        ["STATUS=idle"],
    ]
    assert_nothing_pending(sock)


async def test_watchdog_keepalive_sends_from_the_loop(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    notifier = SdNotifier(path, env={"WATCHDOG_USEC": "40000"})  # 40 ms -> every 20 ms
    task = asyncio.create_task(watchdog_keepalive(notifier))
    loop = asyncio.get_running_loop()
    try:
        for _ in range(3):
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), TIMEOUT_S)
            assert data == b"WATCHDOG=1"
    finally:
        task.cancel()


async def test_watchdog_keepalive_without_watchdog_returns_at_once() -> None:
    await asyncio.wait_for(watchdog_keepalive(SdNotifier(env={})), TIMEOUT_S)


def test_full_socket_queue_gives_up_instead_of_blocking(
    notify_socket: tuple[str, socket.socket],
) -> None:
    import time

    path, _never_read = notify_socket
    notifier = SdNotifier(path, send_timeout_s=0.02)
    started = time.monotonic()
    results = [notifier.watchdog() for _ in range(24)]  # beyond the kernel's queue length
    assert results[0] is True
    assert results[-1] is False
    assert time.monotonic() - started < 24 * 0.02 + TIMEOUT_S

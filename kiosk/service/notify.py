"""sd_notify: tell systemd we are ready, reloading, stopping, alive, and what we are doing.

Owns the datagram protocol of ``sd_notify(3)`` (one ``KEY=VALUE\\n...`` datagram to the
AF_UNIX socket named by ``$NOTIFY_SOCKET``; a leading ``@`` means the abstract namespace),
the watchdog interval from ``$WATCHDOG_USEC``/``$WATCHDOG_PID``, and the mapping of kiosk
events to ``STATUS=`` lines. It does not decide *when* to send: ``kiosk.app`` calls
:meth:`SdNotifier.ready` after its start-up self-checks and runs :func:`watchdog_keepalive`
as a task on the event loop, so a stuck loop (not a healthy side thread) misses the
keep-alive and systemd restarts the service.

Spoken directly (no systemd-python): the protocol is one ``sendto`` and this keeps the
service pieces free of a C build dependency. Outside systemd every method is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

from kiosk.core.events import ErrorReported, KioskEvent, State, StateChanged

log = logging.getLogger(__name__)

# What staff read in `systemctl status kiosk`; THINKING and SPEAKING are one "answering"
# phase to a person at the kiosk (tool calls run while THINKING).
STATUS_BY_STATE: dict[State, str] = {
    State.IDLE: "idle",
    State.LISTENING: "listening",
    State.THINKING: "answering",
    State.SPEAKING: "answering",
    State.MUTED: "muted",
    State.ERROR: "error",
}

_MAX_STATUS_CHARS = 200  # systemctl status shows one line; keep the datagram small
# A unix datagram send blocks while the receiver's queue is full (net.unix.max_dgram_qlen,
# 10 by default). A stuck service manager must not freeze our event loop: give up instead.
SEND_TIMEOUT_S = 0.5


class SdNotifier:
    """Sends sd_notify messages; every method is a silent no-op without ``NOTIFY_SOCKET``.

    Sending never raises: a notify failure (socket gone, systemd restarting) is logged once
    at WARNING and must not take the daemon down with it.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        """Args:
        socket_path: the notify socket; None = ``$NOTIFY_SOCKET`` from ``env``.
        env: environment to read (default ``os.environ``); tests pass their own.
        send_timeout_s: longest a send may block on a full socket queue.
        """
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._send_timeout_s = send_timeout_s
        path = socket_path if socket_path is not None else self._env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if path.startswith("@"):
            self._address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self._address = path
        elif path:
            # vsock: addresses (VM managers) are not something a kiosk meets.
            log.warning("NOTIFY_SOCKET %r is not a unix socket path; not notifying systemd", path)
        self._warned = False
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"KEY=VALUE"`` each) as one datagram. Returns True if sent."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            # A socket per message, as sd_notify(3) does: a few µs, at most a few per second,
            # and nothing to leak or to go stale when systemd re-executes.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(self._send_timeout_s)
                sock.sendto(message, self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify failed: %s (further failures are not logged)", exc)
                self._warned = True
            return False
        log.debug("> sd_notify %s", " ".join(f.split("=", 1)[0] for f in fields))
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up (or a reload) finished; systemd starts dependants now."""
        fields = ["READY=1"]
        if status is not None:
            fields.append(_status_field(status))
            self._last_status = status
        return self.notify(*fields)

    def reloading(self, *, monotonic_usec: int | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (required by Type=notify-reload, systemd 253+).

        Send :meth:`ready` when the new configuration is in place (or was rejected).
        """
        usec = (
            monotonic_usec
            if monotonic_usec is not None
            else time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        )
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown began (systemctl shows "deactivating")."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """``STATUS=text`` (one line, shown by ``systemctl status``); repeats are not re-sent."""
        if text == self._last_status:
            return False
        self._last_status = text
        return self.notify(_status_field(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive; send it from the event loop, never from a thread."""
        return self.notify("WATCHDOG=1")

    def watchdog_interval_s(self) -> float | None:
        """The watchdog timeout (``WatchdogSec=``) in seconds, or None when it is off or not ours.

        Keep-alives should go out at half this interval (sd_watchdog_enabled(3)).
        """
        raw = self._env.get("WATCHDOG_USEC", "")
        pid = self._env.get("WATCHDOG_PID", "")
        if not raw:
            return None
        if pid and pid != str(os.getpid()):
            return None  # meant for a parent that exec'd us, not for this process
        try:
            usec = int(raw)
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not an integer", raw)
            return None
        return usec / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        """Nothing to release (each message uses its own socket); kept for symmetry."""


def _status_field(text: str) -> str:
    line = " ".join(text.split())  # STATUS= is one line: newlines would start new fields
    if len(line) > _MAX_STATUS_CHARS:
        line = line[: _MAX_STATUS_CHARS - 1] + "…"
    return "STATUS=" + line


def status_text(event: KioskEvent) -> str | None:
    """The ``STATUS=`` line for ``event``, or None when the event does not change it.

    ``StateChanged`` gives the state's word (``"idle"``, ``"listening"``, ``"answering"``,
    ``"muted"``; ERROR gives ``"error: <reason>"``); ``ErrorReported`` gives
    ``"error: <message>"``. Other events leave the status as it is.
    """
    match event:
        case StateChanged(new=State.ERROR, reason=reason):
            return f"error: {reason}" if reason else "error"
        case StateChanged(new=new):
            return STATUS_BY_STATE[new]
        case ErrorReported(message=message):
            return f"error: {message}"
        case _:
            return None


class StatusReporter:
    """Event subscriber that keeps ``STATUS=`` current.

    An ``ErrorReported`` outside the ERROR state (a failed tool call mid-answer, say) is
    remembered rather than shown, so the status does not claim an error while the kiosk
    answers; it becomes the text of the next ERROR state that has no reason of its own.
    """

    def __init__(self, notifier: SdNotifier) -> None:
        self._notifier = notifier
        self._state = State.IDLE
        self._last_error = ""

    def __call__(self, event: KioskEvent) -> None:
        match event:
            case StateChanged(new=State.ERROR, reason=""):
                self._state = State.ERROR
                self._notifier.status(f"error: {self._last_error}" if self._last_error else "error")
            case StateChanged(new=new):
                self._state = new
                text = status_text(event)
                if text is not None:
                    self._notifier.status(text)
            case ErrorReported(message=message):
                self._last_error = message
                if self._state is State.ERROR:
                    self._notifier.status(f"error: {message}")
            case _:
                pass


async def watchdog_keepalive(notifier: SdNotifier, interval_s: float | None = None) -> None:
    """Send ``WATCHDOG=1`` from this event loop every half watchdog interval, forever.

    Run it as a task beside the daemon's others. Because it is a coroutine on the same loop,
    a loop blocked by a stuck callback stops the keep-alives and systemd restarts the
    service (``WatchdogSec=``). Returns at once when no watchdog is configured.

    Args:
        notifier: where to send.
        interval_s: override the keep-alive period (default: ``watchdog_interval_s() / 2``).
    """
    if interval_s is None:
        timeout_s = notifier.watchdog_interval_s()
        if timeout_s is None:
            return
        interval_s = timeout_s / 2
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval_s)

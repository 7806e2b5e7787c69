"""Why kiosk/service speaks sd_notify and the journal protocol itself instead of through
systemd-python (issue 15 asked for systemd-python; this is the measured reason it is not used
on the send path).

libsystemd's sends block while the receiver's datagram queue is full (net.unix.max_dgram_qlen,
10 by default): a stalled service manager would freeze the kiosk's event loop, and with it the
watchdog keep-alives, the LEDs and the visitor's answer. Measured here with systemd-python 235
on Debian 12 (libsystemd 252): ``systemd.daemon.notify`` and ``systemd.journal.send`` both hang
on the 12th datagram to a socket nobody reads, until killed. ``SdNotifier`` gives up after
``SEND_TIMEOUT_S`` per message and the journal handler falls back to stderr.

Skipped where systemd-python is not installed (install.sh --dev adds it when libsystemd-dev is
present, which test.sh installs as root).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.service.notify import SEND_TIMEOUT_S, SdNotifier

pytest.importorskip("systemd.daemon", reason="systemd-python is not installed")

SENDS = 16  # more than the default queue of 10 (+1) datagrams


def stalled_socket(tmp_path: Path) -> tuple[str, socket.socket]:
    path = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)  # bound and never read: the service manager is stuck
    return path, receiver


def test_systemd_python_notify_blocks_on_a_stalled_manager(tmp_path: Path) -> None:
    path, receiver = stalled_socket(tmp_path)
    code = (
        "import sys\nfrom systemd import daemon\n"
        f"for i in range({SENDS}):\n"
        "    daemon.notify(f'STATUS={i}')\n"
        "    print(i, flush=True)\n"
    )
    with pytest.raises(subprocess.TimeoutExpired) as stuck:
        subprocess.run(
            [sys.executable, "-c", code],
            env={"NOTIFY_SOCKET": path, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=3.0,
        )
    sent = (stuck.value.stdout or b"").split()
    assert len(sent) < SENDS  # hung part-way: this is what the kiosk must never do
    receiver.close()


def test_kiosk_notifier_gives_up_and_keeps_going(tmp_path: Path) -> None:
    path, receiver = stalled_socket(tmp_path)
    notifier = SdNotifier(path)
    started = time.monotonic()
    results = [notifier.status(f"state {i}") for i in range(SENDS)]
    elapsed = time.monotonic() - started
    assert results.count(True) >= 10 and results[-1] is False  # the queue filled, then refused
    assert elapsed <= (SENDS - 10) * SEND_TIMEOUT_S + 2.0
    receiver.close()

"""``kiosk fake-server`` stops on SIGINT (130) and SIGTERM (0), also when started with SIGINT
ignored, as a shell without job control starts every background command (``cmd &`` in a
script, ``nohup``). Python installs no KeyboardInterrupt handler then: the server used to
ignore the Ctrl-C of ``test_key_redaction_cli``'s fake-server test whenever the suite ran
as such a background job (three worktree runs in stop 33, never in CI's foreground run)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

FACTOR = float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
STEP_S = 20 * FACTOR


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _start_server(*, sigint_ignored: bool) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "OPENAI", "AZURE"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiosk.cli", "fake-server", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )  # fmt: skip
    assert proc.stdout is not None
    output = b""
    async with asyncio.timeout(STEP_S):
        while b"listening on ws:" not in output:
            line = await proc.stdout.readline()
            assert line, f"fake-server exited: {output!r}"
            output += line
    return proc


async def _exit_code_after(proc: asyncio.subprocess.Process, sig: signal.Signals) -> int | str:
    proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.communicate(), STEP_S)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        return f"still running {STEP_S:.0f} s after {sig.name}"
    assert proc.returncode is not None
    return proc.returncode


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)], ids=["SIGINT", "SIGTERM"]
)
async def test_fake_server_stops_on_sigint_and_sigterm(
    sigint_ignored: bool, sig: signal.Signals, code: int
) -> None:
    proc = await _start_server(sigint_ignored=sigint_ignored)
    assert await _exit_code_after(proc, sig) == code


def test_a_taken_port_is_one_line_and_a_failure_exit_not_a_traceback() -> None:
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "OPENAI", "AZURE"))
        }
        done = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "fake-server", "--port", str(port)],
            capture_output=True, text=True, timeout=STEP_S, env=env,
        )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]

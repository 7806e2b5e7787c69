"""install.sh run for real, as root, on this machine: user, venv, files, permissions.

Changes the system (/opt/kiosk, /etc/kiosk, /var/lib/kiosk, the kiosk user), so it runs
only where ``KIOSK_RUN_INSTALL_TEST=1`` (CI, on a throwaway Debian 12 as root). It starts
and ends with ``--uninstall --purge``. Without systemd as PID 1 (a container) install.sh
must skip systemctl and say so.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install.sh"
KEY = "sk-install-test-KEY-aaaabbbbccccddddeeee0001"
KEY2 = "sk-install-test-KEY-aaaabbbbccccddddeeee0002"
ETC = Path("/etc/kiosk")
CRED = ETC / "credentials" / "OPENAI_API_KEY"
PREFIX = Path("/opt/kiosk")
STATE = Path("/var/lib/kiosk")
UNIT = Path("/etc/systemd/system/kiosk.service")
LINK = Path("/usr/local/bin/kiosk")
SYSTEMD_RUNNING = Path("/run/systemd/system").is_dir()

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("KIOSK_RUN_INSTALL_TEST") != "1",
        reason="changes the system: set KIOSK_RUN_INSTALL_TEST=1 (CI does, as root)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="install.sh needs root"),
]


def run(
    *args: str, key_env: dict[str, str] | None = None, timeout_s: float = 900
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("KIOSK_API_KEY", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_SEARCH_API_KEY")
        and not k.startswith("KIOSK_PREFIX")
    }
    env.update(key_env or {})
    result = subprocess.run(
        ["bash", str(INSTALL), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
    )
    for text in (result.stdout, result.stderr):
        assert KEY not in text and KEY2 not in text, "install.sh printed the API key"
    return result


def mode_owner(path: Path) -> tuple[str, str, str]:
    st = path.stat()
    return (
        oct(stat.S_IMODE(st.st_mode)),
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_install_twice_then_uninstall_then_purge() -> None:
    assert_ok(run("--uninstall", "--purge"))

    # 1. Fresh install, key from the environment.
    first = run(key_env={"KIOSK_API_KEY": KEY})
    assert_ok(first)
    if not SYSTEMD_RUNNING:
        assert "skipped systemctl" in first.stdout
    user = pwd.getpwnam("kiosk")
    assert user.pw_shell == "/usr/sbin/nologin"
    assert {"audio", "gpio"} <= {g.gr_name for g in grp.getgrall() if "kiosk" in g.gr_mem}
    version = subprocess.run([str(LINK), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("kiosk ")
    assert (ETC / "kiosk.toml").read_text() == (REPO / "config" / "kiosk.toml").read_text()
    assert mode_owner(ETC) == ("0o750", "root", "kiosk")
    assert mode_owner(ETC / "kiosk.toml") == ("0o640", "root", "kiosk")
    assert mode_owner(ETC / "credentials") == ("0o700", "root", "root")
    assert mode_owner(CRED) == ("0o600", "root", "root")
    assert CRED.read_text().strip() == KEY
    assert mode_owner(STATE) == ("0o750", "kiosk", "kiosk")
    assert f"ExecStart={PREFIX}/venv/bin/kiosk run" in UNIT.read_text()

    # The installed kiosk sees the stored key (as the unit would hand it over), never prints it.
    check = subprocess.run(
        [str(LINK), "check", "--skip", "audio", "--skip", "gpio", "--skip", "index"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.endswith("API_KEY")},
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OPENAI_API_KEY present" in check.stdout
    assert KEY not in check.stdout + check.stderr

    # 2. Staff edit the config; an interrupted earlier run left a broken venv. Re-running
    #    repairs the venv and keeps the edited config and the stored key.
    edited = (ETC / "kiosk.toml").read_text() + "\n# edited by staff\n"
    (ETC / "kiosk.toml").write_text(edited)
    (PREFIX / "venv" / "bin" / "python").unlink()
    second = run()
    assert_ok(second)
    assert (ETC / "kiosk.toml").read_text() == edited
    assert "kept your edited" in second.stdout
    assert "kept the stored OPENAI_API_KEY" in second.stdout
    assert CRED.read_text().strip() == KEY
    assert subprocess.run([str(LINK), "--version"], capture_output=True, timeout=60).returncode == 0

    # 3. A broken config stops the install with a one-line reason and a non-zero exit ...
    assert 'provider = "openai"' in edited
    (ETC / "kiosk.toml").write_text(
        edited.replace('provider = "openai"', 'provider = "nonsense"', 1)
    )
    broken = run()
    assert broken.returncode == 1
    assert "realtime.provider" in broken.stderr
    assert "fix it and re-run" in broken.stderr
    # ... and once fixed, re-running completes; a key file replaces the stored key.
    (ETC / "kiosk.toml").write_text(edited)
    key_file = STATE.parent / "kiosk-test-key"
    key_file.write_text(KEY2 + "\n")
    try:
        assert_ok(run("--api-key-file", str(key_file)))
    finally:
        key_file.unlink()
    assert CRED.read_text().strip() == KEY2
    assert mode_owner(CRED) == ("0o600", "root", "root")

    # 4. --aec configures whichever sound server is installed (it never installs one).
    check_aec(edited)
    edited = (ETC / "kiosk.toml").read_text()

    # 5. Uninstall keeps config, credentials and state; --purge removes them and the user.
    assert_ok(run("--uninstall"))
    assert not PREFIX.exists() and not LINK.exists() and not UNIT.exists()
    assert (ETC / "kiosk.toml").read_text() == edited
    assert CRED.exists() and STATE.is_dir()
    assert_ok(run("--uninstall"))  # idempotent too
    assert_ok(run("--uninstall", "--purge"))
    assert not ETC.exists() and not STATE.exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("kiosk")


def check_aec(edited: str) -> None:
    if shutil.which("pipewire-pulse") is None and shutil.which("pulseaudio") is None:
        result = run("--aec", "--no-start")
        assert result.returncode == 1
        assert "--aec needs a sound server" in result.stderr
        assert (ETC / "kiosk.toml").read_text() == edited
        return
    assert_ok(run("--aec", "--no-start"))
    with_aec = (ETC / "kiosk.toml").read_text()
    assert "# edited by staff" in with_aec
    cfg = tomllib.loads(with_aec)
    assert cfg["audio"]["input_device"] == "pulse"
    assert cfg["audio"]["echo_cancelled"] is True
    server_conf = [
        STATE / ".config/pipewire/pipewire.conf.d/kiosk-echo-cancel.conf",
        STATE / ".config/pulse/default.pa",
    ]
    assert any("echo-cancel-source" in f.read_text() for f in server_conf if f.exists())
    dropin = UNIT.parent / "kiosk.service.d" / "aec.conf"
    assert "PULSE_SOURCE=echo-cancel-source" in dropin.read_text()
    assert_ok(run("--aec", "--no-start"))  # a second run changes nothing
    assert (ETC / "kiosk.toml").read_text() == with_aec
    verify_installed_unit_with_dropin(dropin)


def verify_installed_unit_with_dropin(dropin: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "kiosk.service"
        unit.write_text(UNIT.read_text().replace(f"{PREFIX}/venv/bin/kiosk", "/bin/true"))
        (Path(tmp) / "kiosk.service.d").mkdir()
        shutil.copy(dropin, Path(tmp) / "kiosk.service.d" / "aec.conf")
        result = subprocess.run(
            [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert "kiosk.service" not in result.stderr, result.stderr


def test_bad_usage_exits_2_without_touching_anything() -> None:
    assert run("--bogus").returncode == 2
    assert run("--purge").returncode == 2
    assert run("--api-key-file").returncode == 2


def test_unreadable_key_file_fails_before_changing_anything() -> None:
    result = run("--api-key-file", "/nonexistent/key")
    assert result.returncode == 1
    assert "cannot read --api-key-file /nonexistent/key" in result.stderr
    assert result.stdout == ""  # not a single step ran
